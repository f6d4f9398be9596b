"""The failed-run rule on hand-made results: each check alone, and a healthy run passing."""

from __future__ import annotations

import math
from dataclasses import replace

from scoring.finetune import FinetuneResult
from scoring.run_check import MARGIN, failure_reasons

HEALTHY = FinetuneResult(eval_score=0.8, test_score=0.8, best_step=10, steps=10, examples_seen=320,
                         train_examples=320, duration_s=1.0, examples_per_s=320.0, history=(), test_classes=2,
                         majority_rate=0.5, loss_start=0.69, loss_end=0.40)


def test_a_healthy_run_passes():
    assert failure_reasons(HEALTHY, "accuracy") == ()


def test_one_class_for_every_example_fails():
    [reason, *_] = failure_reasons(replace(HEALTHY, test_classes=1, test_score=0.5), "accuracy")
    assert reason == "predicted one class for every test example"


def test_accuracy_at_the_majority_rate_plus_the_margin_fails_and_just_above_passes():
    at = replace(HEALTHY, test_score=0.5 + MARGIN, majority_rate=0.5)
    assert failure_reasons(at, "accuracy") == ("test accuracy 52.00% is within 2% of the majority-class rate 50.00%",)
    assert failure_reasons(replace(at, test_score=0.5 + MARGIN + 1e-9), "accuracy") == ()


def test_a_training_loss_that_did_not_fall_fails():
    assert failure_reasons(replace(HEALTHY, loss_end=0.70), "accuracy") == (
        "training loss did not fall (0.6900 at the start, 0.7000 at the end)",)


def test_a_regression_has_no_majority_rate_but_a_constant_prediction_fails():
    reg = replace(HEALTHY, majority_rate=math.nan, test_score=0.1)
    assert failure_reasons(reg, "spearman") == ()
    constant = replace(reg, test_classes=1)
    assert failure_reasons(constant, "spearman") == ("predicted the same value for every test example",)


def test_a_training_loss_that_fell_by_less_than_ten_percent_fails_and_ten_percent_passes():
    """The review's mrpc run on sst2 (0.704 -> 0.665, 72% accuracy) passed the old check; it fails this one."""
    barely = replace(HEALTHY, loss_start=0.704, loss_end=0.665, test_score=0.72)
    assert failure_reasons(barely, "accuracy") == (
        "training loss fell by less than 10% (0.7040 at the start, 0.6650 at the end)",)
    assert failure_reasons(replace(HEALTHY, loss_start=1.0, loss_end=0.9), "accuracy") == ()
    assert failure_reasons(replace(HEALTHY, loss_start=1.0, loss_end=0.9001), "accuracy") != ()
