"""Fisher-guided dropout: the Fisher against closed forms, modules by name, rates, and guided fine-tuning."""

from __future__ import annotations

import json
import random
from dataclasses import replace

import pytest
import torch
from torch import nn
from transformers import AutoConfig, AutoModel, AutoModelForSequenceClassification

from scoring.config import GuidedDropoutConfig
from scoring.fisher import (
    apply_rates,
    dropout_groups,
    empirical_fisher,
    empirical_fisher_loop,
    guided_rates,
    model_fisher_scores,
    module_scores,
)
from tests.helpers.tiny_models import TINY_BERT, WORDS, build_base, pretrain_mlm


def quadratic(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return 0.5 * ((out - y) ** 2).sum(-1).mean()


def test_fisher_of_a_quadratic_loss_matches_its_closed_form():
    # L_k(w, b) = 0.5 (w.x_k + b - y_k)^2  =>  dL_k/dw = r_k x_k, dL_k/db = r_k, with r_k the residual
    gen = torch.Generator().manual_seed(0)
    x, y = torch.randn(50, 4, generator=gen), torch.randn(50, 1, generator=gen)
    model = nn.Linear(4, 1)
    with torch.no_grad():
        residual = model(x) - y
    fisher = empirical_fisher(model, x, y, quadratic, chunk=7)
    torch.testing.assert_close(fisher["weight"], (residual * x).square().mean(0, keepdim=True))
    torch.testing.assert_close(fisher["bias"], residual.square().mean(0))


def test_vmapped_fisher_equals_the_batch_size_one_loop_on_a_real_encoder():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Embedding(30, 8), nn.Flatten(), nn.Linear(8 * 5, 3))
    x, y = torch.randint(30, (20, 5)), torch.randint(3, (20,))
    fast = empirical_fisher(model, x, y, nn.functional.cross_entropy, chunk=6)
    slow = empirical_fisher_loop(model, x, y, nn.functional.cross_entropy)
    for k in fast:
        torch.testing.assert_close(fast[k], slow[k], rtol=1e-4, atol=1e-10)


@pytest.mark.parametrize(("model_type", "expected"), [("bert", 37), ("roberta", 37), ("distilbert", 1 + 2 * 12)])
def test_dropout_modules_are_found_by_name_with_the_parameters_that_feed_them(model_type, expected):
    config = AutoConfig.for_model(model_type, vocab_size=50, num_hidden_layers=12, **(
        {"dim": 8, "hidden_dim": 16, "n_heads": 2, "n_layers": 12} if model_type == "distilbert" else
        {"hidden_size": 8, "intermediate_size": 16, "num_attention_heads": 2}))
    groups = dropout_groups(AutoModel.from_config(config))
    assert len(groups) == expected
    if model_type == "bert":
        assert groups["encoder.layer.3.attention.self.dropout"] == [
            f"encoder.layer.3.attention.self.{m}.{p}" for m in ("query", "key", "value") for p in ("weight", "bias")]
        assert groups["encoder.layer.3.output.dropout"] == [
            f"encoder.layer.3.output.{m}.{p}" for m in ("dense", "LayerNorm") for p in ("weight", "bias")]
        assert all(p.startswith("embeddings.") for p in groups["embeddings.dropout"])


def test_module_score_is_the_mean_of_each_tensor_s_mean():
    fisher = {"a.w": torch.tensor([1.0, 3.0]), "a.b": torch.tensor([10.0]), "c.w": torch.tensor([4.0])}
    scores = module_scores(fisher, {"a.dropout": ["a.w", "a.b"], "c.dropout": ["c.w"]})
    assert scores == {"a.dropout": pytest.approx((2.0 + 10.0) / 2), "c.dropout": pytest.approx(4.0)}


def test_rates_fall_linearly_with_fisher_rank():
    rates = guided_rates({"m2": 5.0, "m0": 1.0, "m3": 9.0, "m1": 2.0}, p_max=0.09, p_min=0.0)
    assert rates == {"m0": pytest.approx(0.09), "m1": pytest.approx(0.06), "m2": pytest.approx(0.03),
                     "m3": pytest.approx(0.0)}
    assert guided_rates({"b": 1.0, "a": 1.0}) == {"a": pytest.approx(0.1), "b": pytest.approx(0.0)}  # ties by name
    with pytest.raises(ValueError):
        guided_rates({"a": 1.0}, p_max=0.05, p_min=0.1)


def test_rates_are_applied_to_a_classifier_s_encoder_and_its_head_dropout_is_left(tmp_path):
    model = AutoModelForSequenceClassification.from_config(TINY_BERT.build_config())
    names = list(dropout_groups(model.bert))
    apply_rates(model, {name: 0.01 * i for i, name in enumerate(names)})
    modules = dict(model.named_modules())
    assert [modules[f"bert.{n}"].p for n in names] == pytest.approx([0.01 * i for i in range(len(names))])
    assert model.dropout.p == pytest.approx(0.1)
    with pytest.raises(KeyError, match="no dropout module"):
        apply_rates(model, {"encoder.layer.9.output.dropout": 0.1})


