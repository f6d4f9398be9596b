"""The free-energy scorer on tiny BERT checkpoints: corpus, head handling, F's formula, stored scores."""

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
from scoring.free_energy import (
    BackboneWithHead,
    FreeEnergyScorer,
    Reference,
    detach_head,
    free_energy,
    gradient_norm,
    mlm_loss,
    pack,
    scored_model,
    trace_summary,
)
from scoring.reference_corpus import corpus_documents, masked_corpus
from tests.helpers.tiny_models import TINY_BERT, WORDS, TinySpec, build_base, build_candidate, write_word_tokenizer

SGLD = SGLDConfig(epsilon=1e-4, gamma=100.0, num_chains=2, num_draws=20, num_burnin=5, batch_size=8)


@pytest.fixture(scope="module")
def corpus_file(tmp_path_factory) -> Path:
    rng = random.Random(0)
    path = tmp_path_factory.mktemp("corpus") / "reference.txt"
    zipf = [1 / (rank + 1) for rank in range(len(WORDS))]  # a skewed unigram law: something a head can learn
    path.write_text("\n".join(" ".join(rng.choices(WORDS, weights=zipf, k=rng.randint(5, 15))) for _ in range(400)))
    return path


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("fe_models")
    base = build_base(TINY_BERT, root / "base")
    headless = root / "headless"
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        AutoModel.from_config(TINY_BERT.build_config()).save_pretrained(headless)  # encoder only, no MLM head
    write_word_tokenizer(headless, TINY_BERT.vocab, "bert")
    return {"base": base, "headless": headless,
            "candidate": build_candidate(base, root / "candidate", steps=20, seed=1)}


def config(corpus_file: Path, **kw) -> FreeEnergyConfig:
    kw = {"head_sequences": 48, **kw}
    return FreeEnergyConfig(sgld=SGLD, corpus=str(corpus_file), num_sequences=48, seq_len=24, head_steps=40, **kw)


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


def test_the_splits_are_disjoint_windows_of_one_corpus(models, corpus_file):
    cfg = config(corpus_file, head_sequences=30)
    ref = Reference(models["base"], cfg, local_root=None)
    assert len(ref.head_split) == 30 and len(ref.sample_split) == cfg.num_sequences
    a = {tuple(row) for row in ref.head_split.input_ids.tolist()}
    assert not a & {tuple(row) for row in ref.sample_split.input_ids.tolist()}
    assert ref.head_split.revision == ref.sample_split.revision == ref.revision


def test_every_model_is_scored_under_its_own_head_whatever_its_checkpoint_ships(models, corpus_file, tmp_path):
    """The same encoder saved with and without a masked-LM head is one model: same head, same loss, same F."""
    cfg = config(corpus_file)
    bare = tmp_path / "bare"
    AutoModel.from_pretrained(models["base"]).save_pretrained(bare)  # the base's encoder, no head
    write_word_tokenizer(bare, TINY_BERT.vocab, "bert")
    ref = Reference(models["base"], cfg, local_root=None)
    shipped, stripped = (scored_model(d, "r", ref, cfg) for d in (models["base"], bare))
    x = pack(ref.sample_split)
    with torch.no_grad():
        torch.testing.assert_close(shipped(x), stripped(x), rtol=1e-5, atol=1e-5)
    a, b = (free_energy(d, "r", ref, cfg) for d in (models["base"], bare))
    assert a.free_energy == pytest.approx(b.free_energy, rel=1e-5)


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


def test_the_head_is_fitted_on_split_a_cached_and_generalises_to_split_b(models, corpus_file, tmp_path):
    cfg = config(corpus_file)
    ref = Reference(models["headless"], cfg, local_root=None)
    cfg = replace(cfg, head_steps=300)
    untrained = scored_model(models["headless"], "r", ref, replace(cfg, head_steps=0))
    fitted = scored_model(models["headless"], "r", ref, cfg, cache_dir=tmp_path)
    [cached] = (tmp_path / "free_energy_heads").glob("*.safetensors")
    again = scored_model(models["headless"], "r", ref, cfg, cache_dir=tmp_path)
    for (name, p), (_, q) in zip(fitted.head.state_dict().items(), again.head.state_dict().items(), strict=True):
        assert torch.equal(p, q), name
    b = ref.sample_split
    with torch.no_grad():
        losses = [float(mlm_loss(m(pack(b)), b.targets)) for m in (untrained, fitted)]
    assert losses[1] < losses[0] - 0.1, losses  # learned on A, better on B: not memorised
    assert cached.stat().st_size > 0


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


