"""The convergence gate on hand-made estimates: each check fails alone, with its own sentence."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest
import torch

from scoring.config import ConvergenceGate
from scoring.llc import LLCEstimate
from scoring.llc_gate import gate_failures

GOOD = LLCEstimate(mean=5.0, std=0.2, per_chain=(4.8, 5.2), init_loss=1.0, nbeta=100.0,
                   loss_traces=torch.zeros(2, 8), drift=0.02, r_hat=1.01, acceptance=0.95)
GATE = ConvergenceGate()


def test_a_good_estimate_passes():
    assert gate_failures(GOOD, GATE) == ()
    assert gate_failures(replace(GOOD, acceptance=None), GATE) == ()  # no noise, no acceptance to check


def test_a_negative_llc_fails_with_its_chains():
    reasons = gate_failures(replace(GOOD, mean=-1.0, per_chain=(-1.0, -1.0)), GATE)
    assert reasons == ("λ̂ = -1 < 0", "2 of 2 chains below L_n(w*)")


@pytest.mark.parametrize(("change", "says"), [
    ({"per_chain": (-0.5, 10.5)}, "1 of 2 chains below L_n(w*)"),
    ({"drift": 0.4}, "trace drift +0.40"),
    ({"drift": -0.4}, "trace drift -0.40"),
    ({"r_hat": 1.3}, "split R-hat 1.30 > 1.1"),
    ({"r_hat": math.nan}, "too few draws for R-hat"),
    ({"acceptance": 0.5}, "MALA acceptance 0.50 < 0.9"),
])
def test_each_check_fails_on_its_own(change, says):
    [reason] = gate_failures(replace(GOOD, **change), GATE)
    assert says in reason


def test_thresholds_come_from_the_config_and_are_validated():
    assert gate_failures(replace(GOOD, drift=0.3), ConvergenceGate(max_drift=0.5)) == ()
    with pytest.raises(ValueError):
        ConvergenceGate(max_r_hat=1.0)


def _fe_score(run, status="ok", scorer="free_energy"):
    from data.records import Score

    return Score(repo_id="m/x", revision="r" * 40, scorer=scorer, metric="free_energy", target="local", seed=0,
                 value=100.0, config_hash="h", config_json="{}", base_id="b", extra=run.to_json(), status=status)


def test_a_score_stored_before_the_gate_becomes_unconverged_with_its_reasons():
    from data.payloads import FreeEnergyRun, payload_of
    from scoring.llc_gate import PREDATES_GATE, regate_stored

    old = _fe_score(FreeEnergyRun(per_chain=(-3.0, 1.0), n=128, head="fitted"))
    gated = _fe_score(FreeEnergyRun(per_chain=(4.0, 5.0), n=128, head="refit", r_hat=1.0, acceptance=0.95))
    unconverged = _fe_score(FreeEnergyRun(per_chain=(4.0, 5.0), r_hat=1.0, acceptance=0.2,
                                          gate=("MALA acceptance 0.20 < 0.9: the step is too large",)), "unconverged")
    [after, kept, still] = regate_stored([old, gated, unconverged])
    assert after.status == "unconverged" and after.value == old.value
    assert payload_of(after).gate == (PREDATES_GATE, "λ̂ = -1 < 0", "1 of 2 chains below L_n(w*)")
    assert kept == gated and still == unconverged
    assert payload_of(regate_stored([_fe_score(FreeEnergyRun(per_chain=(2.0, 3.0)))])[0]).gate == (PREDATES_GATE,)
