"""The free-energy scorer on tiny BERT checkpoints: corpus and replicates, the sampled block, the head, F's formula,
the re-centring, chains over processes, the stored scores."""

from __future__ import annotations

import math
import random
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from transformers import AutoModel, AutoModelForMaskedLM, AutoTokenizer

from data.errors import ScoringError
from scoring.base import ScoringContext, ScoringJob
from scoring.config import FreeEnergyConfig, SGLDConfig
from scoring.free_energy import FreeEnergyScorer, free_energy, gradient_norm, prepare, scored_model, trace_summary
from scoring.mlm import BackboneWithHead, Reference, detach_head, mlm_loss, pack
from scoring.reference_corpus import corpus_documents, masked_corpus
from tests.helpers.tiny_models import (
    TINY_BERT,
    WORDS,
    TinySpec,
    build_base,
    build_candidate,
    pretrain_mlm,
    write_word_tokenizer,
)

SGLD = SGLDConfig(epsilon=1e-4, gamma=100.0, num_chains=2, num_draws=20, num_burnin=5, batch_size=8, mala_every=5)


@pytest.fixture(scope="module")
def corpus_file(tmp_path_factory) -> Path:
    """Documents that repeat one word: a masked token is its neighbours' word, which an MLM learns to read."""
    rng = random.Random(1)
    path = tmp_path_factory.mktemp("echo") / "echo.txt"
    path.write_text("\n".join(" ".join([rng.choice(WORDS)] * rng.randint(6, 12)) for _ in range(2000)))
    return path


@pytest.fixture(scope="module")
def models(tmp_path_factory, corpus_file) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("fe_models")
    base = pretrain_mlm(build_base(TINY_BERT, root / "random"), corpus_file, root / "base")
    headless = root / "headless"
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        AutoModel.from_config(TINY_BERT.build_config()).save_pretrained(headless)  # encoder only, no MLM head
    write_word_tokenizer(headless, TINY_BERT.vocab, "bert")
    return {"base": base, "headless": headless,
            "candidate": build_candidate(base, root / "candidate", steps=20, seed=1)}


def config(corpus_file: Path, **kw) -> FreeEnergyConfig:
    kw = {"head_sequences": 48, "num_sequences": 48, "head_max_steps": 40, "head_check_every": 10,
          "halving_check": False, **kw}
    return FreeEnergyConfig(sgld=SGLD, corpus=str(corpus_file), seq_len=24, **kw)


def test_masked_corpus_has_a_fixed_count_of_ordinary_targets_and_is_seeded(models, corpus_file):
    tok = AutoTokenizer.from_pretrained(models["base"])
    docs, name = corpus_documents(str(corpus_file))
    a = masked_corpus(tok, docs, name, num_sequences=30, seq_len=20, mask_prob=0.15, seed=0)
    b = masked_corpus(tok, docs, name, num_sequences=30, seq_len=20, mask_prob=0.15, seed=0)
    c = masked_corpus(tok, docs, name, num_sequences=30, seq_len=20, mask_prob=0.15, seed=1)
    ordinary = (a.input_ids[:, 1:-1] != tok.sep_token_id).sum(dim=1)  # [SEP]s between documents are not targets
    assert a.input_ids.shape == (30, 20) and a.positions.shape == (30, round(0.15 * int(ordinary.min())))
    assert (a.input_ids[:, 0] == tok.cls_token_id).all() and (a.input_ids[:, -1] == tok.sep_token_id).all()
    assert torch.equal(a.input_ids, b.input_ids) and a.revision == b.revision
    assert not torch.equal(a.positions, c.positions) and a.revision != c.revision
    assert ((a.positions > 0) & (a.positions < 19)).all()
    assert (a.targets != tok.sep_token_id).all() and (a.targets != tok.cls_token_id).all()
    masked = a.input_ids.gather(1, a.positions)
    assert 0.6 < (masked == tok.mask_token_id).float().mean() < 0.95  # 80% [MASK] in expectation


