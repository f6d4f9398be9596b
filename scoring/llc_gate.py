"""The convergence gate of an LLC estimate: which checks it fails (an estimate that fails any is unconverged).

Checks, each against ``ConvergenceGate`` (scoring/config.py): λ̂ ≥ 0 (w* is a local minimum of L_n); no chain's
mean draw loss below L_n(w*) (a chain that found lower loss was not sampling around w*); the draws stationary
(|trace drift| small: the chains had time to relax, about 2/(εγ) steps for the localization alone); split R-hat
across chains near 1 (the chains agree); the mean MALA acceptance high (devinterp's check that the step size
leaves SGLD's discretisation error small).
"""

from __future__ import annotations

import math
import sys
from dataclasses import replace
from pathlib import Path

from data.payloads import FreeEnergyRun, payload_of
from data.records import Score
from scoring.config import ConvergenceGate
from scoring.llc import LLCEstimate

PREDATES_GATE = "measured before the convergence gate (no MALA acceptance, no R-hat; the base's head)"


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


def regate_stored(scores: list[Score]) -> list[Score]:
    """Free-energy scores stored before the gate existed (their payload has no MALA acceptance and no R-hat) become
    ``unconverged`` with the reason, and any λ̂ < 0 / chain below L_n(w*) of their stored chains; every other score
    is returned as it is. Such an estimate was never checked, so it is never ranked."""
    out = []
    for s in scores:
        run = payload_of(s)  # the payload's type says which scores are free energies
        if isinstance(run, FreeEnergyRun) and run.acceptance is None and run.r_hat is None and s.status == "ok":
            chains = [c for c in run.per_chain if math.isfinite(c)]
            reasons = [PREDATES_GATE]
            if chains and sum(chains) / len(chains) < 0:
                reasons.append(f"λ̂ = {sum(chains) / len(chains):.3g} < 0")
            if below := sum(c < 0 for c in chains):
                reasons.append(f"{below} of {len(chains)} chains below L_n(w*)")
            s = replace(s, status="unconverged", extra=replace(run, gate=tuple(reasons)).to_json())
        out.append(s)
    return out


def regate_snapshot(path: Path) -> int:
    """Rewrite the snapshot at ``path`` with ``regate_stored`` applied; returns how many scores changed."""
    import tempfile

    from data.snapshot import read_snapshot, write_snapshot
    from data.store import Store

    snap = read_snapshot(path)
    scores = regate_stored(list(snap.scores))
    changed = sum(a.status != b.status for a, b in zip(snap.scores, scores, strict=True))
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(Path(tmp) / "regate.db")
        store.add_missing(snap.bases, snap.candidates, scores)
        write_snapshot(store, path, base_ids=[b.repo_id for b in snap.bases], meta=snap.meta)
    return changed


if __name__ == "__main__":  # python -m scoring.llc_gate SNAPSHOT.json
    print(f"{regate_snapshot(Path(sys.argv[1]))} free-energy scores re-gated")
