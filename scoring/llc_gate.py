"""The convergence gate of an LLC estimate: which checks it fails (an estimate that fails any is unconverged).

Every check looks at the draws after burn-in, and the burn-in itself must cover ``min_burnin_relaxations``
relaxation times 2/(εγ) of the localization (a chain starts at w*, the mode of the localizing Gaussian; before it
has relaxed, a MALA probe measures the chain's age, not the step size: exp(−d(εγ)²/8) at the mode). The checks:
λ̂ ≥ 0 (w* is a local minimum of L_n); no chain's mean draw loss below L_n(w*) (a chain that found lower loss was
not sampling around w*); at least ``min_chains`` chains and split R-hat ≤ ``max_r_hat`` (the chains sample one
distribution); the Monte-Carlo standard error of λ̂ from the chains' λ̂ ≤ ``max_rel_se`` of λ̂ (R-hat on minibatch
losses can be 1.02 while the chains' λ̂ spread 4 to 12); the mean MALA acceptance ≥ ``min_acceptance``; λ̂ of the
first and second halves of the draws within ``max_half_gap`` standard errors (the chains had stopped moving);
where it was run, λ̂ at ε/2 with twice the steps within 2 standard errors (the step's bias); and, when gated, the
critical-point term nβ²‖∇L_n(w*)‖²/γ at most ``max_critical_ratio`` × λ̂ (in the quadratic picture the sampled
loss rises by ½(nβ/γ)·tr H minus that term: where it is large, λ̂ is a small difference of two large numbers).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import torch

from data.payloads import FreeEnergyRun, payload_of
from data.records import Score
from scoring.config import ConvergenceGate, SGLDConfig
from scoring.llc import LLCEstimate

PREDATES_GATE = "measured before the convergence gate (no MALA acceptance, no R-hat; the base's head)"


@dataclass(frozen=True, slots=True)
class Checks:
    """The figures the gate judges, stored with the estimate."""

    mc_se: float  # standard error of λ̂ over the chains
    half_gap: float  # (λ̂ second half − λ̂ first half) / its standard error
    burnin_relaxations: float  # burn-in / (2/(εγ))
    critical_term: float  # nβ²‖∇L_n(w*)‖²/γ
    halving_llc: float | None = None
    halving_gap: float | None = None  # (λ̂ at ε/2 − λ̂) / the standard error of the difference

    @classmethod
    def of(cls, est: LLCEstimate, sgld: SGLDConfig, *, grad_norm: float,
           halving: LLCEstimate | None = None) -> Checks:
        se = chain_se(est.per_chain)
        first, second = half_estimates(est)
        gap = (float(second.mean()) - float(first.mean())) / math.hypot(chain_se(first), chain_se(second))
        relax = 2 / (sgld.epsilon * sgld.gamma) if sgld.gamma > 0 else math.inf
        halving_gap = None
        if halving is not None:
            halving_gap = (halving.mean - est.mean) / math.hypot(se, chain_se(halving.per_chain))
        return cls(mc_se=se, half_gap=gap, burnin_relaxations=sgld.num_burnin / relax,
                   critical_term=est.nbeta ** 2 * grad_norm ** 2 / sgld.gamma if sgld.gamma > 0 else math.inf,
                   halving_llc=halving.mean if halving is not None else None, halving_gap=halving_gap)


def chain_se(values) -> float:
    """Standard error of the mean of the chains' values (NaN below two chains)."""
    t = torch.as_tensor(values, dtype=torch.float64)
    return float(t.std() / math.sqrt(len(t))) if len(t) > 1 else math.nan


def half_estimates(est: LLCEstimate) -> tuple[torch.Tensor, torch.Tensor]:
    """Each chain's λ̂ from the first and from the second half of its draws."""
    draws = est.loss_traces.double()
    half = draws.shape[1] // 2
    return (est.nbeta * (draws[:, :half].mean(dim=1) - est.init_loss),
            est.nbeta * (draws[:, half:2 * half].mean(dim=1) - est.init_loss))