@pytest.fixture(scope="module")
def tiny_base(tmp_path_factory):
    root = tmp_path_factory.mktemp("fisher")
    rng = random.Random(0)
    corpus = root / "ref.txt"  # one word repeated per document: an MLM learns to read a masked token's neighbours
    corpus.write_text("\n".join(" ".join([rng.choice(WORDS)] * rng.randint(6, 12)) for _ in range(2000)))
    return pretrain_mlm(build_base(TINY_BERT, root / "random"), corpus, root / "base"), corpus


def test_model_fisher_scores_cover_every_dropout_module_and_are_cached(tiny_base, tmp_path):
    base, corpus = tiny_base
    cfg = GuidedDropoutConfig(num_examples=12, seq_len=16, chunk=4, corpus=str(corpus))
    scores = model_fisher_scores(base, cfg, cache_dir=tmp_path)
    assert set(scores) == set(dropout_groups(AutoModel.from_pretrained(base)))
    assert all(v > 0 for v in scores.values())
    [cached] = (tmp_path / "fisher").glob("*.json")
    assert model_fisher_scores(base, cfg, cache_dir=tmp_path) == scores  # read back from the cache
    other = model_fisher_scores(base, replace(cfg, sample_seed=1), cache_dir=tmp_path)
    assert other != scores and len(list((tmp_path / "fisher").glob("*.json"))) == 2


def test_guided_dropout_fine_tunes_with_the_fisher_rates(tiny_base, tmp_path):
    from data.targets import suite
    from scoring.config import QUICK
    from scoring.finetune import finetune
    from scoring.target_data import load_target
    from tests.helpers.tiny_suite import write_reference_text, write_tiny_suite

    base, _ = tiny_base
    data = write_tiny_suite(tmp_path / "data", n_train=64, n_test=40)
    write_reference_text(data, n_rows=2600)  # the Fisher's "local" corpus: 64 + 256 sequences of 62 tokens
    [spec] = suite("cats", local_root=data)
    target = load_target(spec, local_root=data)
    cfg = replace(QUICK, max_train_examples=64, max_epochs=1, batch_size=16, micro_batch_size=16, max_length=24,
                  dropout="guided")
    result = finetune(base, target, cfg, cache_dir=tmp_path / "cache", local_root=data)  # data: the Fisher corpus
    assert 0 <= result.test_score <= 1
    [cached] = (tmp_path / "cache" / "fisher").glob("*.json")
    fisher = json.loads(cached.read_text())
    assert result.dropout_rates == guided_rates(fisher, p_max=cfg.guided.p_max, p_min=cfg.guided.p_min)
    assert max(result.dropout_rates.values()) == cfg.guided.p_max  # the config's rates, not a default's


def test_layer_hook_fisher_equals_the_loop_on_a_tiny_bert_masked_lm(tiny_base):
    from scoring.config import FreeEnergyConfig
    from scoring.fisher import empirical_fisher_hooks
    from scoring.free_energy import scored_model
    from scoring.mlm import Reference, mlm_loss, pack

    base, corpus = tiny_base
    cfg = FreeEnergyConfig(corpus=str(corpus), num_sequences=10, head_sequences=10, seq_len=16)
    ref = Reference(base, cfg, local_root=None)
    model = scored_model(base, "r", ref, cfg)
    x, y = pack(ref.sample_split), ref.sample_split.targets
    fast = empirical_fisher_hooks(model, x, y, mlm_loss, chunk=4)
    slow = empirical_fisher_loop(model, x, y, mlm_loss)
    assert fast.keys() == slow.keys()
    for k in slow:  # position embeddings included (broadcast over the batch), word embeddings too: rows of
        # tokens seen once or twice are ~1e-7, where float32 sums in another order differ by ~1e-10
        torch.testing.assert_close(fast[k], slow[k], rtol=1e-4, atol=1e-10)
    assert all(p.grad is None for p in model.parameters())  # leaves the model clean


def test_layer_hooks_refuse_parameters_they_cannot_split():
    model = nn.Sequential(nn.Linear(3, 3), nn.PReLU())
    with pytest.raises(NotImplementedError):
        from scoring.fisher import empirical_fisher_hooks

        empirical_fisher_hooks(model, torch.randn(4, 3), torch.randn(4, 3), quadratic)


def test_model_page_lists_the_guided_rates_a_revision_was_fine_tuned_with(tmp_path):
    from data.records import Score
    from data.store import Store
    from ui.model_page import guided_dropout_rates

    store = Store(tmp_path / "s.db")
    rates = {"encoder.layer.0.attention.self.dropout": 0.1, "embeddings.dropout": 0.0,
             "encoder.layer.0.output.dropout": 0.05}
    store.add_scores([Score(repo_id="a/x", revision="r" * 40, scorer="intertraining", metric="target_score",
                            target="rte", seed=0, value=0.6, config_hash="h", extra={"dropout_rates": rates})])
    table = guided_dropout_rates(store, "a/x", "r" * 40)
    assert list(table["dropout module"]) == ["encoder.layer.0.attention.self.dropout",
                                             "encoder.layer.0.output.dropout", "embeddings.dropout"]
    assert guided_dropout_rates(store, "a/x", "s" * 40).empty


def test_t_interval_known_values():
    from service.dropout_study import t_interval

    mean, half = t_interval([0.5, 0.6, 0.7])
    assert mean == pytest.approx(0.6) and half == pytest.approx(4.303 * 0.1 / 3 ** 0.5)
    assert t_interval([0.4])[0] == 0.4
