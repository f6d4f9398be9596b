"""Export round trips, the documented columns, a snapshot of the format, and the export command."""

from __future__ import annotations

import io
import json

import pandas as pd
import pytest

from data.metrics import PROJECT_SOURCE
from data.records import Score
from data.store import Store
from ranking.__main__ import main
from ranking.columns import column_for, format_value
from ranking.export import export_columns, export_frame, render
from ranking.gains import INTERVALS
from ranking.leaderboard import build_leaderboard, scores_frame
from tests.unit.ranking.test_leaderboard import BASE, BASE_RUNS, rows_of

TABLE = {"m/good": {"a": [0.80], "b": [0.60]}, "m/partial": {"a": [0.9]}, "m/bad": {"a": [0.60], "b": [0.52]}}


@pytest.fixture
def board():
    rows = rows_of(BASE_RUNS) + rows_of(TABLE)
    rows += rows_of({"m/good": {"mnli": [0.7]}}, scorer="linear_probe", metric="probe_accuracy", config_hash="p")
    return build_leaderboard(scores_frame(rows), base_id=BASE, source=PROJECT_SOURCE)


def test_export_columns_are_the_documented_ones(board):
    frame = export_frame(board)
    documented = ["base_id", "source", "rank", "repo_id", "revision", "mean_gain", "gain_ci_low", "gain_ci_high",
                  "beats_base", "mean_score", "n_targets", "n_seeds", "gain_df", "n_seen", "n_suspect", "failed_runs",
                  "probe_accuracy", "knn_accuracy", "logme_target", "free_energy", "free_energy_status", "llc_mean",
                  "llc_std", "init_loss", "labels_saved", "downloads", "likes", "license", "num_params",
                  "last_modified", "pipeline_tag", "is_baseline"]  # the module's docstring and README's
    assert list(export_columns()) == documented
    assert list(frame.columns) == [*documented, "score:a", "score:b", "gain:a", "gain:b"]
    assert list(frame["repo_id"]) == [BASE, "m/good", "m/bad", "m/partial"]
    assert list(frame["rank"][:3]) == [0, 1, 2] and pd.isna(frame["rank"][3])  # no mean gain: listed, unranked
    assert set(frame["base_id"]) == {BASE} and set(frame["source"]) == {PROJECT_SOURCE}


def test_csv_round_trip(board):
    frame = export_frame(board)
    back = pd.read_csv(io.BytesIO(render(board, "csv")))
    assert list(back.columns) == list(frame.columns)
    pd.testing.assert_series_equal(back["mean_gain"], frame["mean_gain"].astype(float), check_names=False)
    assert back["score:b"].isna().tolist() == [False, False, False, True]


def test_parquet_round_trip_is_exact(board):
    frame = export_frame(board)
    back = pd.read_parquet(io.BytesIO(render(board, "parquet")))
    pd.testing.assert_frame_equal(back, frame.reset_index(drop=True), check_dtype=False)


def test_json_document(board):
    doc = json.loads(render(board, "json"))
    assert doc["base_id"] == BASE and doc["suite"] == ["a", "b"] and doc["config_hashes"]["intertraining"] == "h1"
    good = doc["rows"][1]
    assert good["repo_id"] == "m/good" and good["probe_accuracy"] == 0.7
    assert good["gain:a"] == pytest.approx(0.10) and doc["seed_design"] == "paired"  # paired with base seed 0
    assert doc["rows"][3]["mean_gain"] is None  # missing stays missing, as null
    assert doc["gain_interval"] == INTERVALS["paired"] and "pooled within targets" in doc["gain_interval"]
    # one paired seed per target: df = 0, so no interval (null), and gain_df says why
    assert (good["gain_ci_low"], good["gain_ci_high"], good["gain_df"]) == (None, None, 0)
    assert doc["rows"][0]["gain_df"] is None and doc["rows"][3]["gain_df"] is None  # the base; no mean gain
    with pytest.raises(ValueError, match="unknown export format"):
        render(board, "xlsx")


def test_csv_format_snapshot(board, snapshot):
    assert render(board, "csv").decode() == snapshot


