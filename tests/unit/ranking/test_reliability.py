"""ICC(1) of the free energy's replicates: a table computed by hand, the estimate and its interval's coverage on
data simulated with a known ICC, what is read from the scores, and the verdict."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats  # pinned in requirements-dev.txt: a missing scipy is an error, never a skip

from data.records import Score
from ranking.reliability import (
    NOISE_VERDICT,
    icc1,
    icc_consistency,
    reliability,
    reliability_markdown,
    reliability_verdict,
    replicates,
)


def test_a_small_table_by_hand():
    # 3 models × 2 replicates: means 2, 5, 8 (grand mean 5); MSB = 2·(9 + 0 + 9) / 2 = 18; MSW = (1+1+1+1+0+0) / 3
    icc, low, high, between, within, k0 = icc1([[1, 3], [4, 6], [8, 8]])
    msb, msw = 18.0, 4 / 3
    assert icc == pytest.approx((msb - msw) / (msb + msw)) == pytest.approx(50 / 58)
    assert (between, within, k0) == (pytest.approx((msb - msw) / 2), pytest.approx(msw), pytest.approx(2))
    f0 = msb / msw  # 13.5 on (2, 3) df
    f_low, f_high = f0 / stats.f.ppf(0.975, 2, 3), f0 * stats.f.ppf(0.975, 3, 2)
    assert low == pytest.approx((f_low - 1) / (f_low + 1), rel=1e-6)  # ≈ −0.086
    assert high == pytest.approx((f_high - 1) / (f_high + 1), rel=1e-6)  # ≈ 0.996


def test_unbalanced_replicates_use_k0_and_single_runs_are_left_out():
    groups = [[1.0, 2.0], [3.0, 4.0, 5.0], [7.0]]  # the single run of the third model does not enter
    *_, k0 = icc1(groups)
    sizes = np.array([2, 3])
    assert k0 == pytest.approx((5 - (sizes ** 2).sum() / 5) / 1)
    assert all(math.isnan(v) for v in icc1([[1.0, 2.0], [3.0]]))  # one replicated model: undefined


def simulate(rng, icc: float, models: int, k: int) -> np.ndarray:
    """models × k values: a model effect of variance icc plus replicate noise of variance 1 − icc."""
    return rng.normal(scale=math.sqrt(icc), size=(models, 1)) + rng.normal(scale=math.sqrt(1 - icc), size=(models, k))


def test_the_estimate_recovers_a_known_icc():
    rng = np.random.default_rng(0)
    for truth in (0.2, 0.5, 0.9):
        icc, low, high, between, within, _ = icc1(simulate(rng, truth, 600, 3))
        assert icc == pytest.approx(truth, abs=0.05)
        assert low < truth < high and high - low < 0.15
        assert (between, within) == (pytest.approx(truth, abs=0.1), pytest.approx(1 - truth, abs=0.05))


def test_the_f_interval_covers_the_truth_95_percent_of_the_time_at_the_studys_size():
    rng = np.random.default_rng(1)
    sims = 600
    covered = sum(low <= 0.5 <= high for low, high in (icc1(simulate(rng, 0.5, 11, 3))[1:3] for _ in range(sims)))
    assert 0.925 <= covered / sims <= 0.975  # 0.95 ± 2.7 binomial SE


def test_the_consistency_icc_by_hand_and_blind_to_a_replicates_shared_shift():
    # 3 models × 2 replicates [[1, 3], [4, 6], [8, 8]]: row means 2, 5, 8, column means 13/3, 17/3, grand 5
    # MSR = 2·18 / 2 = 18; residuals ±1/3 … : SS_E = 4/3 over (2)(1) df, MSE = 2/3
    icc, low, high = icc_consistency([[1, 3], [4, 6], [8, 8]])
    msr, mse = 18.0, 2 / 3
    assert icc == pytest.approx((msr - mse) / (msr + mse))
    f0 = msr / mse  # on (2, 2) df
    f_low, f_high = f0 / stats.f.ppf(0.975, 2, 2), f0 * stats.f.ppf(0.975, 2, 2)
    assert (low, high) == (pytest.approx((f_low - 1) / (f_low + 1)), pytest.approx((f_high - 1) / (f_high + 1)))
    rng = np.random.default_rng(3)
    table = simulate(rng, 0.7, 11, 3)
    shifted = table + np.array([0.0, 3.0, -3.0])  # replicate 1's windows easier for every model, replicate 2's harder
    assert icc_consistency(shifted)[0] == pytest.approx(icc_consistency(table)[0])
    assert icc1(shifted)[0] < icc1(table)[0] - 0.3  # one-way ICC counts the shared shift as noise


def test_the_consistency_interval_covers_the_truth_95_percent_of_the_time_with_replicate_shifts():
    rng = np.random.default_rng(4)
    sims, covered = 600, 0
    for _ in range(sims):
        table = simulate(rng, 0.5, 11, 3) + rng.normal(scale=2.0, size=(1, 3))  # a random shift per replicate
        _, low, high = icc_consistency(table)
        covered += low <= 0.5 <= high
    assert 0.925 <= covered / sims <= 0.975


def score(repo, metric, value, seed, status="ok", scorer="free_energy"):
    return Score(repo_id=repo, revision="r" * 40, scorer=scorer, metric=metric, target="corpus", seed=seed,
                 value=value, base_id="base", status=status)


def test_replicates_are_read_per_seed_with_unconverged_runs_and_without_failed_ones():
    scores = [score("a", "llc_mean", 1.0, 0), score("a", "llc_mean", 3.0, 1, "unconverged"),
              score("a", "llc_mean", 5.0, 1),  # a second value at seed 1: averaged with the first
              score("a", "llc_mean", 9.0, 2, "failed"), score("b", "llc_mean", 2.0, 0),
              score("c", "llc_mean", 2.0, 0), score("a", "llc_mean", 7.0, 3, scorer="other")]
    assert replicates(scores, "llc_mean") == {"a": [1.0, 4.0], "b": [2.0], "c": [2.0]}
    assert replicates(scores, "llc_mean", models={"b"}) == {"b": [2.0]}


def fe_scores(values: dict[str, list[tuple[float, float]]], statuses=None) -> list[Score]:
    """Per model, (L_n, λ̂) per replicate; F = 100·L_n + λ̂·log 100."""
    out = []
    for repo, runs in values.items():
        for seed, (loss, lam) in enumerate(runs):
            status = (statuses or {}).get((repo, seed), "ok")
            out += [score(repo, "init_loss", loss, seed, status), score(repo, "llc_mean", lam, seed, status),
                    score(repo, "free_energy", 100 * loss + lam * math.log(100), seed, status)]
    return out


def test_lambda_that_is_only_noise_makes_f_the_loss_plus_noise():
    rng = np.random.default_rng(4)
    values = {f"m{i}": [(5 + 0.1 * i, 3 + rng.normal()) for _ in range(3)] for i in range(11)}
    r = reliability(fe_scores(values, {("m0", 0): "unconverged"}))
    lam = r.row("llc_mean")
    assert lam.between <= lam.within and (lam.n_models, lam.n_runs) == (11, 33)
    between, within = (f"{v:.3g}".replace("-", "−") for v in (lam.between, lam.within))
    assert NOISE_VERDICT in reliability_verdict(r) == (
        f"λ̂'s between-model variance ({between}) does not exceed its between-replicate variance ({within}): λ̂ "
        "does not tell these models apart beyond its own noise, and F is then L_n plus noise.")
    assert r.row("init_loss").icc == pytest.approx(1.0)  # the loss differs between models only
    assert (r.passed, r.runs, r.replicated, r.max_replicates) == (32, 33, 11, 3)
    text = "\n".join(reliability_markdown(r))
    assert "32 of 33 replicated F estimates passed the convergence gate" in text
    assert "| λ̂ | " in text and "| 11 | 33 |" in text


def test_lambda_that_separates_the_models_says_so():
    rng = np.random.default_rng(5)
    values = {f"m{i}": [(5.0, i + 0.1 * rng.normal()) for _ in range(3)] for i in range(6)}
    verdict = reliability_verdict(reliability(fe_scores(values)))
    assert "exceeds its between-replicate variance" in verdict and NOISE_VERDICT not in verdict


def test_one_replicate_per_model_is_not_measured():
    r = reliability(fe_scores({"a": [(5.0, 1.0)], "b": [(6.0, 2.0)]}), models={"a", "b"})
    assert all(math.isnan(row.icc) for row in r.rows) and r.max_replicates == 1
    [line] = reliability_markdown(r)
    assert line.endswith("not measured (2 models with 1 free-energy estimate each; it needs at least 2 models "
                         "with ≥ 2 replicates each).")
    assert "not measured (no free-energy estimates" in reliability_verdict(reliability([]))
