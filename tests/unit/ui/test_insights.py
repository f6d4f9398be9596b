"""Known answers for the correlations with bootstrap intervals, and what the insight figures carry."""

from __future__ import annotations

import math
import re
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from ui.board_cache import BoardKey
from ui.insights import (
    Correlation,
    beats_base_bars,
    compare_gains_figure,
    correlation_text,
    empty_figure,
    gain_heatmap,
    pearson_with_ci,
    sample_efficiency_figure,
    scatter_vs_gain,
    spearman_with_ci,
    study_gain_matrix,
    target_gains_bar,
)

EVIL = "<img src=x onerror=alert(1)>"


def annotations(fig) -> list[str]:
    return [a.text for a in fig.layout.annotations]


def all_strings(fig) -> str:
    """Every string the figure hands to plotly.js (hover text, ticks, names, titles, annotations)."""
    out: list[str] = []

    def walk(node):
        if isinstance(node, str):
            out.append(node)
        elif isinstance(node, dict):
            for value in node.values():
                walk(value)
        elif isinstance(node, list | tuple):
            for value in node:
                walk(value)
        elif isinstance(node, np.ndarray) and node.dtype == object:
            walk(node.tolist())

    walk(fig.to_plotly_json())
    return "\n".join(out)


# --- correlations ---------------------------------------------------------------------------------------------

def test_tie_heavy_data_like_pandas():
    rng = np.random.default_rng(1)
    for _ in range(20):
        x, y = rng.integers(0, 4, size=9).astype(float), rng.integers(0, 3, size=9).astype(float)
        expected = pd.Series(x).corr(pd.Series(y), method="spearman")
        got = spearman_with_ci(x, y, n_boot=0).rho
        assert got == pytest.approx(expected) or (math.isnan(got) and math.isnan(expected))


def test_monotone_relations_give_plus_and_minus_one_with_collapsed_intervals():
    x = np.arange(12.0)
    up = spearman_with_ci(x, np.exp(x))
    assert (up.rho, up.low, up.high, up.n, up.method) == (pytest.approx(1.0), pytest.approx(1.0), pytest.approx(1.0),
                                                           12, "spearman")
    down = spearman_with_ci(x, -(x**3))
    assert (down.rho, down.low, down.high) == (pytest.approx(-1.0), pytest.approx(-1.0), pytest.approx(-1.0))


def test_ties_by_hand_and_like_pandas():
    x = [1, 2, 2, 3, 5]  # ranks 1, 2.5, 2.5, 4, 5
    y = [2, 1, 4, 4, 6]  # ranks 2, 1, 3.5, 3.5, 5 -> sum dx·dy = 7.25, sum dx² = sum dy² = 9.5
    rho = spearman_with_ci(x, y, n_boot=0)
    assert rho.rho == pytest.approx(29 / 38)
    assert rho.rho == pytest.approx(pd.Series(x).corr(pd.Series(y), method="spearman"))
    assert math.isnan(rho.low) and math.isnan(rho.high)


def test_bootstrap_matches_a_loop_over_resamples():
    rng = np.random.default_rng(3)
    x = rng.integers(0, 6, 15).astype(float)
    y = x + rng.normal(0, 2, 15).round()
    got = spearman_with_ci(x, y, n_boot=300, seed=7, level=0.9)
    idx = np.random.default_rng(7).integers(0, 15, size=(300, 15))
    loop = np.array([pd.Series(x[i]).corr(pd.Series(y[i]), method="spearman") for i in idx])
    loop = loop[np.isfinite(loop)]
    assert (got.low, got.high) == (pytest.approx(np.quantile(loop, 0.05)), pytest.approx(np.quantile(loop, 0.95)))


def test_missing_pairs_are_dropped_and_counted():
    x = pd.Series([1.0, 2.0, np.nan, 4.0, 5.0, None, 7.0], dtype="Float64")
    y = [2.0, 1.0, 3.0, np.nan, 5.0, 6.0, np.inf]
    got = spearman_with_ci(x, y, n_boot=50)
    assert got.n == 3
    assert got.rho == pytest.approx(pd.Series([1.0, 2.0, 5.0]).corr(pd.Series([2.0, 1.0, 5.0]), method="spearman"))


