"""Per-target protocol lines and failed-run counts, from hand-built scores with known answers."""

from __future__ import annotations

from data.payloads import FinetuneRun, LrSweep
from data.records import Score
from ranking.study_runs import (
    CHECKS,
    LOSS_FLAT,
    LOSS_SMALL,
    CheckCount,
    RunCounts,
    TargetProtocol,
    run_counts,
    target_protocols,
)

BASE, CAND, HASH = "org/base", "org/cand", "h1"
ONE_CLASS = "predicted one class for every test example"
NEAR_MAJORITY = "test accuracy 51.00% is within 2% of the majority-class rate 50.90%"
# scoring/run_check.py's two loss sentences
FLAT = "training loss did not fall (0.6734 at the start, 0.6904 at the end)"
SMALL = "training loss fell by less than 10% (0.7041 at the start, 0.6649 at the end)"


def run(repo: str, target: str, seed: int, value: float, *, failure: tuple = (), config_hash: str = HASH) -> Score:
    return Score(repo_id=repo, revision="r", scorer="intertraining", metric="target_score", value=value,
                 target=target, seed=seed, config_hash=config_hash, base_id=BASE,
                 status="failed" if failure else "ok", extra=FinetuneRun(failure=failure).to_json())


def sweep(target: str, lr: float | None, *, reason: str = "", is_swept: bool = True) -> Score:
    payload = LrSweep(lrs=(1e-4, 3e-4), eval_means=(0.6, 0.7) if is_swept else (),
                      test_means=(0.6, 0.7) if is_swept else (), failed=(0, 0) if is_swept else (), seeds=2,
                      majority_rate=0.5, reason=reason)
    return Score(repo_id=BASE, revision="r", scorer="intertraining", metric="lr_choice", value=lr or 0.0,
                 target=target, seed=0, config_hash=HASH, base_id=BASE, status="ok" if lr else "dropped",
                 extra=payload.to_json())


SCORES = [
    sweep("sst2", 3e-4), sweep("rte", None, reason="the base's mean 52.0% is not 10 points above 50.0%"),
    run(BASE, "sst2", 0, 0.80), run(BASE, "sst2", 1, 0.90),
    run(CAND, "sst2", 0, 0.85), run(CAND, "sst2", 1, 0.509, failure=(ONE_CLASS, NEAR_MAJORITY)),
    run(CAND, "sst2", 2, 0.86), run(CAND, "trec", 0, 0.2, failure=(NEAR_MAJORITY,)),
    run(CAND, "sst2", 0, 0.10, failure=(ONE_CLASS,), config_hash="other protocol"),
]


def test_target_lines_give_the_choice_the_base_mean_and_the_drop_reason():
    rte, sst2 = target_protocols(SCORES, BASE, HASH)
    assert rte == TargetProtocol("rte", None, (1e-4, 3e-4), None, 0.5,
                                 "the base's mean 52.0% is not 10 points above 50.0%")
    assert sst2.lr == 3e-4 and sst2.reason == "" and abs(sst2.base_mean - 0.85) < 1e-12


def test_failed_runs_are_counted_per_kind_and_check_within_one_protocol():
    assert run_counts(SCORES, BASE, HASH) == RunCounts(
        base_runs=2, base_failed=0, candidate_runs=4, candidate_failed=2,
        checks=(CheckCount("one class predicted", 0, 1),
                CheckCount("within the margin of the majority-class rate", 0, 2),
                CheckCount(LOSS_FLAT, 0, 0), CheckCount(LOSS_SMALL, 0, 0)))
    assert run_counts(SCORES, BASE, "nothing") == RunCounts(0, 0, 0, 0, tuple(CheckCount(c, 0, 0) for c in CHECKS))


def test_the_two_loss_checks_are_named_apart_for_the_base_and_the_candidates():
    scores = [run(BASE, "sst2", 0, 0.8, failure=(FLAT,)), run(BASE, "trec", 0, 0.8, failure=(SMALL,)),
              run(CAND, "sst2", 0, 0.8, failure=(SMALL,)), run(CAND, "trec", 0, 0.8, failure=(SMALL, NEAR_MAJORITY)),
              run(CAND, "rte", 0, 0.8, failure=("a check added later (0.1 at the start)",))]
    counts = run_counts(scores, BASE, HASH)
    assert LOSS_SMALL == "training loss fell by less than 10%"
    assert {c.check: (c.base, c.candidates) for c in counts.checks} == {
        "one class predicted": (0, 0), "within the margin of the majority-class rate": (0, 1),
        LOSS_FLAT: (1, 0), LOSS_SMALL: (1, 2), "a check added later": (0, 1)}
    assert [c.check for c in counts.checks][-1] == "a check added later"  # after the known checks
    assert (counts.base_failed, counts.candidate_failed) == (2, 3)


def test_a_target_dropped_unswept_is_told_apart_from_a_swept_one():
    scores = [sweep("sst2", 3e-4), sweep("rte", None, reason="near chance"),
              sweep("trec", None, reason="not swept: max_targets = 1 were already kept", is_swept=False)]
    rte, sst2, trec = target_protocols(scores, BASE, HASH)
    assert (rte.is_swept, sst2.is_swept, trec.is_swept) == (True, True, False)
