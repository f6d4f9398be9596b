"""Choosing SGLD's step size and localization by a stated rule, from the MALA acceptance of its moves.

SGLD's discretisation error grows with the step size ε (λ̂ is biased up: Lau et al., arXiv 2308.12108); the MALA
acceptance probability of its moves (scoring/llc.py, on one batch at both ends) measures that error without a
known answer. With weak localization a chain in a wide network also drifts along its many flat directions into
rougher regions, where the acceptance stays low at every step (and λ̂ grows with the chain's length).

The rule: for each localization γ on an ascending ladder (weakest first: γ biases λ̂ down), walk a descending
ladder of steps, each rung keeping draws for the same simulated time (``time / ε`` steps per chain, three quarters
of them kept, so every rung mixes alike); the first rung whose mean acceptance reaches ``target`` wins, and its
estimate is the calibrated λ̂. Each rung's burn-in is a quarter of ``time / ε`` steps or three relaxation times of
the localization, 3 × 2/(εγ) steps, whichever is longer, and the acceptance is probed on kept steps only
(scoring/llc.py): a chain started at w* relaxes along its flat directions in 2/(εγ) steps, and a probe taken
before that measures the chain's age, not the step (from the mode it is about exp(−d(εγ)²/8), whatever the loss).
The bound is plain SGLD's. Under RMSProp (scoring/config.py, eps 1) a direction where nβ·L has curvature κ relaxes
at ε G (κ + γ) per step with G ≈ 1/(√κ + 1) at stationarity (there E[U'²] = E[U'']): at most about 20% more slowly
than plain SGLD's εγ at γ 1, and up to about 2× more slowly at γ 10.
Validated on reduced-rank regressions and deep linear networks (tests/unit/scoring/test_llc_calibration.py: wide
and deep cases, and cases held out from the rule's design) against Aoyagi's values: within 20% on 11 of 13 cases
with plain SGLD and on 12 of 13 with RMSProp, where one step for all cases misses the wide ones several-fold.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from scoring.config import SGLDConfig
from scoring.llc import LLCEstimate

DEFAULT_LADDER = (1e-3, 5e-4, 2.5e-4, 1.25e-4, 6.25e-5)
DEFAULT_TARGET = 0.9  # devinterp's guidance: a MALA acceptance around 0.9 or above
DEFAULT_TIME = 1.5  # ε × steps per chain
DEFAULT_GAMMAS = (1.0, 10.0, 100.0)
RELAXATIONS = 3  # burn-in of at least this many relaxation times 2/(εγ) of the localization


@dataclass(frozen=True, slots=True)
class Rung:
    epsilon: float
    gamma: float
    steps: int
    estimate: LLCEstimate | None  # None: diverged
    error: str = ""


@dataclass(frozen=True, slots=True)
class StepChoice:
    epsilon: float | None  # None: no rung reached the target
    gamma: float | None
    estimate: LLCEstimate | None
    rungs: tuple[Rung, ...]
    target: float

    @property
    def reason(self) -> str:
        if self.epsilon is not None:
            return ""
        return f"no (step, localization) on the ladders reached a MALA acceptance of {self.target:g}"


def rung_config(base: SGLDConfig, epsilon: float, gamma: float, time: float) -> SGLDConfig:
    """``base`` at step ``epsilon`` and localization ``gamma``: three quarters of ``time / epsilon`` steps kept as
    draws, after a burn-in of the other quarter or of ``RELAXATIONS`` × 2/(εγ) steps, whichever is longer."""
    if gamma <= 0:
        raise ValueError(f"the localization must be positive (its relaxation time bounds the burn-in), got {gamma}")
    steps = max(8, round(time / epsilon))
    relaxed = math.ceil(round(RELAXATIONS * 2 / (epsilon * gamma), 6))
    return replace(base, epsilon=epsilon, gamma=gamma, num_burnin=max(steps // 4, relaxed),
                   num_draws=steps - steps // 4)


def choose_step(estimate_at: Callable[[SGLDConfig], LLCEstimate], base: SGLDConfig, *,
                ladder: Sequence[float] = DEFAULT_LADDER, gammas: Sequence[float] = DEFAULT_GAMMAS,
                target: float = DEFAULT_TARGET, time: float = DEFAULT_TIME) -> StepChoice:
    """Run ``estimate_at`` over the ladders (γ ascending, then ε descending) and stop at the first rung whose mean
    MALA acceptance reaches ``target``. A rung that diverges (``ScoringError``) counts as failing."""
    from data.errors import ScoringError

    for name, values, descending in (("step", ladder, True), ("localization", gammas, False)):
        pairs = list(zip(values, values[1:], strict=False))
        if not values or any((b >= a) if descending else (b <= a) for a, b in pairs):
            order = "descending" if descending else "ascending"
            raise ValueError(f"the {name} ladder must be strictly {order}, got {tuple(values)}")
    if not 0 < target < 1:
        raise ValueError(f"the acceptance target must lie in (0, 1), got {target}")
    rungs = []
    for gamma in gammas:
        for epsilon in ladder:
            cfg = rung_config(base, epsilon, gamma, time)
            steps = cfg.num_burnin + cfg.num_draws
            try:
                est = estimate_at(cfg)
            except ScoringError as e:
                rungs.append(Rung(epsilon, gamma, steps, None, str(e)))
                continue
            rungs.append(Rung(epsilon, gamma, steps, est))
            if est.acceptance is not None and est.acceptance >= target:
                return StepChoice(epsilon, gamma, est, tuple(rungs), target)
    return StepChoice(None, None, None, tuple(rungs), target)
