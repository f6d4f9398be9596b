"""The convergence gate of an LLC estimate: which checks it fails (an estimate that fails any is unconverged).

Checks, each against ``ConvergenceGate`` (scoring/config.py): λ̂ ≥ 0 (w* is a local minimum of L_n); no chain's
mean draw loss below L_n(w*) (a chain that found lower loss was not sampling around w*); the draws stationary
(|trace drift| small: the chains had time to relax, about 2/(εγ) steps for the localization alone); split R-hat
across chains near 1 (the chains agree); the mean MALA acceptance high (devinterp's check that the step size
leaves SGLD's discretisation error small).
"""

from __future__ import annotations

import math

from scoring.config import ConvergenceGate
from scoring.llc import LLCEstimate


def gate_failures(est: LLCEstimate, gate: ConvergenceGate) -> tuple[str, ...]:
    """One sentence per failed check; empty when the estimate passes."""
    reasons = []
    if est.mean < 0:
        reasons.append(f"λ̂ = {est.mean:.3g} < 0")
    below = sum(m < 0 for m in est.per_chain)
    if below:
        reasons.append(f"{below} of {len(est.per_chain)} chains below L_n(w*)")
    if abs(est.drift) > gate.max_drift:
        reasons.append(f"trace drift {est.drift:+.2f} (limit ±{gate.max_drift:g}): the chains had not relaxed")
    if not math.isnan(est.r_hat) and est.r_hat > gate.max_r_hat:
        reasons.append(f"split R-hat {est.r_hat:.2f} > {gate.max_r_hat:g}")
    if math.isnan(est.r_hat) and len(est.per_chain) > 0:
        reasons.append("too few draws for R-hat")
    if est.acceptance is not None and est.acceptance < gate.min_acceptance:
        reasons.append(f"MALA acceptance {est.acceptance:.2f} < {gate.min_acceptance:g}: the step is too large")
    return tuple(reasons)
