"""Known-answer tests for the fine-tuning loop in scoring/finetune.py, on tiny real BERT/RoBERTa checkpoints.

The synthetic targets are built from the tiny vocabulary: "has_cat" (does the word "cat" appear?), "same_first"
(sentence pairs: do both texts start with the same word?) and "cat_count" (regression: how many times "cat" appears).
"""

from __future__ import annotations

import json
import logging
import random
import shutil
from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest
import torch
from safetensors.torch import load_file, save_file
from transformers import CLIPConfig

import scoring.finetune as finetune_module
from data.errors import ScoringError
from scoring.config import QUICK
from scoring.examples import Example, TargetData
from scoring.finetune import (
    FinetuneResult,
    collate,
    cpu_has_bf16,
    encode,
    epoch_micro_batches,
    finetune,
    get_lr,
    load_classifier,
    spearman,
    train_classifier,
    train_step,
    uses_bf16,
)
from tests.helpers.tiny_models import WORDS, shared_root, tiny_checkpoints

MODEL_TYPES = pytest.mark.parametrize("model_type", ["bert", "roberta"])
OTHER_WORDS = tuple(w for w in WORDS if w != "cat")
# Small enough for seconds on two CPU cores; the tiny models need a larger lr than QUICK's 1e-4.
TINY = replace(QUICK, lr=1e-3, batch_size=16, micro_batch_size=16, max_steps=80, eval_every_examples=320,
               patience_examples=10**9, max_train_examples=None, max_eval_examples=None)


def _sentence(rng: random.Random) -> list[str]:
    return [rng.choice(OTHER_WORDS) for _ in range(rng.randint(4, 12))]


def _has_cat(n: int, seed: int) -> tuple[Example, ...]:
    rng = random.Random(seed)
    examples = []
    for _ in range(n):
        words, label = _sentence(rng), rng.random() < 0.5
        if label:
            words[rng.randrange(len(words))] = "cat"
        examples.append(Example(" ".join(words), None, int(label)))
    return tuple(examples)


def _same_first(n: int, seed: int) -> tuple[Example, ...]:
    rng = random.Random(seed)
    examples = []
    for _ in range(n):
        first, second, label = _sentence(rng), _sentence(rng), rng.random() < 0.5
        if label:
            second[0] = first[0]
        examples.append(Example(" ".join(first), " ".join(second), int(first[0] == second[0])))
    return tuple(examples)


def _cat_count(n: int, seed: int) -> tuple[Example, ...]:
    rng = random.Random(seed)
    examples = []
    for _ in range(n):
        words, count = _sentence(rng), rng.randint(0, 3)
        for i in rng.sample(range(len(words)), count):
            words[i] = "cat"
        examples.append(Example(" ".join(words), None, float(count)))
    return tuple(examples)


HAS_CAT = TargetData(name="has_cat", train=_has_cat(480, 1), eval=_has_cat(160, 2), test=_has_cat(160, 3),
                     label_names=("no", "yes"))
SAME_FIRST = TargetData(name="same_first", train=_same_first(320, 1), eval=_same_first(96, 2),
                        test=_same_first(96, 3), label_names=("different", "same"))
CAT_COUNT = TargetData(name="cat_count", train=_cat_count(480, 1), eval=_cat_count(160, 2), test=_cat_count(160, 3),
                       label_names=("count",), metric="spearman")


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory) -> dict[str, Path]:
    return tiny_checkpoints(shared_root(tmp_path_factory) / "tiny")


def _scores(result: FinetuneResult) -> tuple:
    """Everything a run reports except its timings."""
    return (result.eval_score, result.test_score, result.best_step, result.steps, result.examples_seen,
            result.train_examples, result.history)


def _train(model_dir: Path, target: TargetData, cfg):
    """Load and train, returning (result, trained model) so the weights can be compared."""
    num_labels = 1 if target.metric == "spearman" else target.num_labels
    model, tokenizer = load_classifier(model_dir, num_labels, seed=cfg.seed)
    return train_classifier(model, tokenizer, target, cfg), model


def _assert_same_weights(a, b) -> None:
    state_a, state_b = a.state_dict(), b.state_dict()
    assert state_a.keys() == state_b.keys()
    assert all(torch.equal(state_a[k], state_b[k]) for k in state_a)


# --- schedule, batching, metrics: no training -------------------------------------------------------------------


