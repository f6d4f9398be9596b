"""Is a fine-tuning run a measurement or a failure? One rule for candidates and base alike.

A run fails when it predicted a single class for every test example (a constant for a regression), when
its test accuracy is no more than ``MARGIN`` above the test split's majority-class rate, when its
training loss did not fall (the mean of its last steps is not below the mean of its first), or when it fell by
less than ``MIN_LOSS_DROP`` of its start (a run that barely trained: 0.704 → 0.665 once passed as a measurement).
A failed run is stored with status "failed" and its reasons, counted on the leaderboard, and never enters a mean;
the intertraining scorer reruns it with another seed (scoring/intertraining.py).
"""

from __future__ import annotations

import math

from scoring.finetune import FinetuneResult

MARGIN = 0.02  # accuracy within 2 points of always answering the majority class is not learning
MIN_LOSS_DROP = 0.10  # a run whose training loss fell by less than 10% of its start did not learn its task


def failure_reasons(result: FinetuneResult, metric: str) -> tuple[str, ...]:
    """Why the run failed (one sentence per check it failed); empty when it is a measurement."""
    reasons = []
    if result.test_classes == 1:
        reasons.append("predicted one class for every test example" if metric == "accuracy"
                       else "predicted the same value for every test example")
    if metric == "accuracy" and math.isfinite(result.majority_rate) and \
            result.test_score <= result.majority_rate + MARGIN:
        reasons.append(f"test accuracy {result.test_score:.2%} is within {MARGIN:.0%} of the majority-class rate "
                       f"{result.majority_rate:.2%}")
    reasons.extend(_loss_reasons(result.loss_start, result.loss_end))
    return tuple(reasons)


def _loss_reasons(start: float, end: float) -> list[str]:
    if not (math.isfinite(start) and math.isfinite(end)):
        return []
    losses = f"({start:.4f} at the start, {end:.4f} at the end)"
    if end >= start:
        return [f"training loss did not fall {losses}"]
    if end > (1 - MIN_LOSS_DROP) * start:
        return [f"training loss fell by less than {MIN_LOSS_DROP:.0%} {losses}"]
    return []
