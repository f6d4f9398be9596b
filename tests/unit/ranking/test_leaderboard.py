"""Known answers and invariants of build_leaderboard."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from ranking.leaderboard import build_leaderboard, scores_frame
from ranking.stats import t_quantile

BASE = "org/base"


def rows_of(table: dict[str, dict[str, list[float]]], *, scorer="intertraining", metric="target_score",
            config_hash="h1", revision="r") -> list[tuple]:
    """{repo: {target: [seed values]}} -> score rows."""
    return [
        (repo, revision, scorer, metric, target, seed, value, config_hash)
        for repo, targets in table.items()
        for target, values in targets.items()
        for seed, value in enumerate(values)
    ]


BASE_RUNS = {BASE: {"a": [0.70, 0.72, 0.74], "b": [0.50, 0.50, 0.56]}}  # means 0.72, 0.52


def board(rows, **kwargs):
    return build_leaderboard(scores_frame(rows), base_id=BASE, source="project", **kwargs)


def test_gains_means_and_ci_by_hand():  # independent seeds (published runs); paired: tests/unit/ranking/test_gains.py
    rows = rows_of(BASE_RUNS) + rows_of({"m/good": {"a": [0.80], "b": [0.60]}, "m/bad": {"a": [0.60], "b": [0.52]}})
    lb = board(rows, seed_design="independent")
    assert lb.suite == ("a", "b")
    good = lb.rows.set_index("repo_id").loc["m/good"]
    assert good["gain:a"] == pytest.approx(0.08) and good["gain:b"] == pytest.approx(0.08)
    assert good["mean_score"] == pytest.approx(0.70) and good["mean_gain"] == pytest.approx(0.08)
    # var(mean gain) = (1/T²) Σ_t σ²_t (1/K + 1/1), σ²_a = 0.0004, σ²_b = 0.0012, K = 3; Welch–Satterthwaite df
    parts = np.array([0.0004, 0.0004 / 3, 0.0012, 0.0012 / 3]) / 4
    df = parts.sum() ** 2 / (parts**2 / 2).sum()
    half = t_quantile(df) * math.sqrt(parts.sum())
    assert good["gain_ci_low"] == pytest.approx(0.08 - half) and good["gain_ci_high"] == pytest.approx(0.08 + half)
    assert good["gain_df"] == pytest.approx(df)
    assert bool(good["beats_base"]) is (0.08 - half > 0) is True
    bad = lb.rows.set_index("repo_id").loc["m/bad"]
    assert bad["mean_gain"] == pytest.approx(-0.06) and not bad["beats_base"]
    assert list(lb.rows["repo_id"]) == ["m/good", "m/bad"] and list(lb.rows["rank"]) == [1, 2]
    base = lb.baseline.iloc[0]
    assert base["repo_id"] == BASE and base["rank"] == 0 and base["mean_score"] == pytest.approx(0.62)
    assert base["mean_gain"] == 0.0 and base["is_baseline"] and math.isnan(base["gain_df"])
    assert list(lb.to_frame()["repo_id"]) == [BASE, "m/good", "m/bad"]


def test_candidate_seeds_replace_the_base_noise_estimate():
    rows = rows_of(BASE_RUNS) + rows_of({"m/x": {"a": [0.80, 0.84], "b": [0.60, 0.60]}})
    x = board(rows, seed_design="independent").rows.iloc[0]
    parts = np.array([0.0008 / 2, 0.0004 / 3, 0.0 / 2, 0.0012 / 3]) / 4  # the candidate's own variance, 1 df
    df = parts.sum() ** 2 / (parts**2 / np.array([1, 2, 1, 2])).sum()
    assert x["gain_ci_high"] - x["mean_gain"] == pytest.approx(t_quantile(df) * math.sqrt(parts.sum()))


def test_identical_candidate_has_zero_gain_and_does_not_beat_the_base():
    same = {"m/copy": BASE_RUNS[BASE]}
    copy = board(rows_of(BASE_RUNS) + rows_of(same)).rows.iloc[0]
    assert copy["mean_gain"] == pytest.approx(0.0, abs=1e-12) and not copy["beats_base"]


def test_missing_target_gives_no_mean_and_ranks_after_full_ones():
    rows = rows_of(BASE_RUNS) + rows_of({"m/partial": {"a": [0.99]}, "m/full": {"a": [0.60], "b": [0.40]}})
    lb = board(rows)
    partial = lb.rows.set_index("repo_id").loc["m/partial"]
    assert math.isnan(partial["mean_score"]) and math.isnan(partial["mean_gain"]) and partial["n_targets"] == 1
    assert partial["gain:a"] == pytest.approx(0.29)  # per-target gains still shown (paired: vs base seed 0)
    assert list(lb.rows["repo_id"]) == ["m/full", "m/partial"]


def test_protocols_and_sources_never_mix():
    rows = rows_of(BASE_RUNS) + rows_of({"m/one": {"a": [0.8], "b": [0.6]}, "m/two": {"a": [0.7], "b": [0.5]}})
    rows += rows_of({"m/three": {"a": [0.99], "b": [0.99]}}, config_hash="h2")  # another protocol
    lb = board(rows)
    assert lb.config_hashes == {"intertraining": "h1"} and "m/three" not in set(lb.rows["repo_id"])
    other = board(rows, config_hashes={"intertraining": "h2"})
    assert list(other.rows["repo_id"]) == ["m/three"] and math.isnan(other.rows.iloc[0]["mean_gain"])  # no h2 base


def test_adding_a_worse_model_never_reorders_those_above_it():
    rng = np.random.default_rng(0)
    table = {f"m/{i:02d}": {"a": [float(rng.uniform(0.5, 0.9))], "b": [float(rng.uniform(0.3, 0.7))]}
             for i in range(30)}
    before = board(rows_of(BASE_RUNS) + rows_of(table)).rows
    worst = before["mean_score"].min()
    after = board(rows_of(BASE_RUNS) + rows_of(table) + rows_of({"m/worse": {"a": [worst - 0.1], "b": [0.0]}})).rows
    assert list(after["repo_id"][: len(before)]) == list(before["repo_id"]) and after.iloc[-1]["repo_id"] == "m/worse"


def test_ties_break_by_probe_then_repo_id():
    rows = rows_of(BASE_RUNS) + rows_of({r: {"a": [0.8], "b": [0.6]} for r in ("m/c", "m/a", "m/b")})
    rows += rows_of({"m/b": {"mnli": [0.9]}, "m/c": {"mnli": [0.5]}}, scorer="linear_probe", metric="probe_accuracy")
    assert list(board(rows).rows["repo_id"]) == ["m/b", "m/c", "m/a"]
    shuffled = list(reversed(rows))
    assert list(board(shuffled).rows["repo_id"]) == ["m/b", "m/c", "m/a"]


def test_sort_by_a_lower_is_better_metric():
    rows = rows_of({"m/a": {"": [5.0]}, "m/b": {"": [3.0]}, "m/c": {"": [4.0]}}, scorer="free_energy",
                   metric="free_energy")
    lb = board(rows, sort_by="free_energy")
    assert list(lb.rows["repo_id"]) == ["m/b", "m/c", "m/a"] and lb.baseline.empty
    with pytest.raises(KeyError, match="no declared direction"):
        board(rows, sort_by="mystery")


def test_only_the_current_revision_of_a_crawled_model_is_ranked():
    rows = rows_of(BASE_RUNS) + rows_of({"m/x": {"a": [0.9], "b": [0.9]}}, revision="old")
    rows += rows_of({"m/x": {"a": [0.6], "b": [0.6]}}, revision="new")
    meta = pd.DataFrame({"sha": ["new"], "downloads": [7], "license": ["mit"]}, index=pd.Index(["m/x"], name="repo_id"))
    lb = board(rows, metadata=meta)
    assert list(zip(lb.rows["repo_id"], lb.rows["revision"], strict=False)) == [("m/x", "new")]
    assert lb.rows.iloc[0]["downloads"] == 7 and lb.rows.iloc[0]["license"] == "mit"
    assert len(board(rows).rows) == 2  # without metadata both revisions are rows


def test_empty_scores_give_an_empty_leaderboard():
    lb = board([])
    assert lb.rows.empty and lb.baseline.empty and lb.suite == () and "gain_df" in lb.rows


@pytest.mark.parametrize("design", ["paired", "independent"])
def test_every_row_says_the_degrees_of_freedom_of_its_interval(design):
    """Paired: Σ_t (n_t − 1) over the paired seeds, shown even where it is too few for an interval; none without a
    mean gain. Independent: Welch–Satterthwaite's, none where the base has fewer than 2 runs on a target."""
    table = {"m/three": {"a": [0.80, 0.78, 0.77], "b": [0.60, 0.56, 0.58]}, "m/two": {"a": [0.8, 0.7], "b": [0.6]},
             "m/partial": {"a": [0.9, 0.8]}}
    rows = board(rows_of(BASE_RUNS) + rows_of(table), seed_design=design).rows.set_index("repo_id")
    assert math.isnan(rows.loc["m/partial", "gain_df"]) and math.isnan(rows.loc["m/partial", "gain_ci_low"])
    if design == "paired":
        assert (rows.loc["m/three", "gain_df"], rows.loc["m/two", "gain_df"]) == (4, 1)
        assert math.isnan(rows.loc["m/two", "gain_ci_low"]) and not rows.loc["m/two", "beats_base"]
    else:
        assert rows.loc["m/three", "gain_df"] > 2 and rows.loc["m/two", "gain_df"] > 1
        one_base_run = board(rows_of({BASE: {"a": [0.7], "b": [0.5]}}) + rows_of(table), seed_design=design).rows
        assert one_base_run["gain_df"].isna().all() and one_base_run["gain_ci_low"].isna().all()


