"""What the study's intertraining protocol did per target and how many of its runs failed (pure, from scores).

Per target: the learning rate the base's sweep chose (scoring/lr_sweep.py, metric ``lr_choice``), the base's mean
test score there against the majority-class rate, or why the target was dropped. Per kind of model (base,
candidates): how many runs were stored, how many failed their checks (scoring/run_check.py), and how many runs each
check caught (a run can fail several); a failed run is kept with its reasons, rerun with the next seed, and never
enters a mean.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

from data.payloads import payload_of
from data.records import Score
from ranking.leaderboard import LR_METRIC, TARGET_METRIC


@dataclass(frozen=True, slots=True)
class TargetProtocol:
    target: str
    lr: float | None  # the sweep's choice; None when the target was dropped
    lrs: tuple[float, ...]  # the grid swept
    base_mean: float | None  # the base's mean test score at the chosen rate (ok runs)
    majority_rate: float | None  # the test split's majority-class rate (None for a regression target)
    reason: str  # why the target was dropped; empty when kept
    is_swept: bool = True  # False: dropped unswept (``max_targets`` targets were already kept)


# scoring/run_check.py's checks, by the name the report gives them (ranking does not import scoring)
ONE_CLASS = "one class predicted"
NEAR_MAJORITY = "within the margin of the majority-class rate"
LOSS_FLAT = "training loss did not fall"
LOSS_SMALL = "training loss fell by less than 10%"
CHECKS = (ONE_CLASS, NEAR_MAJORITY, LOSS_FLAT, LOSS_SMALL)


@dataclass(frozen=True, slots=True)
class CheckCount:
    """How many failed runs of the base and of the candidates one check caught."""

    check: str
    base: int
    candidates: int


@dataclass(frozen=True, slots=True)
class RunCounts:
    base_runs: int
    base_failed: int
    candidate_runs: int
    candidate_failed: int
    checks: tuple[CheckCount, ...]  # every check of CHECKS (0 when it caught none), then any other reason found


def target_protocols(scores: Iterable[Score], base_id: str, config_hash: str) -> tuple[TargetProtocol, ...]:
    """One line per swept target of ``base_id`` under the protocol ``config_hash``, in target order."""
    scores = [s for s in scores if s.config_hash == config_hash and s.repo_id == base_id]
    out = []
    for s in sorted((s for s in scores if s.metric == LR_METRIC), key=lambda s: s.target):
        sweep = payload_of(s)
        kept = s.status == "ok"
        runs = [r.value for r in scores if r.metric == TARGET_METRIC and r.target == s.target and r.status == "ok"]
        mean = sum(runs) / len(runs) if kept and runs else None
        out.append(TargetProtocol(target=s.target, lr=s.value if kept else None, lrs=sweep.lrs, base_mean=mean,
                                  majority_rate=sweep.majority_rate, reason=sweep.reason,
                                  is_swept=kept or bool(sweep.eval_means)))
    return tuple(out)


def run_counts(scores: Iterable[Score], base_id: str, config_hash: str) -> RunCounts:
    """Stored and failed target runs of the base and of its candidates under ``config_hash``, and what caught them."""
    runs = [s for s in scores if s.metric == TARGET_METRIC and s.config_hash == config_hash]
    base = [s for s in runs if s.repo_id == base_id]
    candidates = [s for s in runs if s.repo_id != base_id]
    caught = {kind: Counter(name for s in group if s.status == "failed"
                            for name in {_check_name(r) for r in payload_of(s).failure})
              for kind, group in (("base", base), ("candidates", candidates))}
    others = sorted((set(caught["base"]) | set(caught["candidates"])) - set(CHECKS))
    return RunCounts(base_runs=len(base), base_failed=sum(s.status == "failed" for s in base),
                     candidate_runs=len(candidates), candidate_failed=sum(s.status == "failed" for s in candidates),
                     checks=tuple(CheckCount(name, caught["base"][name], caught["candidates"][name])
                                  for name in (*CHECKS, *others)))


def _check_name(reason: str) -> str:
    """The check a failure reason names, without its run's numbers (scoring/run_check.py's sentences)."""
    if reason.startswith("predicted one"):
        return ONE_CLASS
    if reason.startswith("test accuracy"):
        return NEAR_MAJORITY
    if reason.startswith(LOSS_FLAT):
        return LOSS_FLAT
    if reason.startswith(LOSS_SMALL + " ("):
        return LOSS_SMALL
    return reason.split(" (")[0]  # another check (or another threshold) by its own words
