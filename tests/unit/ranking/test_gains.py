"""The gain and its interval under both seed designs: known answers by hand, and coverage by simulation."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.stats

from ranking.leaderboard import build_leaderboard, scores_frame
from ranking.stats import t_quantile

BASE = "org/base"
BASE_RUNS = {"a": [0.70, 0.72, 0.74], "b": [0.50, 0.50, 0.56]}  # seeds 0, 1, 2; means 0.72, 0.52


def rows_of(repo: str, table: dict[str, list[float]], seeds=None) -> list[tuple]:
    return [(repo, "r", "intertraining", "target_score", t, (seeds or range(len(v)))[i], x, "h1")
            for t, v in table.items() for i, x in enumerate(v)]


def board(rows, design="paired"):
    return build_leaderboard(scores_frame(rows), base_id=BASE, source="project", seed_design=design)


def test_paired_gain_is_measured_seed_by_seed_with_a_t_interval_on_the_seeds():
    rows = rows_of(BASE, BASE_RUNS) + rows_of("m/x", {"a": [0.80, 0.78], "b": [0.60, 0.56]})
    x = board(rows).rows.iloc[0]
    # d_0 = ((0.80-0.70) + (0.60-0.50)) / 2 = 0.10, d_1 = ((0.78-0.72) + (0.56-0.50)) / 2 = 0.06
    assert x["gain:a"] == pytest.approx(0.08) and x["gain:b"] == pytest.approx(0.08)
    assert x["mean_gain"] == pytest.approx(0.08) and x["n_seeds"] == 2
    half = scipy.stats.t.ppf(0.975, 1) * np.std([0.10, 0.06], ddof=1) / math.sqrt(2)
    assert (x["gain_ci_low"], x["gain_ci_high"]) == pytest.approx((0.08 - half, 0.08 + half))
    assert not x["beats_base"]  # two seeds: t with 1 df is wide


def test_one_candidate_seed_gains_against_the_base_run_it_shares_a_seed_with_and_has_no_interval():
    x = board(rows_of(BASE, BASE_RUNS) + rows_of("m/x", {"a": [0.80], "b": [0.60]})).rows.iloc[0]
    assert x["mean_gain"] == pytest.approx(0.10)  # against base seed 0 (0.70, 0.50), not the base's mean
    assert math.isnan(x["gain_ci_low"]) and not x["beats_base"] and x["n_seeds"] == 1


@pytest.mark.parametrize("design", ["paired", "independent"])
def test_an_identical_candidate_gains_exactly_zero(design):
    x = board(rows_of(BASE, BASE_RUNS) + rows_of("m/copy", BASE_RUNS), design).rows.iloc[0]
    assert x["mean_gain"] == 0.0 and not x["beats_base"]


def test_a_candidate_seed_the_base_never_ran_has_no_pair():
    x = board(rows_of(BASE, BASE_RUNS) + rows_of("m/x", {"a": [0.9], "b": [0.9]}, seeds=[7])).rows.iloc[0]
    assert math.isnan(x["mean_gain"]) and x["n_seeds"] == 0


def test_independent_gain_has_a_welch_satterthwaite_interval_by_hand():
    x = board(rows_of(BASE, BASE_RUNS) + rows_of("m/x", {"a": [0.80], "b": [0.60]}), "independent").rows.iloc[0]
    assert x["mean_gain"] == pytest.approx(0.08)  # against the base's mean over its seeds
    # one run per target: its noise is the base's σ²_t; per target σ²/1 + σ²/3, both with 2 df
    va, vb = np.var(BASE_RUNS["a"], ddof=1), np.var(BASE_RUNS["b"], ddof=1)
    parts = np.array([va, va / 3, vb, vb / 3]) / 4
    var, df = parts.sum(), parts.sum() ** 2 / (parts**2 / 2).sum()
    half = scipy.stats.t.ppf(0.975, df) * math.sqrt(var)
    assert (x["gain_ci_low"], x["gain_ci_high"]) == pytest.approx((0.08 - half, 0.08 + half))


def test_t_quantiles_match_scipy_at_whole_and_fractional_degrees_of_freedom():
    for df in (1, 1.37, 2, 2.5, 3.9, 7, 29.5, 30, 31, 45.2, 1000):
        assert t_quantile(df) == pytest.approx(scipy.stats.t.ppf(0.975, df), abs=1e-6)
    with pytest.raises(ValueError, match="at least 1 degree"):
        t_quantile(0.5)


def _simulate(design: str, n_suites: int, rng: np.random.Generator) -> float:
    """Coverage of the 95% interval over simulated suites with known true gains: 5 candidates per suite
    (each its own true gain), 4 targets with their own noise; paired runs share a seed effect with the base."""
    covered = total = 0
    targets, n_cand = ["t0", "t1", "t2", "t3"], 5
    for _ in range(n_suites):
        sd = rng.uniform(0.005, 0.03, size=len(targets))
        level = rng.uniform(0.5, 0.9, size=len(targets))
        rows, truth = [], {}
        k, n = (3, 3) if design == "paired" else (6, 1)
        seed_effect = rng.normal(0, sd, size=(k, len(targets)))  # shared head init and data order
        noise = 0.5 if design == "paired" else 0.0  # paired: part of a run's noise is its own
        for s in range(k):
            for j, t in enumerate(targets):
                value = level[j] + (1 - noise) * seed_effect[s, j] + noise * rng.normal(0, sd[j])
                rows.append((BASE, "r", "intertraining", "target_score", t, s, value, "h"))
        for c in range(n_cand):
            gain = rng.normal(0, 0.02, size=len(targets))
            truth[f"m/{c}"] = gain.mean()
            for s in range(n):
                for j, t in enumerate(targets):
                    shared = seed_effect[s, j] if design == "paired" else rng.normal(0, sd[j])
                    value = level[j] + gain[j] + (1 - noise) * shared + noise * rng.normal(0, sd[j])
                    rows.append((f"m/{c}", "r", "intertraining", "target_score", t, s, value, "h"))
        for r in board(rows, design).rows.itertuples():
            covered += r.gain_ci_low <= truth[r.repo_id] <= r.gain_ci_high
            total += 1
    return covered / total


@pytest.mark.parametrize("design", ["paired", "independent"])
def test_the_95_interval_covers_the_true_gain_93_to_97_percent_of_the_time(design):
    coverage = _simulate(design, 200, np.random.default_rng({"paired": 1, "independent": 2}[design]))
    assert 0.93 <= coverage <= 0.97, f"{design}: coverage {coverage:.3f} over 1,000 simulated intervals"


def seen_board(rows, seen, design="paired", include_seen=False):
    return build_leaderboard(scores_frame(rows), base_id=BASE, source="project", seed_design=design, seen=seen,
                             include_seen=include_seen)


@pytest.mark.parametrize("design", ["paired", "independent"])
def test_a_target_the_model_was_trained_on_is_left_out_of_its_mean_gain_unless_included(design):
    rows = rows_of(BASE, BASE_RUNS) + rows_of("m/x", {"a": [0.90, 0.90], "b": [0.54, 0.51]}) + \
        rows_of("m/y", {"a": [0.75, 0.75], "b": [0.54, 0.51]})
    seen = {"m/x": {"a"}}  # m/x's card says it was trained on target a
    x, y = (seen_board(rows, seen, design).rows.set_index("repo_id").loc[m] for m in ("m/x", "m/y"))
    assert x["n_seen"] == 1 and y["n_seen"] == 0
    assert x["gain:a"] > 0.15  # still shown per target
    assert x["mean_gain"] == pytest.approx(x["gain:b"])  # the mean is over b alone
    assert y["mean_gain"] == pytest.approx((y["gain:a"] + y["gain:b"]) / 2)
    included = seen_board(rows, seen, design, include_seen=True).rows.set_index("repo_id").loc["m/x"]
    assert included["mean_gain"] == pytest.approx((x["gain:a"] + x["gain:b"]) / 2) and included["n_seen"] == 1
    if design == "paired":  # the interval over seeds uses b alone: d_0 = 0.04, d_1 = 0.01
        half = scipy.stats.t.ppf(0.975, 1) * np.std([0.04, 0.01], ddof=1) / math.sqrt(2)
        assert x["gain_ci_high"] - x["mean_gain"] == pytest.approx(half)


def test_a_model_trained_on_every_suite_target_has_no_zero_shot_gain():
    rows = rows_of(BASE, BASE_RUNS) + rows_of("m/x", {"a": [0.9], "b": [0.9]})
    x = seen_board(rows, {"m/x": {"a", "b"}}).rows.iloc[0]
    assert math.isnan(x["mean_gain"]) and x["n_seen"] == 2 and not x["beats_base"]