def test_fewer_than_three_pairs_or_a_constant_side_is_undefined():
    two = spearman_with_ci([1.0, 2.0, np.nan], [3.0, 4.0, 5.0])
    assert two.n == 2 and all(math.isnan(v) for v in (two.rho, two.low, two.high))
    assert correlation_text(two, "free energy", "mean gain") == \
        "free energy vs mean gain: not enough models with both scores (n = 2)"
    flat = pearson_with_ci([1.0, 1.0, 1.0, 1.0], [1.0, 2.0, 3.0, 4.0])
    assert flat.n == 4 and math.isnan(flat.rho) and math.isnan(flat.low)
    assert "undefined" in correlation_text(flat, "a", "b")
    with pytest.raises(ValueError):
        spearman_with_ci([1, 2, 3], [1, 2])
    with pytest.raises(ValueError):
        spearman_with_ci([1, 2, 3], [1, 2, 3], level=1.0)


def test_interval_contains_rho_narrows_with_data_and_is_seeded():
    rng = np.random.default_rng(0)
    x = rng.normal(size=400)
    y = 0.5 * x + rng.normal(size=400)
    small, large = spearman_with_ci(x[:25], y[:25]), spearman_with_ci(x, y)
    for c in (small, large):
        assert c.low <= c.rho <= c.high
    assert large.high - large.low < (small.high - small.low) / 2
    assert spearman_with_ci(x, y, seed=5) == spearman_with_ci(x, y, seed=5)
    assert spearman_with_ci(x, y, seed=5) != spearman_with_ci(x, y, seed=6)


def test_pearson_matches_numpy():
    rng = np.random.default_rng(2)
    x = rng.normal(size=40)
    y = x**3 + rng.normal(size=40)
    got = pearson_with_ci(x, y)
    assert got.method == "pearson" and got.rho == pytest.approx(np.corrcoef(x, y)[0, 1])
    assert got.low <= got.rho <= got.high


def test_correlation_text():
    c = Correlation(rho=-0.4213, low=-0.611, high=-0.2049, n=57, method="spearman")
    assert correlation_text(c, "free energy", "mean gain") == \
        "free energy vs mean gain: Spearman ρ = -0.42 (95% CI -0.61 to -0.20, n = 57)"
    r = Correlation(rho=0.5, low=math.nan, high=math.nan, n=9, method="pearson")
    assert correlation_text(r, "probe", "mean gain") == "probe vs mean gain: Pearson r = 0.50 (n = 9)"


# --- figures --------------------------------------------------------------------------------------------------

@pytest.fixture
def frame() -> pd.DataFrame:
    """A Leaderboard.to_frame() in miniature: baseline first, then candidates by rank."""
    return pd.DataFrame({
        "rank": [0, 1, 2, 3, 4, 5],
        "repo_id": ["org/base", "m/a", EVIL, "m/c", "m/d", "m/e"],
        "revision": ["r"] * 6,
        "mean_gain": [0.0, 0.03, 0.02, -0.01, np.nan, 0.005],
        "free_energy": [100.0, 90.0, 95.0, 120.0, 80.0, np.nan],
        "probe_accuracy": [0.5, 0.8, 0.7, 0.6, 0.9, 0.75],
        "gain:a": [0.0, 0.04, 0.01, -0.02, np.nan, 0.0],
        "gain:b": [0.0, 0.02, 0.03, 0.0, 0.01, 0.01],
        "is_baseline": [True, False, False, False, False, False],
    })