def test_a_baseline_revision_keeps_the_bases_own_single_run_as_a_candidate():
    rows = rows_of(BASE_RUNS, revision="baseline") + rows_of({BASE: {"a": [0.9], "b": [0.9]}}, revision="row-7")
    lb = board(rows, baseline_revision="baseline", seed_design="independent")  # as published boards are
    assert list(zip(lb.rows["repo_id"], lb.rows["revision"], strict=False)) == [(BASE, "row-7")]
    assert lb.baseline.iloc[0]["mean_score"] == pytest.approx(0.62)
    assert lb.rows.iloc[0]["mean_gain"] == pytest.approx(0.28)


def test_a_score_that_is_not_ok_never_enters_a_column_or_a_mean():
    rows = [(*r, "ok") for r in rows_of(BASE_RUNS)] + [
        ("m/x", "r", "intertraining", "target_score", "a", 0, 0.99, "h1", "failed"),
        ("m/x", "r", "intertraining", "target_score", "a", 1000, 0.80, "h1", "ok"),
        ("m/x", "r", "intertraining", "target_score", "b", 0, 0.60, "h1", "ok"),
        ("m/x", "r", "sample_efficiency", "labels_saved", "sst2", 0, 2016.0, "se", "out_of_range"),
    ]
    x = board(rows).rows.iloc[0]
    assert x["failed_runs"] == 1 and x["score:a"] == pytest.approx(0.80)  # the failed 0.99 is not averaged in
    assert math.isnan(x["labels_saved"])  # a bound is not shown as a measurement