def test_get_lr_warms_up_linearly_then_decays_to_zero():
    cfg = replace(QUICK, lr=1.0, warmup_ratio=0.1)
    assert [get_lr(step, 100, cfg) for step in (0, 5, 10, 55, 100)] == pytest.approx([0.0, 0.5, 1.0, 0.5, 0.0])
    assert get_lr(1, 100, replace(cfg, warmup_ratio=0.001)) == pytest.approx(1.0)  # ceil: one warm-up step
    assert get_lr(0, 10, replace(cfg, warmup_ratio=0.0)) == pytest.approx(1.0)


def test_epoch_micro_batches_cover_every_example_once_and_bucket_by_length(checkpoints):
    _, tokenizer = load_classifier(checkpoints["bert-base"], 2, seed=0)
    data = encode(tokenizer, HAS_CAT.train, 64)
    micro = epoch_micro_batches(data, 16, torch.Generator().manual_seed(0))
    assert sorted(torch.cat(micro).tolist()) == list(range(len(HAS_CAT.train)))
    assert [len(m) for m in micro].count(16) == len(micro)  # 480 = 30 x 16
    assert all(data.lengths[m].max() - data.lengths[m].min() <= 1 for m in micro)  # 480 examples: one chunk
    again = epoch_micro_batches(data, 16, torch.Generator().manual_seed(0))
    assert all(torch.equal(a, b) for a, b in zip(micro, again, strict=True))


def test_collate_pads_each_batch_to_its_longest_example(checkpoints):
    _, tokenizer = load_classifier(checkpoints["bert-base"], 2, seed=0)
    examples = (Example("cat", None, 0), Example("the cat sat on the mat", None, 1))
    data = encode(tokenizer, examples, 64)
    batch = collate(data, torch.tensor([0, 1]))
    assert batch.inputs["input_ids"].shape == (2, 8)  # [CLS] 6 words [SEP]; "sat" and "mat" are [UNK]
    assert batch.inputs["attention_mask"].sum(dim=1).tolist() == [3, 8]
    assert batch.inputs["input_ids"][0, 3:].tolist() == [tokenizer.pad_token_id] * 5
    assert collate(data, torch.tensor([0])).inputs["input_ids"].shape == (1, 3)
    assert batch.labels.tolist() == [0, 1]


def test_encode_truncates_to_max_length_and_keeps_token_types_of_pairs(checkpoints):
    _, tokenizer = load_classifier(checkpoints["bert-base"], 2, seed=0)
    data = encode(tokenizer, SAME_FIRST.train, 10)
    assert data.input_ids.shape[1] == 10 and int(data.lengths.max()) == 10
    assert data.token_type_ids is not None and int(data.token_type_ids.max()) == 1


def test_spearman_matches_pandas_with_ties():
    x = torch.tensor([0.1, 0.4, 0.4, 0.2, 0.9, 0.9, 0.9, -1.0])
    y = torch.tensor([1.0, 3.0, 2.0, 2.0, 5.0, 4.0, 4.0, 0.0])
    expected = pd.Series(x.tolist()).corr(pd.Series(y.tolist()), method="spearman")
    assert spearman(x, y) == pytest.approx(expected, abs=1e-12)
    assert spearman(x, -y) == pytest.approx(-expected, abs=1e-12)
    assert spearman(torch.ones(4), torch.arange(4.0)) == 0.0  # constant predictions carry no ranking


def test_load_classifier_gives_base_and_candidate_the_same_fresh_head(checkpoints):
    base, _ = load_classifier(checkpoints["bert-base"], 2, seed=3)
    candidate, _ = load_classifier(checkpoints["bert-candidate"], 2, seed=3)
    other_seed, _ = load_classifier(checkpoints["bert-base"], 2, seed=4)
    trained_head = load_file(checkpoints["bert-candidate"] / "model.safetensors")["classifier.weight"]
    assert torch.equal(base.classifier.weight, candidate.classifier.weight)
    assert not torch.equal(candidate.classifier.weight, trained_head)  # the candidate's own head is dropped
    assert not torch.equal(base.classifier.weight, other_seed.classifier.weight)
    assert not torch.equal(base.bert.encoder.layer[0].output.dense.weight,
                           candidate.bert.encoder.layer[0].output.dense.weight)


def test_regression_target_loads_one_output(checkpoints):
    model, _ = load_classifier(checkpoints["roberta-base"], 1, seed=0)
    assert model.config.num_labels == 1 and model.config.problem_type == "regression"