def test_a_missing_interval_is_an_empty_cell_and_its_degrees_of_freedom_a_number():
    rows = rows_of(BASE_RUNS) + rows_of({"m/two": {"a": [0.80, 0.78], "b": [0.60]},
                                         "m/three": {"a": [0.80, 0.78, 0.77], "b": [0.60, 0.56]}})
    table = pd.read_csv(io.BytesIO(render(build_leaderboard(scores_frame(rows), base_id=BASE,
                                                            source=PROJECT_SOURCE), "csv"))).set_index("repo_id")
    assert table.loc["m/two", "gain_df"] == 1 and table.loc["m/two", ["gain_ci_low", "gain_ci_high"]].isna().all()
    assert table.loc["m/three", "gain_df"] == 3 and table.loc["m/three", "gain_ci_low"] < table.loc["m/three",
                                                                                                       "mean_gain"]


def test_display_formats():
    assert format_value(0.1234, "pct") == "12.34" and format_value(0.0123, "pts") == "+1.23"
    assert format_value(float("nan"), "pct") == "" and format_value(1234567, "int") == "1,234,567"
    assert column_for("gain:sst2").label == "Δ sst2" and column_for("score:sst2").group == "target scores"
    with pytest.raises(KeyError):
        column_for("nonsense")


def test_export_command_writes_a_file_and_refuses_unknown_leaderboards(tmp_path, capsys):
    db = tmp_path / "lb.db"
    store = Store(db)
    store.add_scores([Score(repo_id=r, revision="r", scorer="intertraining", metric="target_score", target=t,
                            seed=seed, value=v, config_hash="h1", base_id=BASE)
                      for r, targets in {**BASE_RUNS, **TABLE}.items() for t, vs in targets.items()
                      for seed, v in enumerate(vs)])
    out = tmp_path / "lb.parquet"
    assert main(["export", "--base", BASE, "--format", "parquet", "--out", str(out), "--db", str(db)]) == 0
    assert list(pd.read_parquet(out)["repo_id"]) == [BASE, "m/good", "m/bad", "m/partial"]
    assert main(["export", "--base", BASE, "--format", "csv", "--db", str(db)]) == 0
    assert capsys.readouterr().out.splitlines()[0].startswith("base_id,source,rank,repo_id")
    assert main(["export", "--base", "org/nothing", "--db", str(db)]) == 1
    assert "leaderboards with scores: org/base (project)" in capsys.readouterr().err


def test_export_command_takes_legacy_and_misspelt_base_names(tmp_path, capsys):
    """roberta-base names FacebookAI/roberta-base (said on stderr); a near miss gets the closest names."""
    db = tmp_path / "lb.db"
    canonical = "FacebookAI/roberta-base"
    Store(db).add_scores([Score(repo_id=r, revision="r", scorer="intertraining", metric="target_score", target=t,
                                seed=seed, value=v, config_hash="h1", base_id=canonical)
                          for r, targets in {canonical: BASE_RUNS[BASE], **TABLE}.items()
                          for t, vs in targets.items() for seed, v in enumerate(vs)])
    for typed in ("roberta-base", "RoBERTa-base", "facebookai/roberta-base"):
        assert main(["export", "--base", typed, "--format", "csv", "--db", str(db)]) == 0
        out, err = capsys.readouterr()
        assert out.splitlines()[1].startswith(f"{canonical},project,0,{canonical},")
        assert f"note: {typed} is {canonical} on the Hub today; using {canonical}" in err
    assert main(["export", "--base", "FacebookAI/roberta-bse", "--db", str(db)]) == 1
    assert "(did you mean FacebookAI/roberta-base?)" in capsys.readouterr().err



def test_csv_cells_a_spreadsheet_would_evaluate_are_neutralised(board):
    """OWASP's rule on text cells; numbers (negative gains too) stay numbers; JSON keeps the raw text."""
    import dataclasses

    rows = board.rows.copy()
    rows.loc[rows.index[0], "repo_id"] = "=HYPERLINK(\"http://evil.example\",\"click\")"
    rows.loc[rows.index[0], "license"] = "@SUM(1+1)"
    hostile = dataclasses.replace(board, rows=rows)
    table = pd.read_csv(io.BytesIO(render(hostile, "csv")), keep_default_na=False)
    row = table[table["license"] == "'@SUM(1+1)"].iloc[0]
    assert row["repo_id"] == "'=HYPERLINK(\"http://evil.example\",\"click\")"
    assert (pd.to_numeric(table["mean_gain"], errors="coerce") < 0).any()  # negative numbers untouched
    assert json.loads(render(hostile, "json"))["rows"][1]["license"] == "@SUM(1+1)"
