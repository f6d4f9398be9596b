"""Intertraining gain end to end on tiny models and a tiny local suite: known answers, reuse, errors."""

from __future__ import annotations

import math
import shutil
from dataclasses import replace

import pytest

from data.records import Score
from data.store import Store
from data.targets import suite
from ranking.leaderboard import build_leaderboard, scores_frame
from scoring.__main__ import main
from scoring.base import ScoringContext, ScoringJob, directory_revision
from scoring.config import QUICK, IntertrainingConfig
from scoring.intertrain import train_source_model
from scoring.intertraining import IntertrainingScorer
from scoring.target_data import load_target
from tests.helpers.tiny_models import tiny_checkpoints
from tests.helpers.tiny_suite import write_tiny_suite

pytestmark = pytest.mark.slow

TINY = replace(QUICK, lr=1e-3, max_train_examples=200, max_eval_examples=100, eval_every_examples=100,
               patience_examples=400, max_length=24, batch_size=16, micro_batch_size=16, max_epochs=2)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("world")
    ckpt = tiny_checkpoints(root / "tiny")
    data = write_tiny_suite(root / "datasets")
    [source] = suite("cats", local_root=data)
    related = root / "bert-cats"
    train_source_model(ckpt["bert-base"], "tiny/bert-base", load_target(source, local_root=data),
                       replace(TINY, max_epochs=6, max_train_examples=400, eval_every_examples=400), related)
    return {"base": ckpt["bert-base"], "related": related, "data": data, "root": root}


def job_for(world, model_dir, repo_id):
    return ScoringJob(repo_id=repo_id, revision=directory_revision(model_dir), model_dir=model_dir,
                      base_id="tiny/bert-base", base_revision=directory_revision(world["base"]),
                      base_dir=world["base"])


def ranked(scores: list[Score]):
    rows = [(s.repo_id, s.revision, s.scorer, s.metric, s.target, s.seed, s.value, s.config_hash) for s in scores]
    return build_leaderboard(scores_frame(rows), base_id="tiny/bert-base", source="project")


def test_a_candidate_identical_to_its_base_gains_exactly_zero(world, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(world["base"], copy)
    scorer = IntertrainingScorer(IntertrainingConfig(finetune=TINY, suite="cats,dogs", base_seeds=2,
                                                     candidate_seeds=2), local_root=world["data"])
    scores = scorer.score(job_for(world, copy, "tiny/copy"), ScoringContext())
    assert len(scores) == 2 * 2 * 2  # 2 targets x (2 base + 2 candidate seeds)
    row = ranked(scores).rows.iloc[0]
    assert row["mean_gain"] == 0.0 and row["gain:cats"] == 0.0 and row["gain:dogs"] == 0.0
    assert not row["beats_base"]
    again = scorer.score(job_for(world, copy, "tiny/copy"), ScoringContext())
    assert [s.value for s in again] == [s.value for s in scores]  # same seeds, same numbers


def test_a_related_source_gains_and_the_table_matches_a_hand_computation(world):
    few_shot = replace(TINY, max_train_examples=64, max_epochs=3)  # where a better start shows
    scorer = IntertrainingScorer(IntertrainingConfig(finetune=few_shot, suite="cats_again,dogs", base_seeds=3),
                                 local_root=world["data"])
    scores = scorer.score(job_for(world, world["related"], "tiny/bert-cats"), ScoringContext())
    base = {t: [s.value for s in scores if s.repo_id == "tiny/bert-base" and s.target == t]
            for t in ("cats_again", "dogs")}
    cand = {s.target: s.value for s in scores if s.repo_id == "tiny/bert-cats"}
    gains = {t: cand[t] - sum(v) / len(v) for t, v in base.items()}
    row = ranked(scores).rows.iloc[0]
    assert row["gain:cats_again"] == pytest.approx(gains["cats_again"])
    assert row["mean_gain"] == pytest.approx((gains["cats_again"] + gains["dogs"]) / 2)
    var = sum(_var(v) / 3 + _var(v) for v in base.values()) / 4
    assert row["gain_ci_low"] == pytest.approx(row["mean_gain"] - 1.959963984540054 * math.sqrt(var))
    assert bool(row["beats_base"]) == (row["gain_ci_low"] > 0)
    assert gains["cats_again"] > 0.2  # trained on the same rule: a much better starting point for that target
    assert row["beats_base"]


def _var(values):
    mean = sum(values) / len(values)
    return sum((v - mean) ** 2 for v in values) / (len(values) - 1)


def test_base_runs_are_computed_once_per_protocol(world, tmp_path):
    store = Store(tmp_path / "lb.db")
    scorer = IntertrainingScorer(IntertrainingConfig(finetune=TINY, suite="dogs", base_seeds=2),
                                 local_root=world["data"])
    ctx = ScoringContext(has_score=lambda *key: store.has_score(*key))
    first = scorer.score(job_for(world, world["related"], "tiny/bert-cats"), ctx)
    store.add_scores(first)
    second = scorer.score(job_for(world, world["base"], "tiny/other"), ctx)
    assert {s.repo_id for s in first} == {"tiny/bert-base", "tiny/bert-cats"}
    assert {s.repo_id for s in second} == {"tiny/other"}  # the base's two seeds came from the store


def test_score_command_writes_scores_prints_gains_and_refuses_bad_input(world, tmp_path, capsys):
    db = tmp_path / "lb.db"
    args = ["score", str(world["related"]), "--base", str(world["base"]), "--name", "tiny/bert-cats",
            "--base-name", "tiny/bert-base", "--suite", "cats_again,dogs", "--local-root", str(world["data"]),
            "--base-seeds", "2", "--db", str(db), "--quiet"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "6 scores for tiny/bert-cats@" in out and "cats_again" in out and "mean gain" in out
    stored = Store(db).scores()
    assert len(stored) == 6 and {s.base_id for s in stored} == {"tiny/bert-base"}
    assert all(s.extra["dataset_revision"] for s in stored)

    before = Store(db).scores()
    assert main([*args[:8], "--suite", "no_such_target", *args[10:]]) == 2
    assert "unknown" in capsys.readouterr().err
    no_weights = tmp_path / "no-weights"
    shutil.copytree(world["related"], no_weights)
    for f in no_weights.glob("*.safetensors"):
        f.unlink()
    assert main(["score", str(no_weights), *args[2:]]) == 1
    assert Store(db).scores() == before  # nothing partial was written