def test_scatter_leaves_out_the_base_and_incomplete_rows(frame):
    fig, corr = scatter_vs_gain(frame, "free_energy", "free energy")
    trace = fig.data[0]
    assert list(trace.x) == [90.0, 95.0, 120.0]  # m/d lacks a gain, m/e a free energy
    assert list(trace.y) == pytest.approx([3.0, 2.0, -1.0])
    assert list(trace.hovertext) == ["m/a", "&lt;img src=x onerror=alert(1)&gt;", "m/c"]
    assert corr.n == 3 and corr.rho == pytest.approx(-1.0)
    assert fig.layout.title.text.replace("<br>", ": ") == correlation_text(corr, "free energy", "mean gain")
    assert [s.y0 for s in fig.layout.shapes] == [0]


def test_scatter_shows_fractions_as_the_table_does(frame):
    fig, corr = scatter_vs_gain(frame, "probe_accuracy", "probe")
    assert list(fig.data[0].x) == pytest.approx([80.0, 70.0, 60.0, 75.0])
    assert corr.rho == pytest.approx(spearman_with_ci([0.8, 0.7, 0.6, 0.75], [0.03, 0.02, -0.01, 0.005]).rho)


def test_scatter_without_pairs_is_the_empty_state(frame):
    fig, corr = scatter_vs_gain(frame, "llc_mean", "LLC")
    assert corr.n == 0 and annotations(fig) == ["no models with both LLC and mean gain yet"]


def test_heatmap_holds_gains_in_points_in_rank_order(frame):
    fig = gain_heatmap(frame.sample(frac=1, random_state=0), top=3)
    heat = fig.data[0]
    np.testing.assert_allclose(np.asarray(heat.z, dtype=float), [[4.0, 2.0], [1.0, 3.0], [-2.0, 0.0]])
    assert list(heat.x) == ["a", "b"]
    assert list(heat.y) == ["m/a", "&lt;img src=x onerror=alert(1)&gt;", "m/c"]
    assert heat.zmid == 0


def test_heatmap_tells_apart_one_repo_at_two_revisions(frame):
    twice = frame.assign(repo_id=["org/base", "m/a", "m/a", "m/c", "m/d", "m/e"],
                         revision=["r", "1234567890", "abcdef1234", "r", "r", "r"])
    assert list(gain_heatmap(twice, top=3).data[0].y) == ["m/a@1234567", "m/a@abcdef1", "m/c"]


def test_hub_strings_never_reach_plotly_raw(frame):
    row = frame.iloc[2]
    figures = [scatter_vs_gain(frame, "free_energy", "free energy")[0], gain_heatmap(frame), target_gains_bar(row),
               beats_base_bars([(EVIL, 1, 2)]),
               sample_efficiency_figure(pd.DataFrame({"model": [EVIL], "n_labels": [10], "accuracy": [0.5]}))]
    for fig in figures:
        text = all_strings(fig)
        assert "&lt;img" in text and "<img" not in text


def test_beats_base_bars_carry_the_counts_and_shares():
    fig = beats_base_bars([("roberta-base", 12, 40), ("bert-base-uncased", 0, 0)])
    totals, beating = fig.data
    assert list(totals.y) == ["roberta-base", "bert-base-uncased"] and list(totals.x) == [40, 0]  # horizontal bars
    assert list(beating.x) == [12, 0] and totals.orientation == beating.orientation == "h"
    assert list(beating.text) == ["12/40 (30%)", "0/0"]
    assert annotations(beats_base_bars([])) == ["no architectures with mean gains yet"]


def test_target_gains_bar_is_sorted_and_coloured(frame):
    fig = target_gains_bar(frame.iloc[3])  # m/c: a -0.02, b 0.0
    bar = fig.data[0]
    assert list(bar.y) == ["a", "b"] and list(bar.x) == pytest.approx([-2.0, 0.0])
    fig = target_gains_bar(pd.Series({"repo_id": "m/x", "gain:c": 0.01, "gain:a": 0.03, "gain:b": -0.02,
                                      "gain:d": np.nan}))
    bar = fig.data[0]
    assert list(bar.y) == ["b", "c", "a"] and list(bar.x) == pytest.approx([-2.0, 1.0, 3.0])
    assert bar.marker.color[0] != bar.marker.color[2]
    empty = target_gains_bar(pd.Series({"repo_id": "m/x", "gain:a": np.nan, "mean_gain": 0.1}))
    assert annotations(empty) == ["no per-target gains for this model yet"]


