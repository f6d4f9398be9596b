"""Additivity tests beside the additive fit: known answers, the classic formulas, scipy's F."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.stats

from ranking.additivity import MIN_RESIDUAL_DF, fit_target_scale, is_testable, replicate_interaction, tukey
from ranking.stats import f_sf


def complete(n_s: int, n_t: int):
    rows, cols = np.divmod(np.arange(n_s * n_t), n_t)
    design = np.column_stack([np.ones(n_s * n_t), np.eye(n_s)[rows], np.eye(n_t)[cols]])
    return rows, cols, design


def test_tukey_equals_the_classic_complete_table_formula():
    rng = np.random.default_rng(0)
    n_s, n_t = 6, 5
    rows, cols, design = complete(n_s, n_t)
    a, b = rng.normal(0, 2, n_s), rng.normal(0, 3, n_t)
    y = 1.0 + a[rows] + b[cols] + 0.4 * a[rows] * b[cols] + rng.normal(0, 0.5, n_s * n_t)
    table = y.reshape(n_s, n_t)
    ah, bh = table.mean(axis=1) - table.mean(), table.mean(axis=0) - table.mean()  # the additive fit's effects
    result = tukey(y, design, ah, bh, rows, cols)
    ss_n = (ah @ table @ bh) ** 2 / ((ah**2).sum() * (bh**2).sum())  # Tukey (1949)
    residual = table - table.mean(axis=1, keepdims=True) - table.mean(axis=0) + table.mean()
    df2 = (n_s - 1) * (n_t - 1) - 1
    f = ss_n / (((residual**2).sum() - ss_n) / df2)
    assert (result.f, result.df2) == (pytest.approx(f), df2)
    assert result.p_value == pytest.approx(scipy.stats.f.sf(f, 1, df2)) and result.p_value < 0.01


def test_tukey_does_not_reject_an_additive_table():
    rng = np.random.default_rng(1)
    rows, cols, design = complete(8, 6)
    a, b = rng.normal(0, 2, 8), rng.normal(0, 3, 6)
    y = a[rows] + b[cols] + rng.normal(0, 1.0, 48)
    table = y.reshape(8, 6)
    assert tukey(y, design, table.mean(1) - y.mean(), table.mean(0) - y.mean(), rows, cols).p_value > 0.05


def test_the_per_target_scale_model_fits_its_own_data_exactly():
    rng = np.random.default_rng(2)
    rows, cols, _ = complete(7, 4)
    a, mu, lam = rng.normal(0, 1, 7), rng.normal(0, 2, 4), rng.uniform(0.5, 3, 4)
    y = mu[cols] + lam[cols] * a[rows]
    fit = fit_target_scale(y, rows, cols, 7, 4)
    assert fit.r2 == pytest.approx(1.0, abs=1e-9) and fit.rmse < 1e-6 and fit.n_params == 2 * 4 + 7 - 2


def test_lack_of_fit_against_replicates_by_hand():
    residual = np.array([1.0, -1.0, 0.5, -0.5])
    reps = [np.array([0.0, 1.0]), np.array([2.0, 2.0, 5.0]), np.array([1.0, 1.0]), np.array([3.0, 4.0])]
    weighted = sum(len(r) * e**2 for r, e in zip(reps, residual, strict=True))
    pure = sum(((r - r.mean()) ** 2).sum() for r in reps) / sum(len(r) - 1 for r in reps)
    result = replicate_interaction(weighted, 2, reps)
    assert result.f == pytest.approx((weighted / 2) / pure) and result.df2 == 5
    assert result.p_value == pytest.approx(scipy.stats.f.sf(result.f, 2, 5))
    assert replicate_interaction(weighted, 2, []) is None  # one seed per cell: no pure error


@pytest.mark.parametrize(("f", "d1", "d2"), [(0.5, 1, 3), (3.2, 2, 7.5), (10.0, 4, 40), (1.0, 30, 30)])
def test_f_survival_matches_scipy(f, d1, d2):
    assert f_sf(f, d1, d2) == pytest.approx(scipy.stats.f.sf(f, d1, d2), abs=1e-9)


def test_fits_and_tests_are_reported_from_ten_residual_degrees_of_freedom():
    assert MIN_RESIDUAL_DF == 10 and is_testable(10) and not is_testable(9)
    rng = np.random.default_rng(3)
    rows, cols, _ = complete(6, 4)
    fit = fit_target_scale(rng.normal(size=24), rows, cols, 6, 4)
    assert fit.residual_df == 24 - (2 * 4 + 6 - 2) == 12