def test_a_localized_minimisation_lowers_the_penalised_loss_and_the_gradient_before_sampling(models, corpus_file):
    from scoring.free_energy import localize

    cfg = config(corpus_file, localize_steps=60, localize_lr=1e-3)
    ref = Reference(models["base"], cfg, local_root=None)
    b = ref.sample_split
    model = scored_model(models["candidate"], "c", ref, cfg)
    start = {k: p.detach().clone() for k, p in model.named_parameters() if p.requires_grad}
    with torch.no_grad():
        before = float(mlm_loss(model(pack(b)), b.targets))
    localize(model, b, cfg, "cpu")
    moved = sum(float((p.detach() - start[k]).pow(2).sum()) for k, p in model.named_parameters() if k in start)
    with torch.no_grad():
        after = float(mlm_loss(model(pack(b)), b.targets))
    n = cfg.num_sequences
    pull = cfg.sgld.gamma / (2 * n / math.log(n))
    assert 0 < moved and after + pull * moved < before  # the localized objective went down from w*
    result = free_energy(models["candidate"], "c", ref, cfg)  # F, L_n and the chains at the end point
    assert result.start_grad_norm is not None and result.grad_norm < result.start_grad_norm
    assert result.llc.init_loss == pytest.approx(after, rel=1e-4)
    assert free_energy(models["candidate"], "c", ref, config(corpus_file)).start_grad_norm is None


def test_gradient_norm_is_the_norm_of_the_full_batch_gradient(models, corpus_file):
    cfg = config(corpus_file)
    ref = Reference(models["base"], cfg, local_root=None)
    model = scored_model(models["base"], "b", ref, cfg)
    b = ref.sample_split
    grads = torch.autograd.grad(mlm_loss(model(pack(b)), b.targets), list(model.parameters()))
    expected = float(torch.sqrt(sum(g.double().pow(2).sum() for g in grads)))
    assert gradient_norm(model, b, "cpu") == pytest.approx(expected, rel=1e-4)


def test_scorer_stores_four_metrics_for_candidate_and_base_under_one_protocol(models, corpus_file):
    scorer = FreeEnergyScorer(config(corpus_file))
    job = ScoringJob(repo_id="org/cand", revision="c" * 40, model_dir=models["candidate"], base_id="org/base",
                     base_revision="b" * 40, base_dir=models["base"])
    scores = scorer.score(job, ScoringContext())
    assert sorted((s.repo_id, s.metric) for s in scores) == sorted(
        (r, m) for r in ("org/cand", "org/base") for m in ("free_energy", "llc_mean", "llc_std", "init_loss"))
    assert len({s.config_hash for s in scores}) == 1
    by = {(s.repo_id, s.metric): s for s in scores}
    cand = by["org/cand", "free_energy"]
    assert cand.extra["num_chains"] == 2 and len(cand.extra["per_chain"]) == 2 and cand.extra["head"] == "refit"
    assert by["org/cand", "llc_mean"].value == pytest.approx(sum(cand.extra["per_chain"]) / 2)
    assert len(cand.extra["trace"]) == 2 and len(cand.extra["trace"][0]) == 20
    assert cand.extra["grad_norm"] > 0 and 0 <= cand.extra["acceptance"] <= 1
    for s in scores:  # the gate's verdict is every metric's status, with its reasons in the payload
        assert s.status == ("unconverged" if s.extra["gate"] else "ok")
    # the base's score is reused when the store already has it
    again = scorer.score(job, ScoringContext(has_score=lambda repo, *rest: repo == "org/base"))
    assert {s.repo_id for s in again} == {"org/cand"}
    assert [s.value for s in again] == [by["org/cand", m].value for m in ("free_energy", "llc_mean", "llc_std",
                                                                          "init_loss")]


def test_a_chain_too_short_to_relax_is_stored_unconverged(models, corpus_file):
    cfg = replace(config(corpus_file), sgld=replace(SGLD, num_draws=3, num_burnin=0))  # R-hat needs 4 draws
    job = ScoringJob(repo_id="org/base", revision="b" * 40, model_dir=models["base"], base_id="org/base",
                     base_revision="b" * 40, base_dir=models["base"])
    scores = FreeEnergyScorer(cfg).score(job, ScoringContext())
    assert {s.status for s in scores} == {"unconverged"}
    assert "too few draws for R-hat" in scores[0].extra["gate"]


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
                         replace(SGLD, mala_every=1), ladder=(1e3, 1e-6), gammas=(100.0,), time=2e-5)
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
