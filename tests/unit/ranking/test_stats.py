"""Validity lines: Spearman and Pearson of a score against mean gain, on known data."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ranking.stats import pearson_with_ci, spearman_with_ci, validity_lines


def test_validity_lines_report_both_correlations_with_their_sign():
    rng = np.random.default_rng(0)
    gain = rng.normal(size=40)
    rows = pd.DataFrame({"free_energy": -3 * gain + rng.normal(scale=0.5, size=40), "mean_gain": gain})
    spearman_line, pearson_line = validity_lines(rows, "free_energy", "free energy")
    rho, r = spearman_with_ci(rows["free_energy"], gain), pearson_with_ci(rows["free_energy"], gain)
    assert rho.rho < -0.9 and r.rho < -0.9 and r.low <= r.rho <= r.high
    assert spearman_line == (f"free energy vs mean gain: Spearman ρ = {rho.rho:.2f} (95% CI {rho.low:.2f} to "
                             f"{rho.high:.2f}, n = 40)")
    assert pearson_line.startswith(f"free energy vs mean gain: Pearson r = {r.rho:.2f} (95% CI")


def test_validity_lines_skip_models_missing_a_score_and_say_when_there_are_none():
    rows = pd.DataFrame({"free_energy": [1.0, 2.0, np.nan, 4.0], "mean_gain": [0.1, np.nan, 0.3, 0.2]})
    assert validity_lines(rows, "free_energy", "free energy")[0].endswith("not enough models with both scores (n = 2)")
    missing = rows.drop(columns="free_energy")
    assert validity_lines(missing, "free_energy", "F") == ["F vs mean gain: no such scores yet"]
