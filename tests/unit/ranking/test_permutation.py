"""The few-model statistics of ranking/stats.py against independent answers: Spearman's exact permutation p-value
against brute-force enumeration and scipy, the partial Spearman against residualised ranks computed by hand, the
paired bootstrap's coverage by simulation, Kendall's τ-b by hand and against scipy, and Fisher's F quantile."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from scipy import stats  # pinned in requirements-dev.txt: a missing scipy is an error, never a skip

import ranking.stats as rs
from ranking.stats import (
    f_quantile,
    kendall_tau_b,
    paired_difference,
    partial_spearman_p,
    partial_spearman_statistic,
    point,
    spearman_p,
    spearman_statistic,
    spearman_with_ci,
)


def brute_force_p(x, y) -> float:
    """The share of all n! orderings of y whose |Spearman ρ| with x is at least the observed one (floats)."""
    rx, ry = stats.rankdata(x), stats.rankdata(y)
    perms = np.array(list(itertools.permutations(range(len(x)))))
    shuffled = ry[perms]
    dx = rx - rx.mean()
    dy = shuffled - shuffled.mean(axis=1, keepdims=True)
    rho = (dy @ dx) / np.sqrt((dx @ dx) * (dy ** 2).sum(axis=1))
    observed = abs(np.corrcoef(rx, ry)[0, 1])
    return float(np.mean(np.abs(rho) >= observed - 1e-9))


@pytest.mark.parametrize("n", [3, 4, 5, 6, 7, 8])
@pytest.mark.parametrize("ties", ["none", "x", "both"])
def test_the_exact_p_value_is_the_brute_force_enumeration(n, ties):
    rng = np.random.default_rng(10 * n + len(ties))
    for _ in range(3):
        x = rng.integers(0, 3, n).astype(float) if ties in ("x", "both") else rng.normal(size=n)
        y = rng.integers(0, 4, n).astype(float) if ties == "both" else x + rng.normal(size=n)
        if len(set(x)) < 2 or len(set(y)) < 2:
            continue
        p = spearman_p(x, y)
        assert p.method == "exact" and p.n_permutations == math.factorial(n) and p.n == n
        assert p.value == pytest.approx(brute_force_p(x, y), abs=1e-12)


@pytest.mark.parametrize("n", [6, 7, 8])
def test_without_ties_it_is_scipys_exact_permutation_test(n):
    rng = np.random.default_rng(n)
    x = rng.normal(size=n)
    y = 0.7 * x + rng.normal(size=n)

    ry = stats.rankdata(y) - (n + 1) / 2

    def rho(a, axis=-1):  # Spearman of each ordering of x with y (one sample: scipy permutes it, n! orderings)
        ra = stats.rankdata(a, axis=axis) - (n + 1) / 2
        return (ra * ry).sum(axis=axis) / np.sqrt((ra ** 2).sum(axis=axis) * (ry ** 2).sum())

    ref = stats.permutation_test((x,), rho, permutation_type="pairings", n_resamples=np.inf, vectorized=True,
                                 alternative="two-sided")
    assert ref.null_distribution.size == math.factorial(n)
    assert rho(x) == pytest.approx(stats.spearmanr(x, y).statistic)
    assert spearman_p(x, y).value == pytest.approx(ref.pvalue, rel=1e-9)


def test_the_counts_cover_every_ordering_once_and_a_perfect_order_is_two_of_n_factorial():
    for n in (5, 9, 12):
        a = np.arange(1, n + 1)
        counts, _ = rs._sum_counts(a, a)
        assert counts.sum() == math.factorial(n)
        assert np.array_equal(counts, counts[::-1])  # no ties: ρ's null distribution is symmetric
        assert spearman_p(a, a).value == pytest.approx(2 / math.factorial(n))
        assert spearman_p(a, -a).value == pytest.approx(2 / math.factorial(n))


def test_monte_carlo_only_when_the_table_is_too_large_and_it_says_so(monkeypatch):
    rng = np.random.default_rng(3)
    x = rng.normal(size=10)
    y = x + 2 * rng.normal(size=10)
    exact = spearman_p(x, y)
    assert exact.method == "exact"
    monkeypatch.setattr(rs, "EXACT_MAX_CELLS", 10)
    drawn = spearman_p(x, y, n_mc=20_000, seed=1)
    assert (drawn.method, drawn.n_permutations) == ("monte carlo", 20_000)
    assert drawn.value == pytest.approx(exact.value, abs=0.015)  # 4 SE of 20,000 draws
    assert spearman_p(x, y, n_mc=20_000, seed=1) == drawn  # seeded
    assert spearman_p(rng.normal(size=19), rng.normal(size=19), n_mc=100).method == "monte carlo"  # 2^19 subsets


def test_too_few_pairs_or_a_constant_side_have_no_p_value():
    assert math.isnan(spearman_p([1, 2], [2, 1]).value)
    assert math.isnan(spearman_p([1, 2, 3, np.nan], [1, 1, 1, 2]).value)  # complete pairs only: y constant
    assert spearman_p([1, 2, 3, 4, np.nan], [1, 2, 3, 4, 9]).n == 4


def test_the_partial_spearman_is_the_correlation_of_residualised_ranks():
    rng = np.random.default_rng(5)
    z = rng.normal(size=12)
    x, y = z + rng.normal(size=12), z + 0.5 * rng.normal(size=12)
    rx, ry, rz = (stats.rankdata(v) for v in (x, y, z))
    design = np.column_stack([np.ones(12), rz])
    ex = rx - design @ np.linalg.lstsq(design, rx, rcond=None)[0]
    ey = ry - design @ np.linalg.lstsq(design, ry, rcond=None)[0]
    by_hand = ex @ ey / math.sqrt((ex @ ex) * (ey @ ey))
    assert point(partial_spearman_statistic(x, y, z), 12) == pytest.approx(by_hand, abs=1e-12)
    rxy, rxz, ryz = (stats.spearmanr(a, b).statistic for a, b in ((x, y), (x, z), (y, z)))
    assert by_hand == pytest.approx((rxy - rxz * ryz) / math.sqrt((1 - rxz ** 2) * (1 - ryz ** 2)))
    p = partial_spearman_p(x, y, z, n_mc=2000)
    assert p.method == "residual permutation" and p.n_permutations == 2000 and 0 < p.value <= 1


def test_the_partial_p_value_is_small_for_a_real_partial_association_and_not_for_none():
    rng = np.random.default_rng(8)
    z = rng.normal(size=14)
    w = rng.normal(size=14)
    assert partial_spearman_p(z + w, z + w + 0.1 * rng.normal(size=14), z, n_mc=4000).value < 0.01
    assert partial_spearman_p(z + rng.normal(size=14), z + rng.normal(size=14), z, n_mc=4000).value > 0.05


def test_the_paired_interval_is_narrow_when_both_predictors_move_together():
    rng = np.random.default_rng(2)
    gain = rng.normal(size=11)
    x1 = gain + rng.normal(size=11)
    x2 = x1 + 0.01 * rng.normal(size=11)  # almost the same ordering: the two ρ move together in every resample
    single = spearman_with_ci(x1, gain)
    d = paired_difference(spearman_statistic(x1, gain), spearman_statistic(x2, gain), 11)
    assert single.high - single.low > 0.5
    assert d.high - d.low < 0.25 and d.low <= d.delta <= d.high
    assert d.delta == pytest.approx(stats.spearmanr(x2, gain).statistic - stats.spearmanr(x1, gain).statistic)


def test_bootstrap_intervals_cover_the_truth_in_a_small_simulation():
    """Two predictors equally good by construction (their Spearman with the gain is the same in the population):
    the paired interval of their difference covers 0, and the percentile interval of one covers its population
    Spearman ρ_s = (6/π)·asin(r/2), in about 95% of 200 samples of 40 models."""
    rng = np.random.default_rng(0)
    r = 1 / math.sqrt(2)
    truth = 6 / math.pi * math.asin(r / 2)
    covered_rho = covered_zero = 0
    sims = 200
    for i in range(sims):
        gain = rng.normal(size=40)
        x1, x2 = gain + rng.normal(size=40), gain + rng.normal(size=40)
        c = spearman_with_ci(x1, gain, n_boot=500, seed=i)
        d = paired_difference(spearman_statistic(x1, gain), spearman_statistic(x2, gain), 40, n_boot=500, seed=i)
        covered_rho += c.low <= truth <= c.high
        covered_zero += d.low <= 0 <= d.high
    assert 0.88 <= covered_rho / sims <= 0.99
    assert 0.88 <= covered_zero / sims <= 0.995


def test_kendall_tau_b_by_hand_and_against_scipy():
    # 6 pairs, one discordant (the 2nd and 3rd): τ = (5 − 1) / 6
    assert kendall_tau_b([1, 2, 3, 4], [1, 3, 2, 4]) == (pytest.approx(4 / 6), 4)
    # ties: x ties the 1st and 2nd, y the 2nd and 3rd; 4 concordant, 0 discordant: 4 / √(5·5)
    assert kendall_tau_b([1, 1, 2, 3], [1, 2, 2, 3]) == (pytest.approx(0.8), 4)
    rng = np.random.default_rng(1)
    x, y = rng.integers(0, 20, 300).astype(float), rng.integers(0, 25, 300).astype(float)
    y[::7] = np.nan
    keep = ~np.isnan(y)
    tau, n = kendall_tau_b(x, y, chunk=37)  # several chunks
    assert n == keep.sum() and tau == pytest.approx(stats.kendalltau(x[keep], y[keep]).statistic, abs=1e-12)
    assert math.isnan(kendall_tau_b([1, 1, 1], [1, 2, 3])[0]) and math.isnan(kendall_tau_b([1], [2])[0])


@pytest.mark.parametrize(("p", "df1", "df2"), [(0.975, 2, 3), (0.975, 3, 2), (0.975, 10, 22), (0.5, 1, 1),
                                               (0.95, 40, 120), (0.025, 5, 7)])
def test_the_f_quantile_is_scipys(p, df1, df2):
    assert f_quantile(p, df1, df2) == pytest.approx(stats.f.ppf(p, df1, df2), rel=1e-6)
    with pytest.raises(ValueError):
        f_quantile(1.0, df1, df2)