def test_sample_efficiency_one_colour_per_model_on_a_log_axis():
    points = pd.DataFrame({
        "model": ["base", "base", "cand", "cand", "cand"],
        "n_labels": [1000, 100, 100, 1000, 1000],
        "accuracy": [0.8, 0.6, 0.7, 0.85, 0.84],
        "kind": ["measured", "measured", "measured", "measured", "fit"],
    })
    fig = sample_efficiency_figure(points)
    assert fig.layout.xaxis.type == "log"
    by_name = {t.name: t for t in fig.data}
    assert set(by_name) == {"base", "cand", "cand (fit)"}
    assert list(by_name["base"].x) == [100, 1000] and list(by_name["base"].y) == pytest.approx([60.0, 80.0])
    assert by_name["cand"].line.color == by_name["cand (fit)"].line.color != by_name["base"].line.color
    assert by_name["cand (fit)"].line.dash == "dash"


def test_empty_inputs_give_the_empty_state(frame):
    message = "no per-target gains yet"
    assert annotations(gain_heatmap(frame.drop(columns=["gain:a", "gain:b"]))) == [message]
    assert annotations(gain_heatmap(frame.iloc[:1])) == [message]  # the base alone
    assert annotations(gain_heatmap(frame.iloc[:0])) == [message]
    assert annotations(sample_efficiency_figure(pd.DataFrame(columns=["model", "n_labels", "accuracy"]))) == \
        ["no sample-efficiency measurements yet"]
    fig = empty_figure("a < b")
    assert annotations(fig) == ["a &lt; b"] and not fig.data


def test_study_gain_matrix_is_diverging_at_zero_labelled_and_outlines_the_diagonal():
    matrix = pd.DataFrame([[1.5, -2.0, np.nan], [0.25, 3.0, -1.0]], index=pd.Index(["rte", EVIL], name="source"),
                          columns=pd.Index(["mrpc", "rte", "sst2"], name="target"))
    fig = study_gain_matrix(matrix)
    heat = fig.data[0]
    np.testing.assert_allclose(np.asarray(heat.z, dtype=float), matrix.to_numpy())  # points, as given
    assert heat.zmid == 0 and list(heat.x) == ["mrpc", "rte", "sst2"]
    assert list(heat.y) == ["rte", "&lt;img src=x onerror=alert(1)&gt;"]
    assert list(heat.text[0]) == ["+1.5", "−2.0", ""]  # the cell values, with a real minus sign
    [diagonal] = fig.layout.shapes  # rte as source and target: row 0, column 1
    assert (diagonal.x0, diagonal.x1, diagonal.y0, diagonal.y1) == (0.5, 1.5, -0.5, 0.5)
    assert "<img" not in all_strings(fig)
    assert annotations(study_gain_matrix(matrix.iloc[:0])) == ["no source × target gains yet"]
    assert annotations(study_gain_matrix(matrix * np.nan)) == ["no source × target gains yet"]


def test_compare_gains_are_grouped_bars_one_colour_per_model_in_points(frame):
    rows = frame.iloc[[3, 1, 2]]  # m/c, m/a, the html-named model: in the order compared
    fig = compare_gains_figure(rows)
    assert fig.layout.barmode == "group" and len(fig.data) == 3
    assert [t.name for t in fig.data] == ["m/c", "m/a", "&lt;img src=x onerror=alert(1)&gt;"]
    assert all(list(t.x) == ["a", "b"] for t in fig.data)
    np.testing.assert_allclose([list(t.y) for t in fig.data], [[-2.0, 0.0], [4.0, 2.0], [1.0, 3.0]])
    assert len({t.marker.color for t in fig.data}) == 3
    assert "<img" not in all_strings(fig) and all("%{fullData.name}" in t.hovertemplate for t in fig.data)
    assert annotations(compare_gains_figure(rows.drop(columns=["gain:a", "gain:b"]))) == [
        "no per-target gains for these models yet"]


