"""Sample efficiency: the power-law fit's known answers, labels saved read only inside the measured range, equal
steps at every n, the seed spread, LoRA heads saved and reloaded exactly, the scorer."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest
import torch

from data.payloads import PowerLawFit
from data.targets import suite
from scoring.config import SampleEfficiencyConfig
from scoring.sample_efficiency import (
    fit_power_law,
    lora_classifier,
    read_labels_saved,
    repeated_epoch_steps,
    seed_spread,
)
from tests.helpers.tiny_models import TINY_BERT, build_base


def test_fit_recovers_a_known_power_law():
    truth = PowerLawFit(a=0.08, b=2.5, gamma=0.6)
    ns = [32, 64, 128, 256, 512, 1024, 2048]
    fit = fit_power_law(ns, [truth.error(n) for n in ns])
    assert (fit.a, fit.b, fit.gamma) == (pytest.approx(0.08, abs=1e-4), pytest.approx(2.5, rel=1e-3),
                                         pytest.approx(0.6, rel=1e-3))


def test_fit_is_robust_to_small_noise_and_labels_for_inverts_the_curve():
    truth = PowerLawFit(a=0.1, b=1.0, gamma=0.5)
    ns = [32, 128, 512, 2048]
    noise = [0.002, -0.001, 0.0015, -0.0005]
    fit = fit_power_law(ns, [truth.error(n) + d for n, d in zip(ns, noise, strict=True)])
    assert fit.gamma == pytest.approx(0.5, rel=0.25)
    n = truth.labels_for(1 - truth.error(300))
    assert n == pytest.approx(300)
    assert math.isinf(truth.labels_for(0.95))  # beyond the asymptote 1 - a = 0.9
    with pytest.raises(ValueError):
        fit_power_law([1, 2], [0.5, 0.4])


def test_fit_keeps_the_error_floor_between_zero_and_the_data():
    # a real curve (all-MiniLM-L6-v2 intertrained on SICK, LoRA on sst2, two seeds) whose unconstrained
    # least-squares fit put the error floor at a = -85.6 with gamma = 0.001: a straight line in log n
    ns = [32, 32, 128, 128, 512, 512, 2048, 2048]
    acc = [0.496, 0.491, 0.526, 0.713, 0.554, 0.816, 0.845, 0.855]
    errors = [1 - a for a in acc]
    fit = fit_power_law(ns, errors)
    assert 0 <= fit.a <= min(errors) and fit.b >= 0
    assert fit.error(2048) < fit.error(32)
    # an exactly flat curve is fitted flat (b = 0) at the mean error
    flat = fit_power_law([32, 128, 512], [0.3, 0.3, 0.3])
    assert flat.b == pytest.approx(0, abs=1e-9) and flat.a == pytest.approx(0.3)


def test_lora_head_is_trained_saved_and_reloaded_bit_identically(tmp_path):
    from peft import PeftModel
    from transformers import AutoModelForSequenceClassification

    base = build_base(TINY_BERT, tmp_path / "base")
    model, _ = lora_classifier(base, 3, SampleEfficiencyConfig(rank=4), seed=0)
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert any("lora_A" in n for n in trainable) and any("classifier" in n for n in trainable)
    assert not any("word_embeddings" in n for n in trainable)
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    x = torch.randint(5, 100, (8, 12))
    for _ in range(3):
        opt.zero_grad()
        model(input_ids=x, labels=torch.tensor([0, 1, 2, 0, 1, 2, 0, 1])).loss.backward()
        opt.step()
    model.eval()
    with torch.no_grad():
        before = model(input_ids=x).logits
    model.save_pretrained(tmp_path / "adapter")
    reloaded_base = AutoModelForSequenceClassification.from_pretrained(base, num_labels=3)
    reloaded = PeftModel.from_pretrained(reloaded_base, tmp_path / "adapter").eval()
    with torch.no_grad():
        after = reloaded(input_ids=x).logits
    assert torch.equal(before, after)  # the trained head came back with the adapters


# base error 0.1 + 2/sqrt(n): at n_max = 2048 the reference error is 0.1 + 2/sqrt(2048)
BASE_CURVE = PowerLawFit(a=0.1, b=2.0, gamma=0.5)


def test_labels_saved_inside_the_range_is_read_from_the_fitted_curves():
    # the candidate's 0.1 + 1/sqrt(n) reaches the base's error at 2048 where sqrt(n) = sqrt(2048)/2: n = 512
    reading = read_labels_saved(BASE_CURVE, PowerLawFit(a=0.1, b=1.0, gamma=0.5), 32, 2048)
    assert reading.in_range and reading.out_of_range == "" and reading.reason == ""
    assert reading.candidate_labels == pytest.approx(512) and reading.value == pytest.approx(1536)
    assert reading.base_labels == 2048 and reading.reference_accuracy == pytest.approx(1 - BASE_CURVE.error(2048))
    # the same through fits of the exact points (four n, as the protocol measures them)
    ns = [32, 128, 512, 2048]
    fitted = read_labels_saved(fit_power_law(ns, [BASE_CURVE.error(n) for n in ns]),
                               fit_power_law(ns, [0.1 + 1 / math.sqrt(n) for n in ns]), 32, 2048)
    assert fitted.in_range and fitted.value == pytest.approx(1536, rel=1e-2)
    # a candidate identical to the base needs exactly n_max: in range, saves 0
    same = read_labels_saved(BASE_CURVE, BASE_CURVE, 32, 2048)
    assert same.in_range and same.candidate_labels == 2048 and same.value == 0


@pytest.mark.parametrize(("candidate", "side", "value", "needs"), [
    (PowerLawFit(a=0.1, b=4.0, gamma=0.5), "above", 0.0, "more than 2048"),  # would need 8192 labels
    (PowerLawFit(a=0.2, b=1.0, gamma=0.5), "above", 0.0, "more than 2048"),  # its floor is above the reference
    (PowerLawFit(a=0.1, b=0.1, gamma=0.5), "below", 2016.0, "fewer than 32"),  # would need 5.12 labels
    (PowerLawFit(a=0.05, b=0.0, gamma=0.5), "below", 2016.0, "fewer than 32"),  # flat, better than the base
])
def test_labels_saved_outside_the_range_is_a_flagged_bound_never_an_extrapolation(candidate, side, value, needs):
    reading = read_labels_saved(BASE_CURVE, candidate, 32, 2048)
    assert not reading.in_range and reading.out_of_range == side and reading.candidate_labels is None
    assert reading.value == value and needs in reading.reason
    assert math.isfinite(reading.value)  # the store takes it; the flag says it is a bound


def test_seed_spread_is_the_mean_sample_std_and_count():
    mean, std, n = seed_spread([0.5, 0.7, 0.9])
    assert (mean, std, n) == (pytest.approx(0.7), pytest.approx(0.2), 3)
    assert seed_spread([0.6]) == (pytest.approx(0.6), None, 1)


def test_repeated_epoch_steps_give_full_batches_from_back_to_back_shuffles():
    from scoring.finetune import Encoded

    n = 5
    train = Encoded(input_ids=torch.arange(n * 3).reshape(n, 3), token_type_ids=None,
                    lengths=torch.tensor([3, 1, 2, 3, 2]), labels=torch.arange(n))
    cfg = replace(SampleEfficiencyConfig().finetune, batch_size=8, micro_batch_size=4)
    stream = repeated_epoch_steps(train, cfg, torch.Generator().manual_seed(0))
    steps = [next(stream) for _ in range(5)]  # 40 examples: 8 epochs of 5
    assert all([len(b.labels) for b in step] == [4, 4] for step in steps)
    seen = torch.cat([b.labels for step in steps for b in step])
    assert torch.bincount(seen).tolist() == [8] * n  # every example equally often, n < batch_size included


def _tiny_job(tmp_path):
    from scoring.base import ScoringJob
    from tests.helpers.tiny_models import build_candidate
    from tests.helpers.tiny_suite import write_tiny_suite

    base = build_base(TINY_BERT, tmp_path / "base")
    cand = build_candidate(base, tmp_path / "cand", steps=5)
    data = write_tiny_suite(tmp_path / "data", n_train=64, n_test=40)
    job = ScoringJob(repo_id="org/cand", revision="c" * 40, model_dir=cand, base_id="org/base",
                     base_revision="b" * 40, base_dir=base)
    return job, data


def _tiny_cfg(**kw) -> SampleEfficiencyConfig:
    ft = replace(SampleEfficiencyConfig().finetune, max_epochs=1, batch_size=8, micro_batch_size=8, max_length=24,
                 eval_every_examples=16)
    return SampleEfficiencyConfig(**{"n_labels": (8, 16, 32), "seeds": 1, "steps": 3, "rank": 4,
                                     "targets": "cats", "finetune": ft, **kw})


def test_every_n_trains_exactly_the_configured_steps(tmp_path, monkeypatch):
    import scoring.finetune as finetune
    from scoring.sample_efficiency import lora_run
    from scoring.target_data import load_target

    job, data = _tiny_job(tmp_path)
    [spec] = suite("cats", local_root=data)
    target = load_target(spec, seed=0, local_root=data)
    counted: list[int] = []
    real_step = finetune.train_step

    def counting_step(model, optimizer, micro_batches, cfg, **kw):
        counted.append(sum(len(b.labels) for b in micro_batches))
        return real_step(model, optimizer, micro_batches, cfg, **kw)

    monkeypatch.setattr(finetune, "train_step", counting_step)
    cfg = _tiny_cfg(steps=5)
    steps_per_n = {}
    for n in (4, 8, 32, 64):  # fewer labels than a batch, one batch, four batches, eight
        counted.clear()
        result = lora_run(job.base_dir, target, n, cfg, seed=0, device="cpu")
        steps_per_n[n] = (len(counted), set(counted), result.steps, result.examples_seen, result.train_examples)
    assert steps_per_n == {n: (5, {8}, 5, 40, n) for n in (4, 8, 32, 64)}  # n no longer sets the compute


def test_scorer_writes_the_curve_of_both_models_the_spread_and_the_labels_saved(tmp_path):
    from data.payloads import LabelsSaved, LoraRun
    from scoring.base import ScoringContext
    from scoring.sample_efficiency import SampleEfficiencyScorer

    job, data = _tiny_job(tmp_path)
    cfg = _tiny_cfg(seeds=2)
    scores = SampleEfficiencyScorer(cfg, local_root=data).score(job, ScoringContext())
    curve = [s for s in scores if s.metric == "lora_accuracy"]
    assert sorted((s.repo_id, s.extra["n_labels"], s.seed) for s in curve) == sorted(
        (r, n, seed) for r in ("org/base", "org/cand") for n in (8, 16, 32) for seed in (0, 1))
    assert all(0 <= s.value <= 1 and s.target == f"cats@{s.extra['n_labels']}" for s in curve)
    runs = {(s.repo_id, s.extra["n_labels"], s.seed): (s.value, LoraRun.from_json(s.extra)) for s in curve}
    assert {(run.steps, run.batch_size) for _, run in runs.values()} == {(3, 8)}  # equal steps at every n
    assert all(run.train_examples == n for (_, n, _), (_, run) in runs.items())
    for (repo, n, _), (_, run) in runs.items():  # each point carries its (model, n)'s spread over the seeds
        values = [runs[(repo, n, seed)][0] for seed in (0, 1)]
        assert run.seeds == 2 and run.seed_mean == pytest.approx(sum(values) / 2)
        assert run.seed_std == pytest.approx(abs(values[0] - values[1]) / math.sqrt(2), abs=1e-12)
    [saved] = [s for s in scores if s.metric == "labels_saved"]
    payload = LabelsSaved.from_json(saved.extra)
    assert saved.repo_id == "org/cand" and math.isfinite(saved.value)
    assert set(payload.fits) == {"org/base", "org/cand"} and set(payload.curves) == {"org/base", "org/cand"}
    assert (payload.n_min, payload.n_max, payload.steps, payload.base_labels) == (8, 32, 3, 32.0)
    assert payload.in_range is (payload.out_of_range == "")
    if payload.in_range:
        assert 8 <= payload.candidate_labels <= 32 and saved.value == pytest.approx(32 - payload.candidate_labels)
    else:
        assert payload.candidate_labels is None and payload.reason
        assert saved.value == {"below": 24.0, "above": 0.0}[payload.out_of_range]
    for repo, points in payload.curves.items():
        assert [p.n_labels for p in points] == [8, 16, 32] and {p.seeds for p in points} == {2}
        for p in points:
            assert p.mean == pytest.approx(runs[(repo, p.n_labels, 0)][1].seed_mean)
            assert p.std == pytest.approx(runs[(repo, p.n_labels, 0)][1].seed_std)
    assert payload.base_accuracy == pytest.approx(runs[("org/base", 32, 0)][1].seed_mean)
    assert len({s.config_hash for s in scores}) == 1


def test_the_config_refuses_no_steps_and_too_few_sizes():
    with pytest.raises(ValueError, match="steps"):
        SampleEfficiencyConfig(steps=0)
    with pytest.raises(ValueError, match="three distinct"):
        SampleEfficiencyConfig(n_labels=(32, 32, 128))
