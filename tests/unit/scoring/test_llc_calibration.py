"""The step-size rule (scoring/llc_calibration.py): its walk on fakes, then its λ̂ against Aoyagi's values.

The rule was designed on the "design" cases (its acceptance target 0.9, simulated time 1.5, the ladders) and is
checked unchanged on the "held-out" ones, which played no part in choosing it (other shapes, another data seed).
Each case runs the two rungs that decide it (DECIDING), not the whole walk: about a third of the time.
With one step for every case (2e-4, gamma 1, 5,000 draws: tests/unit/scoring/test_llc.py) the wide networks come
out 3-6x too high; under the rule 11 of the 13 cases land within 20%, and two do not (a rank-0 design case,
0.79x, and a held-out deep narrow network, 0.67x: the strict xfails below).
"""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from data.errors import ScoringError
from scoring.config import SGLDConfig
from scoring.llc import LLCEstimate, dln_learning_coefficient, estimate_llc
from scoring.llc_calibration import choose_step, rung_config
from tests.helpers.linear_models import deep_linear_network, gaussian_nll

BASE = SGLDConfig(num_chains=4, batch_size=500)
# Each case with the rung the rule chose on the full ladders (γ 1, 10, 100 ascending; ε 1e-3 … 6.25e-5 descending;
# README's table) and the rung just above it at that γ: the two that decide the case. Each rung's estimate depends
# only on its own (ε, γ) and seed, so this pair is the full walk's last two steps: the one above still fails the
# target, the chosen one passes, and its λ̂ is the rule's. The walk itself is tested on fakes above.
# (widths, rank, seed, γ, ladder ending at the chosen ε)
DECIDING = {
    "design-(4, 3, 3, 4)-r1": ((4, 3, 3, 4), 1, 0, 1.0, (5e-4, 2.5e-4)),
    "design-(3, 5, 5, 3)-r1": ((3, 5, 5, 3), 1, 0, 1.0, (2.5e-4, 1.25e-4)),
    "design-(4, 4, 4, 4, 4)-r2": ((4, 4, 4, 4, 4), 2, 0, 1.0, (1.25e-4, 6.25e-5)),
    "design-(5, 3, 4, 2)-r0": ((5, 3, 4, 2), 0, 0, 1.0, (5e-4, 2.5e-4)),
    "design-(3, 12, 12, 3)-r1": ((3, 12, 12, 3), 1, 0, 10.0, (5e-4, 2.5e-4)),
    "design-(3, 12, 12, 12, 3)-r1": ((3, 12, 12, 12, 3), 1, 0, 10.0, (2.5e-4, 1.25e-4)),
    "design-(2, 8, 8, 8, 2)-r1": ((2, 8, 8, 8, 2), 1, 0, 10.0, (5e-4, 2.5e-4)),
    "held-out-(5, 20, 5)-r1": ((5, 20, 5), 1, 1, 1.0, (2.5e-4, 1.25e-4)),
    "held-out-(3, 6, 6, 6, 6, 3)-r1": ((3, 6, 6, 6, 6, 3), 1, 1, 10.0, (5e-4, 2.5e-4)),
    "held-out-(4, 16, 16, 4)-r2": ((4, 16, 16, 4), 2, 1, 10.0, (2.5e-4, 1.25e-4)),
    "held-out-(5, 3, 5)-r0": ((5, 3, 5), 0, 1, 1.0, (1e-3,)),
    "held-out-(6, 3, 4)-r1": ((6, 3, 4), 1, 1, 1.0, (1e-3, 5e-4)),
    "held-out-(2, 10, 10, 10, 10, 2)-r0": ((2, 10, 10, 10, 10, 2), 0, 1, 10.0, (1e-3,)),
}
# the cases the rule misses: findings, kept as strict xfails so that a better rule shows up as an XPASS
MISSES = {
    "design-(5, 3, 4, 2)-r0": "0.79x: at the rule's step the rank-0 network's chains have not mixed",
    "held-out-(3, 6, 6, 6, 6, 3)-r1": "0.67x: at gamma 1 no step reaches the target, and gamma 10 pulls the estimate "
                                      "down",
}
CASES = [pytest.param(*case, id=name, marks=[pytest.mark.xfail(strict=True, reason=MISSES[name])]
                      if name in MISSES else []) for name, case in DECIDING.items()]


