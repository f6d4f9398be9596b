"""The leaderboard view: search, filters, sort, display shaping and escaping (no browser)."""

from __future__ import annotations

import pytest

from data.metrics import PROJECT_SOURCE
from ranking.source import load_leaderboard
from tests.helpers.leaderboard_store import BASE, EVIL, build_store
from ui.views import ViewQuery, display_frame, filter_rows, model_link, sort_choices, status_line


@pytest.fixture
def board(tmp_path):
    return load_leaderboard(build_store(tmp_path / "lb.db"), BASE, PROJECT_SOURCE)


def ids(frame):
    return list(frame["repo_id"])


def test_default_order_and_filters(board):
    assert ids(filter_rows(board, ViewQuery())) == ["alice/strong", "bob/middling", EVIL, "carol/weak", "dave/partial"]
    assert ids(filter_rows(board, ViewQuery(search="ALICE"))) == ["alice/strong"]
    assert ids(filter_rows(board, ViewQuery(search="<img"))) == [EVIL]
    assert ids(filter_rows(board, ViewQuery(licenses=("apache-2.0",)))) == ["bob/middling"]
    assert ids(filter_rows(board, ViewQuery(min_downloads=100))) == ["alice/strong", "dave/partial"]
    assert "dave/partial" not in ids(filter_rows(board, ViewQuery(fully_scored_only=True)))
    assert ids(filter_rows(board, ViewQuery(hide_below_base=True))) == ["alice/strong", "bob/middling", EVIL]


def test_sort_by_any_metric_in_its_direction(board):
    assert ids(filter_rows(board, ViewQuery(sort_by="free_energy")))[:4] == ["alice/strong", "bob/middling", EVIL,
                                                                              "carol/weak"]  # lower is better
    assert ids(filter_rows(board, ViewQuery(sort_by="probe_accuracy")))[0] == "dave/partial"
    assert ids(filter_rows(board, ViewQuery(sort_by="downloads")))[0] == "dave/partial"
    assert ids(filter_rows(board, ViewQuery(sort_by="score:trec")))[0] == "alice/strong"


def test_display_keeps_the_baseline_on_top_and_escapes_names(board):
    frame, datatypes = display_frame(board, filter_rows(board, ViewQuery(search="carol")), ViewQuery())
    assert frame.iloc[0]["model"].endswith("(base)") and "carol" in frame.iloc[1]["model"] and len(frame) == 2
    assert datatypes[list(frame.columns).index("model")] == "markdown"
    assert frame.iloc[1]["mean gain"] == pytest.approx(100 * ((0.70 + 0.60) / 2 - 0.79))
    evil, _ = display_frame(board, filter_rows(board, ViewQuery(search="img")), ViewQuery())
    assert "<img" not in evil.iloc[1]["model"] and "&lt;img" in evil.iloc[1]["model"]
    assert model_link("alice/strong") == "[alice/strong](https://huggingface.co/alice/strong)"


def test_beats_base_reads_yes_or_no_and_is_blank_for_the_base(board):
    frame, _ = display_frame(board, filter_rows(board, ViewQuery()), ViewQuery())
    verdicts = dict(zip(frame["model"], frame["beats base"], strict=True))
    assert verdicts[frame.iloc[0]["model"]] == ""  # the base's own row
    assert verdicts[model_link("alice/strong")] == "yes"
    assert verdicts[model_link("carol/weak")] == "no"


def test_column_groups_and_row_limit(board):
    query = ViewQuery(groups=("target gains",), max_rows="100")
    frame, _ = display_frame(board, filter_rows(board, ViewQuery()), query)
    assert list(frame.columns) == ["rank", "model", "Δ sst2", "Δ trec"]
    frame, _ = display_frame(board, filter_rows(board, ViewQuery()), ViewQuery(max_rows="100"))
    assert {"mean gain", "probe", "free energy", "downloads", "license"} <= set(frame.columns)
    assert len(frame) == 6


def test_status_and_sort_choices(board):
    text = status_line(board, filter_rows(board, ViewQuery(search="a")), ViewQuery(search="a"))
    assert "**5** models ranked, **4** with every target" in text and "Showing" in text
    keys = [key for _, key in sort_choices(board)]
    assert {"mean_gain", "free_energy", "probe_accuracy", "score:sst2", "gain:trec", "downloads"} <= set(keys)


def test_whole_number_columns_round_fractional_values_and_keep_gaps():
    # labels_saved is a fitted (fractional) number shown as whole labels; most models have none
    import pandas as pd

    from ranking.columns import column_for
    from ui.views import _display_column

    frame = pd.DataFrame({"labels_saved": [-326.46, float("nan"), 12.7, 3.0]})
    shown = _display_column(frame, column_for("labels_saved"))
    assert str(shown.dtype) == "Int64"
    assert shown.isna().tolist() == [False, True, False, False]
    assert shown.dropna().tolist() == [-326, 13, 3]
