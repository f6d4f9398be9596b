"""Comparing 2-4 models of one leaderboard: validation, the table, the header (no browser)."""

from __future__ import annotations

import pytest

from data.metrics import PROJECT_SOURCE
from ranking.stats import t_quantile
from tests.helpers.boards import load_leaderboard
from tests.helpers.leaderboard_store import BASE, EVIL, build_store
from ui.compare import (
    MAX_MODELS,
    CompareRejected,
    compare_header,
    compare_table,
    compared_rows,
    with_model,
)
from ui.views import model_link


@pytest.fixture(scope="module")
def board(tmp_path_factory):
    return load_leaderboard(build_store(tmp_path_factory.mktemp("compare") / "lb.db"), BASE, PROJECT_SOURCE)


def test_compared_rows_keep_the_order_picked_and_may_include_the_base(board):
    rows = compared_rows(board, "carol/weak, alice/strong,carol/weak")
    assert list(rows["repo_id"]) == ["carol/weak", "alice/strong"]
    assert list(rows["rank"]) == [4, 1]
    rows = compared_rows(board, [BASE, "alice/strong", "bob/middling", EVIL])
    assert list(rows["repo_id"]) == [BASE, "alice/strong", "bob/middling", EVIL] and bool(rows["is_baseline"][0])


@pytest.mark.parametrize(("ids", "reason"), [
    ("", "Pick at least 2 models to compare (0 picked)."),
    ("alice/strong", "Pick at least 2 models to compare (1 picked)."),
    ("alice/strong,alice/strong", "Pick at least 2 models to compare (1 picked)."),
    (["alice/strong", "bob/middling", "carol/weak", "dave/partial", BASE],
     "Compare at most 4 models at once (5 picked)."),
    ("alice/strong,nobody/else,x/y", "Not on the org/base leaderboard (project scores): nobody/else, x/y."),
])
def test_compared_rows_refuse_too_few_too_many_and_unknown_ids(board, ids, reason):
    with pytest.raises(CompareRejected) as refused:
        compared_rows(board, ids)
    assert refused.value.reason == reason


def test_compare_table_has_the_mean_gain_its_interval_and_every_target_gain(board):
    table, datatypes = compare_table(compared_rows(board, ["alice/strong", "dave/partial"]))
    assert list(table.columns) == ["rank", "model", "mean gain", "gain CI low", "gain CI high", "beats base",
                                   "mean score", "probe", "free energy", "targets", "seeds", "df", "trained on",
                                   "failed runs", "Δ sst2", "Δ trec"]
    assert list(table["model"]) == [model_link("alice/strong"), model_link("dave/partial")]
    alice = table.iloc[0]
    assert (alice["mean gain"], alice["Δ sst2"], alice["Δ trec"], alice["beats base"]) == (6.0, 5.0, 7.0, "yes")
    # three paired seeds on each of two targets, seed SD 0.2 pts (leaderboard_store): pooled over targets, df 4
    half = 100 * t_quantile(4) * (0.002**2 * 2 / 3) ** 0.5 / 2
    assert alice["gain CI low"] == pytest.approx(6.0 - half, abs=0.005)
    assert alice["gain CI high"] == pytest.approx(6.0 + half, abs=0.005)
    assert table.iloc[1]["Δ sst2"] == 10.0 and str(table.iloc[1]["mean gain"]) in ("nan", "<NA>")  # one target missing
    assert datatypes[1] == "markdown" and len(datatypes) == len(table.columns)


def test_compare_header_names_the_models_escaped(board):
    header = compare_header(board, compared_rows(board, [EVIL, BASE, "dave/partial"]))
    assert header.startswith("### Comparing 3 models on org/base (project scores)")
    assert "<img" not in header and "&lt;img src=x onerror=alert\\(1\\)&gt;: rank 3, mean gain +1.00" in header
    assert f"{model_link(BASE)}: the base model" in header
    assert "dave/partial](https://huggingface.co/dave/partial): unranked (no mean gain" in header


def test_with_model_adds_once_and_refuses_a_fifth():
    assert with_model([], "a/b") == ("a/b",)
    assert with_model(("a/b",), " c/d ") == ("a/b", "c/d")
    assert with_model(("a/b", "c/d"), "a/b") == ("a/b", "c/d")
    full = tuple(f"m/{i}" for i in range(MAX_MODELS))
    assert with_model(full, "m/0") == full  # already in it: nothing to refuse
    with pytest.raises(CompareRejected, match="already has 4 models"):
        with_model(full, "x/y")
    with pytest.raises(CompareRejected, match="Open a model first"):
        with_model(("a/b",), "")
