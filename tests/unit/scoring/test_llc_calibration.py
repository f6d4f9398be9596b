"""The step-size rule (scoring/llc_calibration.py): its walk on fakes, then its λ̂ against Aoyagi's values.

The rule was designed on the "design" cases (its acceptance target 0.9, simulated time 1.5, the ladders) and is
checked unchanged on the "held-out" ones, which played no part in choosing it (other shapes, another data seed).
Each rung burns in for at least three relaxation times 2/(εγ) and probes MALA only after that. Each case runs the
two rungs that decide it (DECIDING), not the whole walk. With one step for every case (2e-4, gamma 1, 5,000 draws:
tests/unit/scoring/test_llc.py) the wide networks come out 3-6x too high. Under the rule, plain SGLD lands within
20% on 11 of the 13 cases and RMSProp-preconditioned SGLD on 12; the misses are the strict xfails below (MISSES),
each with its measured ratio and what longer runs at the same rung showed.
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
# (widths, rank, data and SGLD seed) of each analytic case
SHAPES = {
    "design-(4, 3, 3, 4)-r1": ((4, 3, 3, 4), 1, 0),
    "design-(3, 5, 5, 3)-r1": ((3, 5, 5, 3), 1, 0),
    "design-(4, 4, 4, 4, 4)-r2": ((4, 4, 4, 4, 4), 2, 0),
    "design-(5, 3, 4, 2)-r0": ((5, 3, 4, 2), 0, 0),
    "design-(3, 12, 12, 3)-r1": ((3, 12, 12, 3), 1, 0),
    "design-(3, 12, 12, 12, 3)-r1": ((3, 12, 12, 12, 3), 1, 0),
    "design-(2, 8, 8, 8, 2)-r1": ((2, 8, 8, 8, 2), 1, 0),
    "held-out-(5, 20, 5)-r1": ((5, 20, 5), 1, 1),
    "held-out-(3, 6, 6, 6, 6, 3)-r1": ((3, 6, 6, 6, 6, 3), 1, 1),
    "held-out-(4, 16, 16, 4)-r2": ((4, 16, 16, 4), 2, 1),
    "held-out-(5, 3, 5)-r0": ((5, 3, 5), 0, 1),
    "held-out-(6, 3, 4)-r1": ((6, 3, 4), 1, 1),
    "held-out-(2, 10, 10, 10, 10, 2)-r0": ((2, 10, 10, 10, 10, 2), 0, 1),
}
# Per sampler, each case's γ and the rungs that decide it: the rung the rule chose on the full ladders (γ 1, 10, 100
# ascending; ε 1e-3 … 6.25e-5 descending; ``python -m tests.unit.scoring.test_llc_calibration`` walks them; README's
# table) and the rung just above it at that γ. Each rung's estimate depends only on its own (ε, γ) and seed, so this
# pair is the full walk's last two steps: the one above still fails the target, the chosen one passes, and its λ̂ is
# the rule's. The walk itself is tested on fakes above. (γ, ladder ending at the chosen ε)
DECIDING = {
    "none": {
        "design-(4, 3, 3, 4)-r1": (1.0, (2.5e-4, 1.25e-4)),
        "design-(3, 5, 5, 3)-r1": (1.0, (1.25e-4, 6.25e-5)),
        "design-(4, 4, 4, 4, 4)-r2": (10.0, (5e-4, 2.5e-4)),
        "design-(5, 3, 4, 2)-r0": (1.0, (2.5e-4, 1.25e-4)),
        "design-(3, 12, 12, 3)-r1": (10.0, (5e-4, 2.5e-4)),
        "design-(3, 12, 12, 12, 3)-r1": (10.0, (5e-4, 2.5e-4)),
        "design-(2, 8, 8, 8, 2)-r1": (10.0, (5e-4, 2.5e-4)),
        "held-out-(5, 20, 5)-r1": (1.0, (1.25e-4, 6.25e-5)),
        "held-out-(3, 6, 6, 6, 6, 3)-r1": (10.0, (5e-4, 2.5e-4)),
        "held-out-(4, 16, 16, 4)-r2": (10.0, (2.5e-4, 1.25e-4)),
        "held-out-(5, 3, 5)-r0": (1.0, (1e-3,)),
        "held-out-(6, 3, 4)-r1": (1.0, (1e-3, 5e-4)),
        "held-out-(2, 10, 10, 10, 10, 2)-r0": (10.0, (1e-3,)),
    },
    "rmsprop": dict.fromkeys(SHAPES, (1.0, (1e-3,))) | {
        "design-(3, 12, 12, 12, 3)-r1": (1.0, (1e-3, 5e-4)),
        "held-out-(2, 10, 10, 10, 10, 2)-r0": (1.0, (1e-3, 5e-4)),
    },
}
# the cases the rule misses: findings, kept as strict xfails so that a better rule shows up as an XPASS
MISSES = {
    ("none", "design-(5, 3, 4, 2)-r0"):
        "0.78x at (1.25e-4, gamma 1), and not from unmixed chains: 16 chains give 0.73x (standard error 0.03), 16x "
        "longer draws 0.74x. This rank-0 network's estimate has no plateau in the step or the localization: at gamma 1 "
        "it is 0.97x at 2.5e-4 (acceptance 0.899, just under the target) and 0.74x at 1.25e-4; at 2.5e-4 it is 1.7x "
        "at gamma 0.1",
    ("none", "held-out-(3, 6, 6, 6, 6, 3)-r1"):
        "0.68x: at gamma 1 plain SGLD diverges at steps >= 2.5e-4 and stays under the target below (0.78, 0.80), and "
        "gamma 10 pulls the estimate down (16x longer draws at the chosen rung: 0.66x, standard error 0.01)",
    ("rmsprop", "design-(4, 3, 3, 4)-r1"):
        "0.798x, just outside, from the rung's short draws: 16x longer draws at the same rung give 0.91x (their "
        "eighths range 0.80x-1.07x)",
}
CASES = [pytest.param(sampler, *SHAPES[name], *rungs, id=f"{sampler}-{name}",
                      marks=[pytest.mark.xfail(strict=True, reason=MISSES[sampler, name])]
                      if (sampler, name) in MISSES else [])
         for sampler, cases in DECIDING.items() for name, rungs in cases.items()]


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
    # each rung's burn-in covers three relaxation times 2/(eps gamma) of its own localization
    assert [c[2] for c in calls] == [6000, 12000, 600, 1200] and [c[3] for c in calls] == [1125, 2250] * 2
    assert [r.steps for r in choice.rungs] == [7125, 14250, 1725, 3450]
    none = choose_step(fake(lambda cfg: 0.5)[0], BASE, ladder=(1e-3,), gammas=(1.0,))
    assert none.epsilon is None and "no (step, localization)" in none.reason


@pytest.mark.parametrize(("eps", "gamma", "burnin"), [(1e-3, 1.0, 6000), (1e-4, 10.0, 6000), (1e-3, 100.0, 375),
                                                      (2e-3, 1000.0, 187)])
def test_every_rung_keeps_the_same_simulated_time_after_three_relaxation_times(eps, gamma, burnin):
    """Draws: three quarters of time / eps steps at every rung; burn-in: that quarter, or 3 x 2/(eps gamma) steps
    when the localization relaxes more slowly."""
    cfg = rung_config(BASE, eps, gamma, time=1.5)
    assert (cfg.epsilon, cfg.gamma) == (eps, gamma)
    assert cfg.num_draws == round(1.5 / eps) - round(1.5 / eps) // 4 and cfg.num_burnin == burnin
    assert cfg.num_burnin >= 3 * 2 / (eps * gamma) and cfg.num_burnin >= round(1.5 / eps) // 4


@pytest.mark.parametrize(("kwargs", "says"), [({"ladder": (1e-4, 1e-3)}, "step ladder"),
                                              ({"gammas": (10.0, 1.0)}, "localization ladder"),
                                              ({"gammas": (0.0, 1.0)}, "localization must be positive"),
                                              ({"target": 1.0}, "target")])
def test_bad_ladders_and_targets_are_refused(kwargs, says):
    with pytest.raises(ValueError, match=says):
        choose_step(fake(lambda cfg: 1.0)[0], BASE, **kwargs)


@pytest.mark.slow
@pytest.mark.parametrize(("sampler", "widths", "rank", "seed", "gamma", "ladder"), CASES)
def test_the_rules_estimate_is_within_20_percent_of_aoyagi(sampler, widths, rank, seed, gamma, ladder):
    torch.set_num_threads(1)  # tiny matrices: one thread is faster, and the other core stays free
    model, x, y = deep_linear_network(widths, rank, seed=seed)
    choice = choose_step(lambda cfg: estimate_llc(model, (x, y), gaussian_nll, cfg, n=len(x)),
                         replace(BASE, seed=seed, preconditioner=sampler), ladder=ladder, gammas=(gamma,))
    truth = dln_learning_coefficient(widths, rank)
    rungs = [(r.epsilon, r.gamma, r.estimate and (r.estimate.mean, r.estimate.acceptance)) for r in choice.rungs]
    assert (choice.epsilon, choice.gamma) == (ladder[-1], gamma), (choice.reason, rungs)  # still the rule's rung
    assert choice.estimate.mean == pytest.approx(truth, rel=0.20), (choice.epsilon, choice.gamma, truth, rungs)


def walk(sampler: str) -> None:
    """The rule's full walk on every case, one line each: how DECIDING and README's table were made."""
    torch.set_num_threads(1)
    for name, (widths, rank, seed) in SHAPES.items():
        model, x, y = deep_linear_network(widths, rank, seed=seed)
        choice = choose_step(lambda cfg, m=model, x=x, y=y: estimate_llc(m, (x, y), gaussian_nll, cfg, n=len(x)),
                             replace(BASE, seed=seed, preconditioner=sampler))
        est, truth = choice.estimate, dln_learning_coefficient(widths, rank)
        rungs = " ".join(f"({r.epsilon:g}, {r.gamma:g}): " + (f"{r.estimate.mean:.2f} @ {r.estimate.acceptance:.3f}"
                                                             if r.estimate else "diverged") for r in choice.rungs)
        chosen = f"{choice.epsilon:g}, {choice.gamma:g}, {est.mean:.2f} ± {est.std:.2f}" if est else choice.reason
        print(f"{sampler} {name}: {chosen}, truth {truth:g}, ratio {est.mean / truth if est else 0:.3f} | {rungs}",
              flush=True)


if __name__ == "__main__":
    import sys

    for sampler in sys.argv[1:] or ["none", "rmsprop"]:
        walk(sampler)
