"""Crawl a local Hub of tiny models, probe every candidate, intertrain only the top K by probe."""

from __future__ import annotations

from dataclasses import replace

import pytest

from data.crawler import crawl
from data.hub import HubClient
from data.store import Store
from scoring.__main__ import main
from scoring.base import ScoringContext
from scoring.config import PROBE, QUICK, IntertrainingConfig, LinearProbeConfig
from scoring.intertraining import IntertrainingScorer
from scoring.linear_probe import LinearProbeScorer
from service.stages import probe_candidates, score_top_k, top_by_probe
from tests.helpers.tiny_models import shared_root, tiny_family_hub
from tests.helpers.tiny_suite import write_tiny_suite

pytestmark = pytest.mark.slow

BASE = "tiny/bert-base"
TAGS = ("transformers", "bert", f"base_model:{BASE}", f"base_model:finetune:{BASE}")
TINY = replace(QUICK, lr=1e-3, max_train_examples=64, max_eval_examples=50, eval_every_examples=64,
               patience_examples=256, max_length=24, batch_size=16, micro_batch_size=16, max_epochs=2)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("stages")
    hub = tiny_family_hub(root, BASE, models=shared_root(tmp_path_factory))
    with hub:
        yield {"hub": hub, "data": write_tiny_suite(root / "data", n_train=120, n_test=60)}


def test_probe_everything_then_intertrain_the_top_k(world, settings, tmp_path):
    s = replace(settings, hub_endpoint=world["hub"].url, db_path=tmp_path / "lb.db")
    store, hub = Store(s.db_path), HubClient(s)
    crawl(BASE, hub, store, s)
    ctx = ScoringContext(has_score=lambda *key: store.has_score(*key), cache_dir=tmp_path / "cache")
    probe_scorer = LinearProbeScorer(LinearProbeConfig(probe=replace(PROBE, max_train_examples=120), target="cats"),
                                     local_root=world["data"])
    assert probe_candidates(store, BASE, probe_scorer, hub.snapshot, ctx) == 4  # 3 candidates + the base
    assert probe_candidates(store, BASE, probe_scorer, hub.snapshot, ctx) == 0  # nothing left to probe

    probes = {s_.repo_id: s_.value for s_ in store.scores(scorer="linear_probe")}
    top = top_by_probe(store, BASE, 2)
    expected = sorted((r for r in probes if r != BASE), key=lambda r: (-probes[r], r))[:2]
    assert [r for r, _ in top] == expected

    inter = IntertrainingScorer(IntertrainingConfig(finetune=TINY, suite="dogs", base_seeds=2),
                                local_root=world["data"])
    assert score_top_k(store, BASE, 2, inter, hub.snapshot, ctx) == 2
    scored = {s_.repo_id for s_ in store.scores(scorer="intertraining")}
    assert scored == {BASE, *expected}


def test_stage_command_reports_the_probe_gain_correlation(world, settings, tmp_path, capsys):
    db = tmp_path / "lb.db"
    s = replace(settings, hub_endpoint=world["hub"].url, db_path=db)
    crawl(BASE, HubClient(s), Store(db), s)
    common = ["--base", BASE, "--db", str(db), "--endpoint", world["hub"].url, "--local-root", str(world["data"]),
              "--quiet"]
    assert main(["stage", "probe", "--probe-target", "cats", *common]) == 0
    out = capsys.readouterr().out
    assert "stage 1: probed 4 models" in out and "probe vs mean gain" in out
    assert main(["stage", "probe", "--base", "nobody/none", "--db", str(db), "--quiet"]) == 2