def gate_failures(est: LLCEstimate, gate: ConvergenceGate, checks: Checks | None = None) -> tuple[str, ...]:
    """One sentence per failed check; empty when the estimate passes. Without ``checks`` only the checks on
    the estimate itself are taken (sign, chains, R-hat, acceptance)."""
    reasons = []
    if est.mean < 0:
        reasons.append(f"λ̂ = {est.mean:.3g} < 0")
    below = sum(m < 0 for m in est.per_chain)
    if below:
        reasons.append(f"{below} of {len(est.per_chain)} chains below L_n(w*)")
    if len(est.per_chain) < gate.min_chains:
        reasons.append(f"{len(est.per_chain)} chains: at least {gate.min_chains} are needed")
    if math.isnan(est.r_hat):
        reasons.append("too few draws for R-hat")
    elif est.r_hat > gate.max_r_hat:
        reasons.append(f"split R-hat {est.r_hat:.3f} > {gate.max_r_hat:g}")
    if est.acceptance is None:
        reasons.append("no MALA acceptance was probed")
    elif est.acceptance < gate.min_acceptance:
        reasons.append(f"MALA acceptance {est.acceptance:.2f} < {gate.min_acceptance:g}: the step is too large")
    if checks is not None:
        reasons += _sampler_failures(est, gate, checks)
    return tuple(reasons)


def _sampler_failures(est: LLCEstimate, gate: ConvergenceGate, c: Checks) -> list[str]:
    reasons = []
    if c.burnin_relaxations < gate.min_burnin_relaxations:
        reasons.append(f"burn-in of {c.burnin_relaxations:.2g} relaxation times 2/(εγ) < "
                       f"{gate.min_burnin_relaxations:g}: the chains were still leaving w*")
    if not c.mc_se <= gate.max_rel_se * abs(est.mean):
        reasons.append(f"Monte-Carlo standard error {c.mc_se:.3g} > {gate.max_rel_se:g} × λ̂ ({est.mean:.3g})")
    if not abs(c.half_gap) <= gate.max_half_gap:
        reasons.append(f"λ̂ of the draws' two halves differ by {c.half_gap:+.2f} standard errors "
                       f"(limit {gate.max_half_gap:g}): the chains were still moving")
    if c.halving_gap is not None and not abs(c.halving_gap) <= 2:
        reasons.append(f"λ̂ at ε/2 ({c.halving_llc:.3g}) differs from λ̂ by {c.halving_gap:+.2f} standard errors: "
                       "the step biases λ̂")
    if gate.max_critical_ratio is not None and not c.critical_term <= gate.max_critical_ratio * abs(est.mean):
        reasons.append(critical_reason(c.critical_term / abs(est.mean) if est.mean else math.inf, gate))
    return reasons


def critical_reason(ratio: float, gate: ConvergenceGate) -> str:
    return (f"nβ²‖∇L_n(w*)‖²/γ = {ratio:.2f} λ̂ > {gate.max_critical_ratio:g} λ̂: w* is not near a critical point "
            "(the gradient term is as large as the estimate)")


def critical_failure(run: FreeEnergyRun, gate: ConvergenceGate) -> str | None:
    """The critical-ratio check on a stored estimate's figures; None when it passes or was not measured."""
    if gate.max_critical_ratio is None or run.critical_ratio is None or run.critical_ratio <= gate.max_critical_ratio:
        return None
    return critical_reason(run.critical_ratio, gate)


def regate_stored(scores: list[Score], gate: ConvergenceGate | None = None) -> list[Score]:
    """Free-energy scores stored before the gate existed (their payload has no MALA acceptance and no R-hat) become
    ``unconverged`` with the reason, and any λ̂ < 0 / chain below L_n(w*) of their stored chains; a score whose
    stored critical ratio exceeds ``gate.max_critical_ratio`` (default: the current gate's) gets that reason too;
    every other score is returned as it is. Such an estimate was never checked, so it is never ranked."""
    gate = gate or ConvergenceGate()
    out = []
    for s in scores:
        run = payload_of(s)  # the payload's type says which scores are free energies
        if isinstance(run, FreeEnergyRun) and (reason := critical_failure(run, gate)) and reason not in run.gate:
            s = replace(s, status="unconverged", extra=replace(run, gate=(*run.gate, reason)).to_json())
        elif isinstance(run, FreeEnergyRun) and run.acceptance is None and run.r_hat is None and s.status == "ok":
            chains = [c for c in run.per_chain if math.isfinite(c)]
            reasons = [PREDATES_GATE]
            if chains and sum(chains) / len(chains) < 0:
                reasons.append(f"λ̂ = {sum(chains) / len(chains):.3g} < 0")
            if below := sum(c < 0 for c in chains):
                reasons.append(f"{below} of {len(chains)} chains below L_n(w*)")
            s = replace(s, status="unconverged", extra=replace(run, gate=tuple(reasons)).to_json())
        out.append(s)
    return out