def fake(acceptance_of):
    """An estimator whose acceptance is ``acceptance_of(cfg)`` (None: it diverges), recording what it ran."""
    calls = []

    def estimate_at(cfg: SGLDConfig) -> LLCEstimate:
        calls.append((cfg.epsilon, cfg.gamma, cfg.num_burnin, cfg.num_draws))
        acceptance = acceptance_of(cfg)
        if acceptance is None:
            raise ScoringError("SGLD diverged")
        return LLCEstimate(mean=1.0, std=0.0, per_chain=(1.0,), init_loss=0.0, nbeta=1.0,
                           loss_traces=torch.zeros(1, 4), acceptance=acceptance)

    return estimate_at, calls


def test_the_rule_takes_the_largest_step_of_the_weakest_localization_that_reaches_the_target():
    estimate_at, calls = fake(lambda cfg: None if cfg.epsilon > 5e-4 else (0.95 if cfg.epsilon < 3e-4 else 0.8))
    choice = choose_step(estimate_at, BASE, ladder=(1e-3, 5e-4, 2.5e-4, 1e-4), gammas=(1.0, 10.0))
    assert (choice.epsilon, choice.gamma) == (2.5e-4, 1.0) and choice.reason == ""
    assert [c[0] for c in calls] == [1e-3, 5e-4, 2.5e-4]  # it stops at the first rung that passes
    assert choice.rungs[0].estimate is None and "diverged" in choice.rungs[0].error


def test_the_rule_moves_to_stronger_localization_when_no_step_passes():
    estimate_at, calls = fake(lambda cfg: 0.92 if cfg.gamma >= 10 and cfg.epsilon <= 5e-4 else 0.7)
    choice = choose_step(estimate_at, BASE, ladder=(1e-3, 5e-4), gammas=(1.0, 10.0, 100.0))
    assert (choice.epsilon, choice.gamma) == (5e-4, 10.0) and len(calls) == 4
    none = choose_step(fake(lambda cfg: 0.5)[0], BASE, ladder=(1e-3,), gammas=(1.0,))
    assert none.epsilon is None and "no (step, localization)" in none.reason


def test_every_rung_runs_the_same_simulated_time():
    for eps in (1e-3, 1e-4):
        cfg = rung_config(BASE, eps, time=1.5)
        assert cfg.num_burnin + cfg.num_draws == round(1.5 / eps) and cfg.num_burnin == round(1.5 / eps) // 4


@pytest.mark.parametrize(("kwargs", "says"), [({"ladder": (1e-4, 1e-3)}, "step ladder"),
                                              ({"gammas": (10.0, 1.0)}, "localization ladder"),
                                              ({"target": 1.0}, "target")])
def test_bad_ladders_and_targets_are_refused(kwargs, says):
    with pytest.raises(ValueError, match=says):
        choose_step(fake(lambda cfg: 1.0)[0], BASE, **kwargs)


@pytest.mark.slow
@pytest.mark.parametrize(("widths", "rank", "seed", "gamma", "ladder"), CASES)
def test_the_rules_estimate_is_within_20_percent_of_aoyagi(widths, rank, seed, gamma, ladder):
    torch.set_num_threads(1)  # tiny matrices: one thread is faster, and the other core stays free
    model, x, y = deep_linear_network(widths, rank, seed=seed)
    choice = choose_step(lambda cfg: estimate_llc(model, (x, y), gaussian_nll, cfg, n=len(x)),
                         replace(BASE, seed=seed), ladder=ladder, gammas=(gamma,))
    truth = dln_learning_coefficient(widths, rank)
    rungs = [(r.epsilon, r.gamma, r.estimate and (r.estimate.mean, r.estimate.acceptance)) for r in choice.rungs]
    assert (choice.epsilon, choice.gamma) == (ladder[-1], gamma), (choice.reason, rungs)  # still the rule's rung
    assert choice.estimate.mean == pytest.approx(truth, rel=0.20), (choice.epsilon, choice.gamma, truth, rungs)