def test_local_corpus_interleaves_datasets_and_a_short_corpus_is_refused(tmp_path, models):
    from tests.helpers.tiny_suite import write_tiny_suite

    root = write_tiny_suite(tmp_path / "suite", n_train=20, n_test=10)
    docs, name = corpus_documents("local", local_root=root)
    assert name == "local" and len(docs) == 3 * 20
    firsts = [(root / name / "train.csv").read_text().splitlines()[1].rsplit(",", 1)[0]
              for name in sorted(p.name for p in root.iterdir())]
    assert docs[:3] == firsts  # round-robin: the first document of each dataset, in name order
    tok = AutoTokenizer.from_pretrained(models["base"])
    with pytest.raises(ScoringError, match="need"):
        masked_corpus(tok, docs, name, num_sequences=10_000, seq_len=64, mask_prob=0.15, seed=0)
    with pytest.raises(ScoringError, match="neither 'local' nor a readable text file"):
        corpus_documents(str(tmp_path / "missing.txt"))


def test_a_local_corpus_can_leave_datasets_out_and_names_an_unknown_one(tmp_path):
    from tests.helpers.tiny_suite import write_tiny_suite

    root = write_tiny_suite(tmp_path / "suite", n_train=20, n_test=10)
    names = sorted(p.name for p in root.iterdir())
    keep = names[1:]
    docs, name = corpus_documents("local:" + ",".join(keep), local_root=root)
    assert name == "local:" + ",".join(keep) and len(docs) == 20 * len(keep)
    left_out = set((root / names[0] / "train.csv").read_text().splitlines()[1:3])
    assert not any(doc in line for doc in docs for line in left_out)
    with pytest.raises(ScoringError, match=f"no local dataset named nope under .*; there are: {', '.join(names)}"):
        corpus_documents("local:nope," + keep[0], local_root=root)


def test_backbone_with_head_equals_the_full_masked_lm_and_samples_the_encoder_only(models, corpus_file):
    cfg = config(corpus_file)
    ref = Reference(models["base"], cfg, local_root=None)
    full = AutoModelForMaskedLM.from_pretrained(models["base"], attn_implementation="eager").eval()
    encoder, head, given = detach_head(AutoModelForMaskedLM.from_pretrained(models["base"],
                                                                            attn_implementation="eager").eval())
    model = BackboneWithHead(encoder, head, given, cfg.seq_len)
    names = [n for n, _ in model.named_parameters()]
    assert names and all(n.startswith("backbone.") for n in names)
    corpus = ref.sample_split
    with torch.no_grad():
        expected = full(input_ids=corpus.input_ids[:4]).logits.gather(
            1, corpus.positions[:4].unsqueeze(-1).expand(-1, -1, full.config.vocab_size))
        got = model(pack(corpus)[:4])
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)


def original(corpus) -> torch.Tensor:
    return corpus.input_ids.scatter(1, corpus.positions, corpus.targets)


def test_each_replicate_samples_its_own_windows_after_split_a(models, corpus_file):
    """Split A is the same in every replicate; replicate r's split B is the r-th block of windows after it."""
    cfg = config(corpus_file, head_sequences=30, num_sequences=20)
    refs = [Reference(models["base"], replace(cfg, seed=r), local_root=None) for r in range(3)]
    tok = AutoTokenizer.from_pretrained(models["base"])
    docs, name = corpus_documents(str(corpus_file))
    whole = original(masked_corpus(tok, docs, name, num_sequences=90, seq_len=24, mask_prob=0.15, seed=0))
    for r, ref in enumerate(refs):
        assert torch.equal(ref.head_split.input_ids, refs[0].head_split.input_ids)
        assert torch.equal(original(ref.head_split), whole[:30])
        assert torch.equal(original(ref.sample_split), whole[30 + 20 * r:50 + 20 * r])
    assert len({ref.sample_split.revision for ref in refs}) == 3 and len({ref.revision for ref in refs}) == 3


def test_the_unigram_model_counts_the_corpus_outside_split_b(models, corpus_file):
    from scoring.mlm_head import token_counts, unigram_log_probs

    cfg = config(corpus_file)
    ref = Reference(models["base"], cfg, local_root=None)
    tok = AutoTokenizer.from_pretrained(models["base"])
    docs, _ = corpus_documents(str(corpus_file))
    counts = token_counts(tok, docs, ref.vocab_size)
    b = original(ref.sample_split).flatten()
    b = b[~torch.isin(b, torch.tensor(tok.all_special_ids))]
    expected = unigram_log_probs(counts - torch.bincount(b, minlength=ref.vocab_size).double())
    torch.testing.assert_close(ref.unigram, expected)
    assert torch.exp(ref.unigram.double()).sum() == pytest.approx(1.0)
    assert ref.unigram_ce == pytest.approx(float(-expected[ref.sample_split.targets].double().mean()))


