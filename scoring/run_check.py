"""Is a fine-tuning run a measurement or a failure? One rule for candidates and base alike.

A run fails when it predicted a single class for every test example (a constant for a regression), when
its test accuracy is no more than ``MARGIN`` above the test split's majority-class rate, or when its
training loss did not fall (the mean of its last steps is not below the mean of its first). A failed run is
stored with status "failed" and its reasons, counted on the leaderboard, and never enters a mean; the
intertraining scorer reruns it with another seed (scoring/intertraining.py).
"""

from __future__ import annotations

import math

from scoring.finetune import FinetuneResult

MARGIN = 0.02  # accuracy within 2 points of always answering the majority class is not learning


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
    if math.isfinite(result.loss_start) and math.isfinite(result.loss_end) and result.loss_end >= result.loss_start:
        reasons.append(f"training loss did not fall ({result.loss_start:.4f} at the start, {result.loss_end:.4f} "
                       "at the end)")
    return tuple(reasons)