@MODEL_TYPES
def test_accumulated_micro_batches_weigh_examples_like_one_batch(checkpoints, model_type):
    """One step over 8 examples as 1x8, 2x4 or 5+3 micro-batches: the same gradient, so the same parameters
    (in float32: under bf16 autocast, rows padded to different lengths round differently)."""
    cfg = replace(TINY, batch_size=8, micro_batch_size=8, bf16=False)
    _, tokenizer = load_classifier(checkpoints[f"{model_type}-base"], 2, seed=0)
    data = encode(tokenizer, HAS_CAT.train[:8], 64)
    assert len(set(data.lengths.tolist())) > 2  # different lengths: the micro-batches pad differently
    splits = {"1x8": [8], "2x4": [4, 4], "5+3": [5, 3]}
    models = {}
    for name, sizes in splits.items():
        model, _ = load_classifier(checkpoints[f"{model_type}-base"], 2, seed=0)
        model.eval()  # no dropout, so the forward passes are comparable
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.01)
        micro_batches = [collate(data, indices) for indices in torch.arange(8).split(sizes)]
        loss = train_step(model, optimizer, micro_batches, cfg)
        models[name] = (model, loss.item())
    reference, reference_loss = models.pop("1x8")
    for model, loss in models.values():
        assert loss == pytest.approx(reference_loss, abs=1e-6)
        for (key, a), b in zip(reference.state_dict().items(), model.state_dict().values(), strict=True):
            torch.testing.assert_close(a, b, atol=1e-6, rtol=0, msg=key)


def test_bf16_autocast_only_where_asked_and_native():
    assert not uses_bf16("cpu", replace(TINY, bf16=False)) and not uses_bf16("cuda", replace(TINY, bf16=False))
    assert uses_bf16("cuda", TINY)
    assert uses_bf16("cpu", TINY) == cpu_has_bf16()
    assert not uses_bf16("meta", TINY)


# --- training runs ----------------------------------------------------------------------------------------------


@pytest.mark.slow
@MODEL_TYPES
def test_tiny_model_learns_the_synthetic_task(checkpoints, model_type):
    result = finetune(checkpoints[f"{model_type}-base"], HAS_CAT, TINY)
    assert result.test_score > 0.8
    assert result.steps == 80 and result.train_examples == 480
    assert result.examples_seen == 80 * 16  # 480 = 30 full micro-batches per epoch
    assert result.examples_per_s > 0 and result.duration_s > 0
    assert [step for step, _, _ in result.history] == [20, 40, 60, 80]


@pytest.mark.slow
def test_sentence_pairs_train_score_and_log(checkpoints, caplog):
    caplog.set_level(logging.INFO, logger="scoring.finetune")
    result = finetune(checkpoints["bert-base"], SAME_FIRST, replace(TINY, max_steps=20), verbose=True)
    assert 0.0 <= result.test_score <= 1.0 and result.steps == 20
    assert "target same_first: step 20/20 loss" in caplog.text  # the nanoGPT-style summary line


@pytest.mark.slow
def test_regression_target_reports_spearman(checkpoints):
    result = finetune(checkpoints["bert-base"], CAT_COUNT, replace(TINY, max_steps=120))
    assert result.test_score > 0.5
    assert all(-1.0 <= score <= 1.0 for _, _, score in result.history)


@pytest.mark.slow
def test_same_seed_gives_identical_runs_and_weights(checkpoints):
    cfg = replace(TINY, max_steps=30, eval_every_examples=160)
    state_before = torch.random.get_rng_state()
    first, first_model = _train(checkpoints["roberta-base"], HAS_CAT, cfg)
    second, second_model = _train(checkpoints["roberta-base"], HAS_CAT, cfg)
    assert _scores(first) == _scores(second)
    _assert_same_weights(first_model, second_model)

    other, other_model = _train(checkpoints["roberta-base"], HAS_CAT, replace(cfg, seed=1))
    assert other.history != first.history
    assert not torch.equal(other_model.classifier.out_proj.weight, first_model.classifier.out_proj.weight)
    assert torch.equal(torch.random.get_rng_state(), state_before)  # no global state changed
    assert not torch.are_deterministic_algorithms_enabled()


@pytest.mark.slow
def test_identical_model_in_another_dir_scores_exactly_the_same(checkpoints, tmp_path):
    """What makes "a candidate identical to its base has an intertraining gain of exactly 0" hold."""
    copy_dir = shutil.copytree(checkpoints["bert-candidate"], tmp_path / "copy")
    cfg = replace(TINY, max_steps=30)
    original = finetune(checkpoints["bert-candidate"], HAS_CAT, cfg)
    copy = finetune(copy_dir, HAS_CAT, cfg)
    assert _scores(copy) == _scores(original)
    assert copy.test_score - original.test_score == 0.0