def test_a_candidate_gets_its_own_head_tied_to_its_own_embeddings(models, corpus_file):
    cfg = config(corpus_file)
    ref = Reference(models["base"], cfg, local_root=None)
    base, cand = scored_model(models["base"], "b", ref, cfg), scored_model(models["candidate"], "c", ref, cfg)
    for model in (base, cand):  # the decoder is the model's own embeddings at w*, as a constant copy
        decoder, embeddings = model.head.get_output_embeddings().weight, model.backbone.get_input_embeddings().weight
        assert decoder is not embeddings and torch.equal(decoder, embeddings) and not decoder.requires_grad
    assert not torch.equal(base.backbone.get_input_embeddings().weight, cand.backbone.get_input_embeddings().weight)
    transform = [n for n, _ in base.head.named_parameters() if "transform" in n]
    assert transform and not torch.equal(dict(base.head.named_parameters())[transform[0]],
                                         dict(cand.head.named_parameters())[transform[0]])


def test_an_unfitted_head_is_exactly_the_unigram_model_and_fails_the_gate(models, corpus_file):
    cfg = config(corpus_file, head_max_steps=0)
    ref = Reference(models["base"], cfg, local_root=None)
    scored = prepare(models["candidate"], "c", ref, cfg, cache_dir=None, device="cpu")
    with torch.no_grad():
        logits = scored.model(torch.arange(5))
    torch.testing.assert_close(torch.log_softmax(logits, -1), ref.unigram.expand_as(logits), rtol=0, atol=1e-5)
    result = free_energy(models["candidate"], "c", ref, cfg)
    assert result.llc.init_loss == pytest.approx(ref.unigram_ce, abs=1e-5)
    assert any("not below the corpus's unigram cross-entropy" in r for r in result.failures)
    assert "the head did not converge in 0 steps" in result.failures


def test_the_head_is_fitted_and_cached_and_never_ends_worse_than_the_unigram_start(models, corpus_file, tmp_path):
    cfg = config(corpus_file, head_sequences=96, head_max_steps=500, head_lr=1e-2)
    ref = Reference(models["base"], cfg, local_root=None)
    fitted = prepare(models["base"], "b", ref, cfg, cache_dir=tmp_path, device="cpu")
    assert fitted.head.converged and 0 < fitted.head.steps < 500 and fitted.head.loss <= fitted.head.start_loss
    [cached] = (tmp_path / "free_energy_heads").glob("*.safetensors")
    again = prepare(models["base"], "b", ref, cfg, cache_dir=tmp_path, device="cpu")  # from the cache
    assert again.head == fitted.head and cached.stat().st_size > 0
    rows = torch.arange(len(ref.sample_split))
    with torch.no_grad():
        torch.testing.assert_close(again.model(rows), fitted.model(rows))


@pytest.mark.parametrize("fast", [True, False], ids=["masked-positions", "whole-layer"])
def test_the_sampled_block_is_the_last_layer_and_its_loss_is_the_full_models(models, corpus_file, fast):
    cfg = config(corpus_file)
    ref = Reference(models["base"], cfg, local_root=None)
    block = prepare(models["candidate"], "c", ref, cfg, cache_dir=None, device="cpu").model
    assert block.fast  # a BERT layer takes the fast path
    block.fast = fast
    full = scored_model(models["candidate"], "c", ref, cfg)  # every encoder weight, the same fitted head
    layers = full.backbone.encoder.layer
    assert [n for n, _ in block.named_parameters()] == [f"layer.{n}" for n, _ in layers[-1].named_parameters()]
    b = ref.sample_split
    with torch.no_grad():
        torch.testing.assert_close(block(torch.arange(6)), full(pack(b)[:6]), rtol=1e-5, atol=1e-5)