# --- the study report in Insights: the README's numbers --------------------------------------------------------

NUMBER = re.compile(r"[+−-]?\d+(?:\.\d+)?")


def headline_numbers(markdown: str) -> dict[str, list[str]]:
    """Every number of each headline line ("- **Label:** ..."), by label."""
    lines = [line for line in markdown.splitlines() if line.startswith("- **")]
    return {line[4:line.index("**", 4)]: NUMBER.findall(line) for line in lines}


def matrix_numbers(markdown: str) -> list[list[float]]:
    """The gain matrix table's cells (points; a diagonal cell's parentheses dropped)."""
    table = markdown.split("Gain matrix (pts")[1].split("\n\n")[1].splitlines()[2:]
    return [[float(cell.strip(" ()").replace("−", "-")) for cell in row.split("|")[2:-1]]
            for row in table if row.startswith("|")]


def test_insights_shows_the_bundled_studys_report_with_the_readmes_numbers(tmp_path, settings):
    from data.metrics import PROJECT_SOURCE
    from data.snapshot import DEFAULT_SNAPSHOT, read_snapshot, seed_store
    from data.store import Store
    from ranking.study_markdown import render_markdown
    from tests.helpers.boards import report_of
    from ui.handlers import AppHandlers

    base = "sentence-transformers/all-MiniLM-L6-v2"
    store = Store(tmp_path / "snapshot.db")
    seed_store(store, DEFAULT_SNAPSHOT)
    out = AppHandlers(store, replace(settings, snapshot_path=DEFAULT_SNAPSHOT)).insights(BoardKey(base, PROJECT_SOURCE))
    report = report_of(store, base, meta=read_snapshot(DEFAULT_SNAPSHOT).meta)
    markdown = render_markdown(report)
    assert out.study.study.startswith(markdown)  # the whole block, then the personal-validation table
    shown, readme = headline_numbers(out.study.study), headline_numbers(markdown)
    assert shown == readme and {"Beat the base beyond seed noise:", "Design:", "Failed runs", "Power by design",
                                "Power as measured", "Best source:", "Sources", "Contamination"} <= set(shown)
    assert shown["Beat the base beyond seed noise:"][:2] == [str(report.n_beat_base), str(report.n_ranked)]
    best = report.sources.iloc[0]
    line = next(x for x in out.study.study.splitlines() if x.startswith("- **Best source"))
    found = re.search(r"([+−]\d+\.\d\d) pts \((?:95% CI ([+−]\d+\.\d\d) to ([+−]\d+\.\d\d); )?n = (\d+) seeds", line)
    mean, low, high = (float(x.replace("−", "-")) if x else math.nan for x in found.groups()[:3])
    assert [mean, low, high] == pytest.approx([best["mean"], best["low"], best["high"]], abs=0.006, nan_ok=True)
    assert int(found.group(4)) == best["n_seeds"]
    # the figures beside it: the same gain matrix, and the same count of candidates beating the base
    heat = out.study.study_matrix.data[0]
    np.testing.assert_allclose(np.asarray(heat.z, dtype=float), matrix_numbers(markdown), atol=0.006)
    assert list(heat.y) == list(report.gain_matrix.index) and list(heat.x) == list(report.gain_matrix.columns)
    bars = out.beats_base.data
    assert (bars[0].x[0], bars[1].x[0]) == (report.n_ranked, report.n_beat_base)


