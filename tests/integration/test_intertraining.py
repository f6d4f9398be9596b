"""Intertraining gain end to end on tiny models and a tiny local suite: known answers, reuse, errors."""

from __future__ import annotations

import math
import shutil
from dataclasses import replace

import numpy as np
import pytest

from data.metrics import RERUN_STRIDE
from data.records import Score
from data.store import Store
from data.targets import suite
from ranking.leaderboard import build_leaderboard, scores_frame
from ranking.stats import t_quantile
from scoring.__main__ import main
from scoring.base import ScoringContext, ScoringJob, directory_revision
from scoring.config import QUICK, IntertrainingConfig
from scoring.intertrain import train_source_model
from scoring.intertraining import IntertrainingScorer
from scoring.target_data import load_target
from tests.helpers.tiny_models import shared_root, tiny_checkpoints
from tests.helpers.tiny_suite import write_tiny_suite

pytestmark = pytest.mark.slow

# the tiny base learns every tiny target under this protocol (at lr 1e-3 or with fewer steps it predicts one class
# for every example: a failed run, see test_failed_runs_are_stored_rerun_and_never_averaged)
TINY = replace(QUICK, lr=1e-2, max_train_examples=400, max_eval_examples=100, eval_every_examples=100,
               patience_examples=400, max_length=24, batch_size=16, micro_batch_size=16, max_epochs=3)
FAILING = replace(TINY, lr=1e-3, max_epochs=2, max_train_examples=200)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("world")
    ckpt = tiny_checkpoints(shared_root(tmp_path_factory) / "tiny")
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
    rows = [(s.repo_id, s.revision, s.scorer, s.metric, s.target, s.seed, s.value, s.config_hash, s.status)
            for s in scores]
    return build_leaderboard(scores_frame(rows), base_id="tiny/bert-base", source="project")


def assert_slots_tried_in_order(scores: list[Score], max_reruns: int = 2) -> None:
    """Each (model, target, seed slot) ran among seed, seed + 1000, ... in order (a candidate skips a seed its
    and stopped at the first seed where every model of the slot had an ok run; failed runs carry their reasons."""
    runs: dict[tuple, list[Score]] = {}
    for s in scores:
        runs.setdefault((s.repo_id, s.target, s.seed % RERUN_STRIDE), []).append(s)
    for key, tried in runs.items():
        tried.sort(key=lambda s: s.seed)
        assert [s.seed for s in tried] == [key[2] + RERUN_STRIDE * a for a in range(len(tried))], key
        assert len(tried) <= max_reruns + 1 and all(bool(s.extra["failure"]) == (s.status == "failed") for s in tried)


