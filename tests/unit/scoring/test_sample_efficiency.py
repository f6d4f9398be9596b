"""Sample efficiency: the power-law fit's known answers, LoRA heads saved and reloaded exactly, the scorer."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest
import torch

from scoring.config import SampleEfficiencyConfig
from scoring.sample_efficiency import PowerLaw, fit_power_law, lora_classifier
from tests.helpers.tiny_models import TINY_BERT, build_base


def test_fit_recovers_a_known_power_law():
    truth = PowerLaw(a=0.08, b=2.5, gamma=0.6)
    ns = [32, 64, 128, 256, 512, 1024, 2048]
    fit = fit_power_law(ns, [truth.error(n) for n in ns])
    assert (fit.a, fit.b, fit.gamma) == (pytest.approx(0.08, abs=1e-4), pytest.approx(2.5, rel=1e-3),
                                         pytest.approx(0.6, rel=1e-3))


def test_fit_is_robust_to_small_noise_and_labels_for_inverts_the_curve():
    truth = PowerLaw(a=0.1, b=1.0, gamma=0.5)
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


def test_scorer_writes_the_curve_of_both_models_and_the_labels_saved(tmp_path):
    from scoring.base import ScoringContext, ScoringJob
    from scoring.sample_efficiency import SampleEfficiencyScorer
    from tests.helpers.tiny_models import build_candidate
    from tests.helpers.tiny_suite import write_tiny_suite

    base = build_base(TINY_BERT, tmp_path / "base")
    cand = build_candidate(base, tmp_path / "cand", steps=5)
    data = write_tiny_suite(tmp_path / "data", n_train=64, n_test=40)
    ft = replace(SampleEfficiencyConfig().finetune, max_epochs=1, batch_size=8, micro_batch_size=8, max_length=24)
    cfg = SampleEfficiencyConfig(n_labels=(8, 16, 32), seeds=1, rank=4, targets="cats", finetune=ft)
    job = ScoringJob(repo_id="org/cand", revision="c" * 40, model_dir=cand, base_id="org/base",
                     base_revision="b" * 40, base_dir=base)
    scores = SampleEfficiencyScorer(cfg, local_root=data).score(job, ScoringContext())
    curve = [s for s in scores if s.metric == "lora_accuracy"]
    assert sorted((s.repo_id, s.extra["n_labels"]) for s in curve) == sorted(
        (r, n) for r in ("org/base", "org/cand") for n in (8, 16, 32))
    assert all(0 <= s.value <= 1 and s.target == f"cats@{s.extra['n_labels']}" for s in curve)
    [saved] = [s for s in scores if s.metric == "labels_saved"]
    assert saved.repo_id == "org/cand" and math.isfinite(saved.value)
    assert set(saved.extra["fits"]) == {"org/base", "org/cand"}
    assert len({s.config_hash for s in scores}) == 1