def test_insights_reads_design_sources_and_contamination_from_the_snapshot_it_was_seeded_from(tmp_path, settings):
    from data.metrics import PROJECT_SOURCE
    from data.snapshot import write_snapshot
    from ranking.study_markdown import NOT_RECORDED, render_markdown
    from tests.helpers.boards import report_of
    from tests.helpers.study_store import BASE, build_study_store, repo_of
    from ui.handlers import AppHandlers

    gains = {s: {t: 0.01 * i - 0.004 * j for j, t in enumerate(("mrpc", "rte", "sick", "sst2", "trec"))}
             for i, s in enumerate(("mnli", "rte", "sick"))}
    store = build_study_store(tmp_path / "study.db", gains)
    meta = {"study": {"base_id": BASE, "targets": "mrpc,rte,sick,sst2,trec", "base_seeds": 3, "candidate_seeds": 3},
            "source_checks": [{"source": "sick", "repo_id": repo_of("sick"), "metric": "accuracy", "test_score": 0.8,
                               "majority_rate": 0.5, "status": "ok", "reason": "", "train_rows": 990,
                               "removed": {"sst2": 10}, "remaining_overlap": 0, "sha256": "0123456789abcdef" * 4}],
            "checkpoints": {BASE: "fedcba9876543210" * 4}, "target_overlap": {"rte|sst2": 0}}
    snapshot = write_snapshot(store, tmp_path / "study.json", base_ids=[BASE], meta=meta)
    key = BoardKey(BASE, PROJECT_SOURCE)
    study = AppHandlers(store, replace(settings, snapshot_path=snapshot)).insights(key).study.study
    assert study == render_markdown(report_of(store, BASE, meta=meta))
    assert "Seeds configured: base 3, candidates 3 per target" in study and "sha256 fedcba987654." in study
    assert "| sick | 80.0 % | 50.0 % | ok |" in study and "0123456789ab |" in study
    assert "10 training rows removed across 1 (source, target) pair (of 1 checked); 0 remain." in study
    assert NOT_RECORDED not in study
    elsewhere = AppHandlers(store, replace(settings, snapshot_path=None)).insights(key).study.study
    assert f"Sources** (each source model's own-task check before it became a candidate): {NOT_RECORDED}." in elsewhere


def test_insights_shows_the_validity_sections_exact_p_values_reliability_and_published_baseline(tmp_path):
    from types import SimpleNamespace

    from data.records import Score
    from ranking.study_markdown import render_markdown
    from tests.helpers.boards import report_of
    from tests.helpers.study_store import BASE, build_study_store, repo_of, sha
    from ui.insights import study_view

    sources = ("mnli", "rte", "sick", "sst2")
    gains = {s: {t: 0.01 * (i - j) for j, t in enumerate(("mrpc", "rte", "sick", "sst2", "trec"))}
             for i, s in enumerate(sources)}
    noise = (0.0, 0.4, -0.4)  # λ̂'s replicates differ more than its models: the verdict says F is L_n plus noise
    replicated = [Score(repo_id=repo_of(s), revision=sha(repo_of(s)), scorer="free_energy", metric=metric,
                        seed=seed, value=value, config_hash="fe3", base_id=BASE)
                  for i, s in enumerate(sources) for seed in range(3)
                  for metric, value in (("llc_mean", 2.0 + 0.01 * i + noise[(seed + i) % 3]),
                                        ("init_loss", 5.0 - 0.1 * i), ("free_energy", 500.0 - 10 * i))]
    store = build_study_store(tmp_path / "study.db", gains, extra_scores=replicated)
    board = SimpleNamespace(base_id="FacebookAI/roberta-base", suite=("a",),
                            rows=pd.DataFrame({"probe_accuracy": [0.1, 0.2, 0.3], "mean_gain": [0.1, 0.3, 0.2]}))
    report = report_of(store, BASE, published=board)
    shown = study_view(report).study
    assert shown == render_markdown(report)  # the same report object: the README's text
    assert "| free energy F | " in shown and "p (two-sided permutation)" in shown
    assert "τ +0.33 over 3 models with both." in shown  # 3 pairs, one discordant: (2 − 1) / 3
    assert "**Reliability of the free energy over replicates**" in shown and "F is then L_n plus noise." in shown
