"""Linear probe: known answers for the convex fit and the pooling, and the prefilter on a tiny model."""

from __future__ import annotations

import random
import shutil
from dataclasses import replace

import pytest
import torch

from data.errors import ScoringError
from scoring.config import PROBE
from scoring.examples import Example, TargetData
from scoring.probe import extract_features, fit_logistic, load_encoder, predict, probe, token_batches
from tests.helpers.tiny_models import WORDS, shared_root, tiny_checkpoints


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    return tiny_checkpoints(shared_root(tmp_path_factory) / "tiny")


def word_task(n: int, seed: int) -> tuple[Example, ...]:
    """label 1 iff the sentence contains 'dog' — linearly visible in mean-pooled embeddings."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        words = rng.sample(WORDS[:150], 8)
        label = i % 2
        if label:
            words[rng.randrange(8)] = "dog"
        out.append(Example(" ".join(words), None, label))
    return tuple(out)


def test_logistic_fit_separates_separable_data_and_is_deterministic():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(400, 5, generator=g)
    y = (x[:, 0] + 0.5 * x[:, 3] > 0).long()
    w, b, mean, std = fit_logistic(x, y, 2, replace(PROBE, l2=1e-4))
    assert (predict(w, b, mean, std, x) == y).float().mean() > 0.98
    w2, *_ = fit_logistic(x, y, 2, replace(PROBE, l2=1e-4))
    assert torch.equal(w, w2)
    three = (x[:, 0] > 0.5).long() + (x[:, 0] > -0.5).long()  # three classes along one axis
    w3, b3, m3, s3 = fit_logistic(x, three, 3, PROBE)
    assert (predict(w3, b3, m3, s3, x) == three).float().mean() > 0.95


def test_mean_pooling_ignores_padding(ckpt):
    model, tokenizer = load_encoder(ckpt["bert-base"])
    short, long_ = Example("the dog", None, 0), Example(" ".join(WORDS[:30]), None, 1)
    alone = extract_features(model, tokenizer, (short,), PROBE)
    together = extract_features(model, tokenizer, (long_, short), PROBE)
    assert torch.allclose(alone[0], together[1], atol=1e-5)
    encoded = tokenizer(["the dog"], return_tensors="pt")
    with torch.no_grad():
        manual = model(**encoded).last_hidden_state.mean(1)[0]
    assert torch.allclose(alone[0], manual, atol=1e-5)


def test_batches_are_cut_by_token_count_within_the_budget_and_cover_every_row_once():
    lengths = [5, 1, 3, 10, 2, 2, 7, 1]
    batches = token_batches(lengths, 8)
    assert sorted(i for b in batches for i in b) == list(range(len(lengths)))
    assert all(len(b) * max(lengths[i] for i in b) <= 8 or len(b) == 1 for b in batches)
    assert batches[0] == [1, 7, 4, 5]  # the shortest first, four of them fit: 4 x 2 = 8 tokens
    assert [lengths[b[0]] for b in batches] == sorted(lengths[b[0]] for b in batches)


@pytest.mark.parametrize("model_type", ["bert", "roberta"])
def test_features_do_not_depend_on_the_batching_and_pairs_keep_their_segments(ckpt, model_type):
    model, tokenizer = load_encoder(ckpt[f"{model_type}-base"])
    rng = random.Random(1)
    examples = tuple(Example(" ".join(rng.choices(WORDS[:150], k=rng.randint(1, 20))),
                             " ".join(rng.choices(WORDS[:150], k=rng.randint(1, 6))) if i % 3 else None, 0)
                     for i in range(23))
    batched = extract_features(model, tokenizer, examples, replace(PROBE, batch_size=4))
    for i in (0, 1, 2, 5, 22):  # one at a time: no padding at all
        alone = extract_features(model, tokenizer, (examples[i],), PROBE)
        assert torch.allclose(batched[i], alone[0], atol=1e-5), i
    encoded = tokenizer(examples[1].text, examples[1].text_pair or "", return_tensors="pt")
    with torch.no_grad():
        manual = model(**encoded).last_hidden_state.mean(1)[0]  # the pair's token types as the tokenizer gives them
    assert torch.allclose(batched[1], manual, atol=1e-5)


def test_probe_learns_a_visible_task_and_caches_features(ckpt, tmp_path):
    target = TargetData(name="dog", train=word_task(300, 0), eval=(), test=word_task(200, 1),
                        label_names=("no", "yes"), revision="r1")
    first = probe(ckpt["bert-base"], target, PROBE, cache_dir=tmp_path, model_key="tiny/base@1")
    assert first.accuracy > 0.8 and first.train_examples == 300 and first.test_examples == 200
    assert len(list((tmp_path / "probe-features").glob("*.pt"))) == 1
    again = probe(ckpt["bert-base"], target, PROBE, cache_dir=tmp_path, model_key="tiny/base@1")
    assert again.accuracy == first.accuracy and again.feature_seconds < first.feature_seconds


def test_probe_refuses_what_it_cannot_probe(ckpt, tmp_path):
    regression = TargetData(name="stsb", train=word_task(10, 0), eval=(), test=word_task(10, 1),
                            label_names=("score",), metric="spearman")
    with pytest.raises(ScoringError, match="needs a classification target"):
        probe(ckpt["bert-base"], regression, PROBE)
    no_weights = tmp_path / "no-weights"
    shutil.copytree(ckpt["bert-base"], no_weights)
    for f in no_weights.glob("*.safetensors"):
        f.unlink()
    target = TargetData(name="dog", train=word_task(10, 0), eval=(), test=word_task(10, 1), label_names=("a", "b"))
    with pytest.raises(ScoringError, match="no safetensors weights"):
        probe(no_weights, target, PROBE)