def test_a_candidate_identical_to_its_base_gains_exactly_zero(world, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(world["base"], copy)
    scorer = IntertrainingScorer(IntertrainingConfig(finetune=TINY, suite="cats,dogs", base_seeds=2,
                                                     candidate_seeds=2), local_root=world["data"])
    scores = scorer.score(job_for(world, copy, "tiny/copy"), ScoringContext())
    assert len(scores) == 2 * 2 * 2 and {s.status for s in scores} == {"ok"}  # 2 targets x (2 base + 2 candidate)
    row = ranked(scores).rows.iloc[0]
    assert row["mean_gain"] == 0.0 and row["gain:cats"] == 0.0 and row["gain:dogs"] == 0.0
    assert not row["beats_base"]
    again = scorer.score(job_for(world, copy, "tiny/copy"), ScoringContext())
    assert [s.value for s in again] == [s.value for s in scores]  # same seeds, same numbers


def test_a_related_source_gains_and_the_table_matches_a_hand_computation(world):
    scorer = IntertrainingScorer(IntertrainingConfig(finetune=TINY, suite="cats_again,dogs", base_seeds=3,
                                                     candidate_seeds=2), local_root=world["data"])
    scores = scorer.score(job_for(world, world["related"], "tiny/bert-cats"), ScoringContext())
    assert_slots_tried_in_order(scores)
    ok = {(s.repo_id, s.target, s.seed): s.value for s in scores if s.status == "ok"}
    gains, per_seed = {}, {}
    for t in ("cats_again", "dogs"):
        pairs = {seed: ok[("tiny/bert-cats", t, seed)] - ok[("tiny/bert-base", t, seed)] for (r, tt, seed) in ok
                 if r == "tiny/bert-cats" and tt == t and ("tiny/bert-base", t, seed) in ok}
        gains[t] = sum(pairs.values()) / len(pairs) if pairs else math.nan
        per_seed[t] = pairs
    row = ranked(scores).rows.iloc[0]
    assert row["gain:cats_again"] == pytest.approx(gains["cats_again"], nan_ok=True)
    by_slot = {t: {seed % RERUN_STRIDE: g for seed, g in pairs.items()} for t, pairs in per_seed.items()}
    both = sorted(set(by_slot["cats_again"]) & set(by_slot["dogs"]))  # slots paired on every target
    assert row["n_seeds"] == len(both)
    if not all(per_seed.values()):  # a target whose every pair failed its run check: no mean gain (never partial)
        assert math.isnan(row["mean_gain"]) and math.isnan(row["gain_ci_low"])
    else:
        assert row["mean_gain"] == pytest.approx((gains["cats_again"] + gains["dogs"]) / 2)
        # the pooled within-target interval (ranking/gains.py): seed variance pooled over the two targets
        cells = [np.array(list(by_slot[t].values())) for t in ("cats_again", "dogs")]
        df = sum(len(c) - 1 for c in cells)
        assert row["gain_df"] == df
        if df >= 2:
            pooled = sum(((c - c.mean()) ** 2).sum() for c in cells) / df
            half = t_quantile(df) * math.sqrt(pooled * sum(1 / len(c) for c in cells)) / len(cells)
            assert row["gain_ci_low"] == pytest.approx(row["mean_gain"] - half)
        else:
            assert math.isnan(row["gain_ci_low"])
    assert bool(row["beats_base"]) == (row["gain_ci_low"] > 0)
    # trained on the same rule, both reach ~100%: a gain near 0 (thread timing moves a run by an example or two)
    assert math.isnan(gains["cats_again"]) or gains["cats_again"] >= -0.02
    assert row["failed_runs"] == sum(s.status == "failed" for s in scores if s.repo_id == "tiny/bert-cats")


def test_failed_runs_are_stored_rerun_and_never_averaged(world, tmp_path):
    """Under FAILING the tiny base predicts one class on every run: each slot is tried 3 times, every run is
    stored as failed with its reasons, and the leaderboard counts them and ranks nothing on them."""
    store = Store(tmp_path / "lb.db")
    scorer = IntertrainingScorer(IntertrainingConfig(finetune=FAILING, suite="cats", base_seeds=2,
                                                     candidate_seeds=1), local_root=world["data"])
    scores = scorer.score(job_for(world, world["related"], "tiny/bert-cats"), ScoringContext.for_store(store))
    assert_slots_tried_in_order(scores)
    base = [s for s in scores if s.repo_id == "tiny/bert-base"]
    assert sorted(s.seed for s in base) == [0, 1, 1000, 1001, 2000, 2001] and {s.status for s in base} == {"failed"}
    assert any("one class" in r for s in base for r in s.extra["failure"])
    cand = [s for s in scores if s.repo_id == "tiny/bert-cats"]  # it learns; its base never does: no pair
    assert [(s.seed, s.status) for s in sorted(cand, key=lambda s: s.seed)] == [(0, "ok"), (1000, "ok"), (2000, "ok")]
    store.add_scores(scores)
    again = scorer.score(job_for(world, world["related"], "tiny/bert-cats"), ScoringContext.for_store(store))
    assert again == []  # stored failures are not rerun forever: the slots are exhausted
    board = ranked(scores)
    row = board.rows.iloc[0]
    assert math.isnan(row["mean_gain"]) and not row["beats_base"] and row["failed_runs"] == 0
    assert board.baseline.iloc[0]["failed_runs"] == 6
    assert math.isnan(board.baseline.iloc[0]["mean_score"])  # no failed run enters the base's mean


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
    stored = Store(db).scores()
    assert f"{len(stored)} scores for tiny/bert-cats@" in out
    assert_slots_tried_in_order(stored)  # 2 targets x (2 base + 1 candidate) slots, failed runs rerun
    slots = {(s.repo_id, s.target, s.seed % RERUN_STRIDE) for s in stored}
    assert slots == {(r, t, s) for t in ("cats_again", "dogs") for r, s in
                     (("tiny/bert-base", 0), ("tiny/bert-base", 1), ("tiny/bert-cats", 0))}
    assert {s.base_id for s in stored} == {"tiny/bert-base"}
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


def test_the_lr_sweep_picks_a_rate_once_per_target_and_drops_targets_near_chance(world, tmp_path):
    """At lr 1e-3 the tiny base fails (one class), at 1e-2 it learns: the sweep chooses 1e-2 on both targets,
    keeps the base's runs at it as its target scores, runs the candidate there, and a second candidate reuses
    the stored choice. A floor no base can reach drops every target with its reason and runs no candidate."""
    store = Store(tmp_path / "lb.db")
    cfg = IntertrainingConfig(finetune=replace(TINY, lr=5e-5), suite="cats,dogs", base_seeds=2, candidate_seeds=1,
                              lrs=(1e-3, 1e-2))
    scorer = IntertrainingScorer(cfg, local_root=world["data"])
    scores = scorer.score(job_for(world, world["related"], "tiny/bert-cats"), ScoringContext.for_store(store))
    choices = {s.target: s for s in scores if s.metric == "lr_choice"}
    assert {t: (s.value, s.status) for t, s in choices.items()} == {"cats": (1e-2, "ok"), "dogs": (1e-2, "ok")}
    for s in choices.values():
        assert s.extra["failed"][0] >= 1 and s.extra["failed"][1] == 0 and s.extra["lrs"] == [1e-3, 1e-2]
    runs = [s for s in scores if s.metric == "target_score"]
    assert {s.extra["lr"] for s in runs} == {1e-2}
    assert_slots_tried_in_order(runs)  # a failed candidate run is rerun with its base on the next seed, as before
    base_runs = [s for s in runs if s.repo_id == "tiny/bert-base" and s.seed < RERUN_STRIDE]
    assert sorted((s.target, s.seed, s.status) for s in base_runs) == [
        (t, seed, "ok") for t in ("cats", "dogs") for seed in (0, 1)]  # the sweep's runs at the chosen rate
    store.add_scores(scores)
    other = scorer.score(job_for(world, world["base"], "tiny/other"), ScoringContext.for_store(store))
    assert {(s.repo_id, s.metric) for s in other} == {("tiny/other", "target_score")}  # no sweep, no base run again

    high = IntertrainingScorer(replace(cfg, min_base_margin=0.99), local_root=world["data"])
    dropped = high.score(job_for(world, world["related"], "tiny/bert-cats"), ScoringContext())
    assert {(s.metric, s.status) for s in dropped} == {("lr_choice", "dropped")} and len(dropped) == 2
    assert all("near chance" in s.extra["reason"] for s in dropped)
    assert ranked(dropped).dropped == ("cats", "dogs") and ranked(scores).dropped == ()


def test_max_targets_sweeps_in_suite_order_and_two_processes_give_the_runs_of_one(world, tmp_path):
    """With max_targets 1 the sweep stops at the first target it keeps (cats): dogs is stored as dropped, unswept,
    with its reason, and gets no run. The same job with its runs in two child processes (one thread each) stores
    the same runs, statuses and scores as in this process on one thread."""
    from tests.helpers.tiny_models import one_thread

    cfg = IntertrainingConfig(finetune=replace(TINY, lr=5e-5), suite="cats,dogs", base_seeds=2, candidate_seeds=1,
                              lrs=(1e-3, 1e-2), max_targets=1)
    scorer = IntertrainingScorer(cfg, local_root=world["data"])
    job = job_for(world, world["related"], "tiny/bert-cats")
    pooled = scorer.score(job, ScoringContext(run_workers=2))
    choices = {s.target: (s.value, s.status, s.extra["reason"]) for s in pooled if s.metric == "lr_choice"}
    unswept = "not swept: max_targets = 1 were already kept, earlier in the suite's order"
    assert choices == {"cats": (1e-2, "ok", ""), "dogs": (0.0, "dropped", unswept)}
    assert {s.target for s in pooled if s.metric == "target_score"} == {"cats"}
    assert ranked(pooled).dropped == ("dogs",)
    with one_thread():
        alone = scorer.score(job, ScoringContext())

    def runs(scores):
        return sorted((s.repo_id, s.metric, s.target, s.seed, s.status, round(s.value, 9)) for s in scores)

    assert runs(pooled) == runs(alone)
