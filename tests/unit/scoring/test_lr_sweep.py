"""The learning-rate sweep's rule on hand-made base runs: the choice, the failed-seed veto, the chance floor."""

from __future__ import annotations

from dataclasses import replace

import pytest

from scoring.config import IntertrainingConfig
from scoring.finetune import FinetuneResult
from scoring.lr_sweep import choose_lr

RUN = FinetuneResult(eval_score=0.8, test_score=0.8, best_step=10, steps=10, examples_seen=320, train_examples=320,
                     duration_s=1.0, examples_per_s=320.0, history=(), test_classes=2, majority_rate=0.5,
                     loss_start=0.69, loss_end=0.40)


def sweep(table: dict[float, list[tuple[float, float, bool]]], *, metric="accuracy", margin=0.10, seeds=None):
    """choose_lr over ``table``: lr -> per seed (eval, test, failed); records every call it makes."""
    calls = []

    def run_base(lr, seed):
        calls.append((lr, seed))
        eval_score, test_score, failed = table[lr][seed]
        return replace(RUN, eval_score=eval_score, test_score=test_score), ("failed",) if failed else ()

    seeds = seeds or len(next(iter(table.values())))
    return choose_lr(run_base, list(table), seeds, metric, margin), calls


def test_the_rate_with_the_best_mean_eval_score_is_chosen_and_every_seed_runs_at_every_rate():
    choice, calls = sweep({1e-4: [(0.70, 0.90, False), (0.72, 0.90, False)],
                           3e-4: [(0.80, 0.70, False), (0.78, 0.70, False)]})
    assert choice.lr == 3e-4 and choice.reason == ""  # chosen on eval, whatever the test split says
    assert calls == [(1e-4, 0), (1e-4, 1), (3e-4, 0), (3e-4, 1)]
    assert choice.eval_means == pytest.approx((0.71, 0.79)) and choice.failed == (0, 0)
    assert [r.eval_score for r, _ in choice.runs] == [0.80, 0.78]  # the base's runs at the chosen rate


def test_a_rate_where_one_base_seed_fails_is_never_chosen():
    choice, _ = sweep({1e-4: [(0.70, 0.80, False), (0.70, 0.80, False)],
                       3e-4: [(0.95, 0.90, False), (0.50, 0.50, True)]})
    assert choice.lr == 1e-4 and choice.failed == (0, 1)


def test_ties_go_to_the_smaller_rate():
    choice, _ = sweep({3e-4: [(0.8, 0.8, False)], 1e-4: [(0.8, 0.8, False)]})
    assert choice.lr == 1e-4


def test_a_target_where_every_rate_has_a_failed_seed_is_dropped_with_the_counts():
    choice, _ = sweep({1e-4: [(0.5, 0.5, True), (0.8, 0.8, False)], 3e-4: [(0.5, 0.5, True), (0.5, 0.5, True)]})
    assert choice.lr is None and not choice.kept and choice.runs == ()
    assert choice.reason == ("at every learning rate some base seed failed its checks "
                             "(lr 0.0001: 1 of 2, lr 0.0003: 2 of 2 failed)")


def test_a_base_under_ten_points_above_the_majority_rate_is_dropped_and_at_ten_kept():
    near, _ = sweep({1e-4: [(0.6, 0.59, False)]})  # majority 0.5: 9 points above
    assert near.lr is None and "near chance" in near.reason and "59.00%" in near.reason
    assert near.runs != ()  # the runs are still reported
    kept, _ = sweep({1e-4: [(0.6, 0.60, False)]})
    assert kept.lr == 1e-4


def test_a_spearman_target_is_held_to_the_margin_itself():
    low, _ = sweep({1e-4: [(0.2, 0.05, False)]}, metric="spearman")
    assert low.lr is None and "spearman 0.050" in low.reason
    ok, _ = sweep({1e-4: [(0.2, 0.30, False)]}, metric="spearman")
    assert ok.lr == 1e-4


@pytest.mark.parametrize("lrs, margin", [((1e-4, 1e-4), 0.1), ((0.0,), 0.1), ((1e-4,), 1.5)])
def test_a_bad_sweep_config_is_refused(lrs, margin):
    with pytest.raises(ValueError, match="lrs must be|min_base_margin"):
        IntertrainingConfig(lrs=lrs, min_base_margin=margin)