def test_free_energy_is_n_times_the_loss_on_split_b_plus_llc_times_log_n(models, corpus_file):
    cfg = config(corpus_file)
    ref = Reference(models["base"], cfg, local_root=None)
    result = free_energy(models["candidate"], "c", ref, cfg)
    n = cfg.num_sequences
    assert result.n == n and result.llc.nbeta == pytest.approx(n / math.log(n))
    assert result.free_energy == pytest.approx(n * result.llc.init_loss + result.llc.mean * math.log(n))
    model = scored_model(models["candidate"], "c", ref, cfg)
    b = ref.sample_split
    with torch.no_grad():  # L_n(w*) is the loss over all n sequences of split B
        assert result.llc.init_loss == pytest.approx(float(mlm_loss(model(pack(b)), b.targets)), rel=1e-5)
    assert result.llc.loss_traces.shape == (2, 20)
    assert math.isfinite(result.grad_norm) and result.grad_norm > 0
    assert result.checks.burnin_relaxations == pytest.approx(5 / (2 / (1e-4 * 100.0)))
    assert result.checks.critical_term == pytest.approx(result.llc.nbeta ** 2 * result.grad_norm ** 2 / 100.0)


def test_re_centring_lowers_split_a_loss_and_samples_at_the_new_point(models, corpus_file):
    from scoring.free_energy import mean_loss, recentre

    cfg = config(corpus_file, recentre_steps=40, recentre_lr=1e-3)
    ref = Reference(models["base"], cfg, local_root=None)
    scored = prepare(models["candidate"], "c", ref, cfg, cache_dir=None, device="cpu")
    on_a, data_a = scored.train
    before = mean_loss(on_a, data_a)
    assert recentre(on_a, data_a, cfg) > 0 and mean_loss(on_a, data_a) < before
    after_b = mean_loss(scored.model, scored.data)  # the same weights, now on split B
    result = free_energy(models["candidate"], "c", ref, cfg)
    assert result.llc.init_loss == pytest.approx(after_b, rel=1e-5)
    assert result.checkpoint_grad_norm != pytest.approx(result.grad_norm)


def test_gradient_norm_is_the_norm_of_the_full_batch_gradient(models, corpus_file):
    cfg = config(corpus_file)
    ref = Reference(models["base"], cfg, local_root=None)
    scored = prepare(models["base"], "b", ref, cfg, cache_dir=None, device="cpu")
    x, y = scored.data
    grads = torch.autograd.grad(mlm_loss(scored.model(x), y), list(scored.model.parameters()))
    expected = float(torch.sqrt(sum(g.double().pow(2).sum() for g in grads)))
    assert gradient_norm(scored.model, scored.data) == pytest.approx(expected, rel=1e-4)


@pytest.mark.slow
def test_chains_over_two_processes_are_the_chains_of_one(models, corpus_file):
    from scoring.llc_pool import sample_chains

    cfg = config(corpus_file)
    ref = Reference(models["base"], cfg, local_root=None)
    scored = prepare(models["candidate"], "c", ref, cfg, cache_dir=None, device="cpu")
    sgld = replace(SGLD, num_chains=3, init_loss_batches=6)
    one, two = (sample_chains(scored.model, scored.data, mlm_loss, sgld, n=48, workers=w) for w in (1, 2))
    # the same chains, up to the order of float sums (one thread per worker here, the session's threads there)
    assert one.per_chain == pytest.approx(two.per_chain, rel=1e-3, abs=1e-4)
    assert one.init_loss == pytest.approx(two.init_loss, rel=1e-6)
    torch.testing.assert_close(one.loss_traces, two.loss_traces, rtol=1e-4, atol=1e-5)
    assert one.acceptance == pytest.approx(two.acceptance, rel=1e-3) and one.r_hat == pytest.approx(two.r_hat, rel=1e-3)