def test_a_free_energy_with_any_failed_replicate_is_unconverged_and_never_averaged():
    """Replicate r reads its own windows (a level shift shared by every model): a mean over the passing replicates
    alone would put a model whose low-level replicate passed ahead of one whose did not."""
    runs = rows_of(BASE_RUNS) + rows_of({m: {"a": [0.75], "b": [0.55]} for m in ("m/all", "m/one")})
    fe = [(m, "r", "free_energy", metric, "corpus", seed, value, "fe", status)
          for m, statuses in (("m/all", ("ok", "ok")), ("m/one", ("unconverged", "ok")))
          for seed, status in enumerate(statuses)
          for metric, value in (("free_energy", (910.0, 880.0)[seed]), ("llc_mean", 8.0), ("init_loss", 6.8))]
    rows = board([(*r, "ok") for r in runs] + fe).rows.set_index("repo_id")
    assert rows.loc["m/all", "free_energy"] == pytest.approx(895.0) and rows.loc["m/all", "free_energy_status"] == ""
    assert pd.isna(rows.loc["m/one", "free_energy"]) and pd.isna(rows.loc["m/one", "llc_mean"])
    assert rows.loc["m/one", "free_energy_status"] == "unconverged"  # not 880, the mean of its passing replicate


def test_a_suspect_cell_is_shown_left_out_of_the_mean_by_default_and_put_back_by_its_toggle():
    ok = rows_of(BASE_RUNS) + rows_of({"m/x": {"a": [0.80]}, "m/y": {"a": [0.74], "b": [0.54]}})
    suspect = ("m/x", "r", "intertraining", "target_score", "b", 0, 0.95, "h1", "suspect")
    rows = [(*r, "ok") for r in ok] + [suspect]
    default = board(rows, seed_design="independent").rows.set_index("repo_id")
    x = default.loc["m/x"]
    assert x["score:b"] == pytest.approx(0.95) and x["gain:b"] == pytest.approx(0.43)  # shown
    assert x["n_suspect"] == 1 and default.loc["m/y", "n_suspect"] == 0
    assert x["mean_gain"] == pytest.approx(0.08)  # target a alone: the suspect b is left out
    assert list(default.index) == ["m/x", "m/y"]
    put_back = board(rows, seed_design="independent", include_suspect=True)
    assert put_back.include_suspect
    x = put_back.rows.set_index("repo_id").loc["m/x"]
    assert x["mean_gain"] == pytest.approx((0.08 + 0.43) / 2) and x["n_suspect"] == 1