@pytest.mark.slow
def test_early_stopping_stops_and_restores_the_best_weights(checkpoints, monkeypatch):
    """Each evaluation sees a snapshot of the weights; the test split must be scored with the best step's."""
    snapshots = []

    detail = finetune_module.evaluate_detail

    def evaluate_and_snapshot(model, batches, metric):
        snapshots.append({k: v.clone() for k, v in model.state_dict().items()})
        return detail(model, batches, metric)

    monkeypatch.setattr(finetune_module, "evaluate_detail", evaluate_and_snapshot)
    cfg = replace(TINY, lr=3e-3, max_steps=200, eval_every_examples=64, patience_examples=512)
    result = finetune(checkpoints["bert-base"], HAS_CAT, cfg)

    assert result.steps < 200
    scores = [score for _, _, score in result.history]
    best = scores.index(max(scores))
    assert result.eval_score == scores[best] and result.best_step == result.history[best][0]
    assert result.steps - result.best_step == 512 // 16  # stopped as soon as the patience ran out
    assert result.eval_score > scores[0] and result.eval_score > 0.9  # it learned, then plateaued
    assert len(snapshots) == len(result.history) + 1  # every evaluation, then the test split
    restored, best_state, last_state = snapshots[-1], snapshots[best], snapshots[-2]
    assert all(torch.equal(restored[k], best_state[k]) for k in restored)
    assert not all(torch.equal(restored[k], last_state[k]) for k in restored)


def test_min_steps_lengthens_a_short_run_and_holds_off_early_stopping(checkpoints):
    """The protocol floor: 2 epochs of 96 examples at batch 16 are 12 steps; min_steps 40 makes 40, epochs
    repeating, and a patience of one evaluation cannot stop the run before step 40."""
    cfg = replace(TINY, max_steps=None, max_epochs=2, max_train_examples=96, eval_every_examples=64,
                  patience_examples=64, lr=1e-8)  # lr ~0: no eval ever improves, so patience alone would stop it
    assert finetune(checkpoints["bert-base"], HAS_CAT, cfg).steps < 12
    floored = finetune(checkpoints["bert-base"], HAS_CAT, replace(cfg, min_steps=40))
    assert floored.steps == 40 and floored.examples_seen == 40 * 16


@pytest.mark.slow
def test_subsamples_are_seeded(checkpoints):
    cfg = replace(TINY, max_steps=4, max_train_examples=96, max_eval_examples=50)
    result = finetune(checkpoints["bert-base"], HAS_CAT, cfg)
    assert result.train_examples == 96 and result.examples_seen == 4 * 16
    assert _scores(finetune(checkpoints["bert-base"], HAS_CAT, cfg)) == _scores(result)


# --- errors -----------------------------------------------------------------------------------------------------


def test_model_without_safetensors_is_refused(checkpoints, tmp_path):
    model_dir = tmp_path / "pickled"
    model_dir.mkdir()
    for name in ("config.json", "tokenizer.json", "tokenizer_config.json"):
        shutil.copy(checkpoints["bert-base"] / name, model_dir / name)
    with pytest.raises(ScoringError, match="has no safetensors weights"):
        load_classifier(model_dir, 2, seed=0)


def test_architecture_without_classification_head_is_refused(tmp_path):
    CLIPConfig().save_pretrained(tmp_path)
    save_file({"x": torch.zeros(1)}, tmp_path / "model.safetensors")
    assert json.loads((tmp_path / "config.json").read_text())["model_type"] == "clip"
    with pytest.raises(ScoringError, match="no sequence-classification head"):
        load_classifier(tmp_path, 2, seed=0)


def test_labels_outside_the_label_names_are_refused(checkpoints):
    target = replace(HAS_CAT, label_names=("no",))
    with pytest.raises(ScoringError, match="labels outside"):
        finetune(checkpoints["bert-base"], target, replace(TINY, max_steps=1))


@pytest.mark.slow
def test_diverging_loss_raises_naming_target_and_step(checkpoints):
    with pytest.raises(ScoringError, match=r"target has_cat: non-finite training loss .* at step \d+"):
        finetune(checkpoints["bert-base"], HAS_CAT, replace(TINY, lr=1e30, max_steps=6))
    assert not torch.are_deterministic_algorithms_enabled()  # restored on the way out