def test_scorer_stores_every_replicate_of_candidate_and_base_under_one_protocol(models, corpus_file):
    scorer = FreeEnergyScorer(config(corpus_file, replicates=2, halving_check=True))
    job = ScoringJob(repo_id="org/cand", revision="c" * 40, model_dir=models["candidate"], base_id="org/base",
                     base_revision="b" * 40, base_dir=models["base"])
    scores = scorer.score(job, ScoringContext())
    metrics = ("free_energy", "llc_mean", "llc_std", "init_loss", "weight_distance")
    assert sorted((s.repo_id, s.metric, s.seed) for s in scores) == sorted(
        (r, m, seed) for r in ("org/cand", "org/base") for m in metrics for seed in (0, 1))
    assert len({s.config_hash for s in scores}) == 1
    by = {(s.repo_id, s.metric, s.seed): s for s in scores}
    cand = by["org/cand", "free_energy", 0]
    assert cand.extra["num_chains"] == 2 and len(cand.extra["per_chain"]) == 2
    assert cand.extra["sampled"] == "last_block" and cand.extra["unigram_ce"] > 0 and cand.extra["mc_se"] > 0
    assert by["org/cand", "llc_mean", 0].value == pytest.approx(sum(cand.extra["per_chain"]) / 2)
    assert by["org/cand", "init_loss", 0].value != by["org/cand", "init_loss", 1].value  # another split B
    assert len(cand.extra["trace"]) == 2 and len(cand.extra["trace"][0]) == 20
    assert cand.extra["grad_norm"] > 0 and 0 <= cand.extra["acceptance"] <= 1
    assert by["org/base", "weight_distance", 0].value == 0 and by["org/cand", "weight_distance", 1].value > 0
    base0, base1 = by["org/base", "free_energy", 0].extra, by["org/base", "free_energy", 1].extra
    assert base0["halving_llc"] is not None and base1["halving_llc"] is None and cand.extra["halving_llc"] is None
    for s in scores:  # the gate's verdict is every metric's status, with its reasons in the payload
        assert s.status == ("unconverged" if s.extra["gate"] else "ok")
    # the base's scores are reused when the store already has them
    again = scorer.score(job, ScoringContext(has_score=lambda repo, *rest: repo == "org/base"))
    assert {s.repo_id for s in again} == {"org/cand"}
    assert [s.value for s in again] == [by["org/cand", m, seed].value for seed in (0, 1) for m in metrics]


def test_a_chain_too_short_to_relax_is_stored_unconverged(models, corpus_file):
    cfg = replace(config(corpus_file), sgld=replace(SGLD, num_draws=3, num_burnin=0))  # R-hat needs 4 draws
    job = ScoringJob(repo_id="org/base", revision="b" * 40, model_dir=models["base"], base_id="org/base",
                     base_revision="b" * 40, base_dir=models["base"])
    scores = FreeEnergyScorer(cfg).score(job, ScoringContext())
    assert {s.status for s in scores} == {"unconverged"}
    gate = scores[0].extra["gate"]
    assert "too few draws for R-hat" in gate and any(r.startswith("burn-in of 0 relaxation times") for r in gate)


def test_a_candidate_with_another_vocabulary_is_refused(models, corpus_file, tmp_path):
    other = TinySpec(model_type="bert", hidden_size=32)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        cfg = other.build_config()
        cfg.vocab_size += 7
        AutoModel.from_config(cfg).save_pretrained(tmp_path / "other")
    ref = Reference(models["base"], config(corpus_file), local_root=None)
    with pytest.raises(ScoringError, match="vocabulary"):
        free_energy(tmp_path / "other", "o", ref, config(corpus_file))


def test_the_step_rule_runs_on_a_masked_lm_and_counts_a_diverged_rung_as_failing(models, corpus_file):
    from scoring.llc_calibration import choose_step

    cfg = config(corpus_file)
    ref = Reference(models["base"], cfg, local_root=None)
    choice = choose_step(lambda sgld: free_energy(models["base"], "b", ref, replace(cfg, sgld=sgld)).llc,
                         replace(SGLD, mala_every=1), ladder=(1e3, 1e-6), gammas=(1e4,), time=2e-5)
    assert choice.rungs[0].estimate is None and "non-finite" in choice.rungs[0].error
    assert choice.epsilon == 1e-6 and choice.estimate.acceptance >= 0.9  # a tiny step: nearly every move accepted


def test_trace_summary_averages_equal_windows():
    traces = torch.arange(12.0).view(2, 6)
    assert trace_summary(traces, points=3) == [[0.5, 2.5, 4.5], [6.5, 8.5, 10.5]]
    assert trace_summary(traces[:, :2], points=20) == [[0.0, 1.0], [6.0, 7.0]]


def test_detach_head_returns_the_encoder_and_leaves_a_stand_in(models):
    mlm = AutoModelForMaskedLM.from_pretrained(models["base"])
    encoder, head, given = detach_head(mlm)
    assert getattr(head, head.base_model_prefix) is given
    assert sum(p.numel() for p in encoder.parameters()) > 0
