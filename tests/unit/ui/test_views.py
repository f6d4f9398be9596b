"""The leaderboard view: search, filters, sort, display shaping and escaping (no browser)."""

from __future__ import annotations

import pandas as pd
import pytest

from data.metrics import PROJECT_SOURCE
from tests.helpers.boards import load_leaderboard
from tests.helpers.leaderboard_store import BASE, EVIL, build_store
from ui.views import (
    ViewQuery,
    display_frame,
    filter_rows,
    model_link,
    shape_rows,
    sort_choices,
    status_line,
    table_value,
)


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
    listed = "**4** models ranked, **1** listed unranked (not every target scored: no mean gain), **4** with every"
    assert listed in text and "Showing" in text  # dave/partial: listed, not ranked
    keys = [key for _, key in sort_choices(board)]
    assert {"mean_gain", "free_energy", "probe_accuracy", "gain:sst2", "gain:trec", "downloads"} <= set(keys)
    assert keys[0] == "mean_gain" and not any(k.startswith("score:") for k in keys)  # a score sorts as its gain
    assert keys.index("free_energy") < keys.index("gain:sst2")  # the board's columns before the per-target ones


def test_a_filter_or_sort_whose_column_is_empty_on_the_board_is_hidden_and_the_status_says_why(board):
    import dataclasses

    from ui.views import empty_filters, hidden_filters_note

    assert empty_filters(board) == {} and hidden_filters_note(board) == ""  # licenses, downloads and sizes
    bare = dataclasses.replace(board, rows=board.rows.assign(license=None, downloads=float("nan"),
                                                             num_params=float("nan")))
    off = empty_filters(bare)
    assert set(off) == {"licenses", "min_downloads", "sizes"}
    assert hidden_filters_note(bare) == ("Its source records no licenses, download counts or parameter counts: "
                                         "those filters are hidden.")
    assert "Its source records no licenses" in status_line(bare, bare.rows, ViewQuery())
    assert "downloads" not in [key for _, key in sort_choices(bare)]  # sorting by it would do nothing


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


@pytest.mark.parametrize(("num_params", "bucket"), [
    (0, "< 50M"), (49_999_999, "< 50M"), (50_000_000, "50–150M"), (124_647_170, "50–150M"),
    (150_000_000, "150–500M"), (499_999_999, "150–500M"), (500_000_000, "> 500M"), (7e9, "> 500M"),
    (None, "unknown"), (float("nan"), "unknown"), ("n/a", "unknown"), (-1, "unknown"),
])
def test_size_bucket_edges(num_params, bucket):
    from ui.views import size_bucket

    assert size_bucket(num_params) == bucket


def test_size_filter_keeps_every_model_by_default_and_unknown_sizes_on_their_own_choice(board):
    from ui.views import SIZE_CHOICES, size_buckets, size_choices

    every = ids(filter_rows(board, ViewQuery()))
    assert ViewQuery().sizes == SIZE_CHOICES and len(every) == 5  # the default hides nobody, unknown included
    assert dict(zip(board.rows["repo_id"], size_buckets(board.rows), strict=True)) == {
        "alice/strong": "50–150M", "bob/middling": "< 50M", "carol/weak": "150–500M", EVIL: "> 500M",
        "dave/partial": "unknown"}
    assert ids(filter_rows(board, ViewQuery(sizes=("< 50M", "50–150M")))) == ["alice/strong", "bob/middling"]
    assert ids(filter_rows(board, ViewQuery(sizes=("unknown",)))) == ["dave/partial"]
    assert "dave/partial" not in ids(filter_rows(board, ViewQuery(sizes=SIZE_CHOICES[:-1])))
    assert ids(filter_rows(board, ViewQuery(sizes=()))) == []  # nothing ticked: nothing shown, said by the status
    assert ids(filter_rows(board, ViewQuery(sizes=("> 500M",), search="img"))) == [EVIL]
    assert size_choices(board) == [("< 50M (1)", "< 50M"), ("50–150M (1)", "50–150M"), ("150–500M (1)", "150–500M"),
                                   ("> 500M (1)", "> 500M"), ("unknown (1)", "unknown")]
    assert size_choices(None)[-1] == ("unknown (0)", "unknown")


def test_a_leaderboard_without_parameter_counts_is_all_unknown():
    import pandas as pd

    from ui.views import size_buckets

    assert size_buckets(pd.DataFrame({"repo_id": ["a", "b"]})).tolist() == ["unknown", "unknown"]
    counts = pd.DataFrame({"num_params": pd.array([None, 10, 200_000_000], dtype="Int64")})
    assert size_buckets(counts).tolist() == ["unknown", "< 50M", "150–500M"]


def test_numbers_are_rounded_to_what_they_mean_and_exports_keep_full_precision(board):
    import pandas as pd

    from ranking.columns import column_for
    from ui.views import _display_column

    frame = pd.DataFrame({"free_energy": [330.336585], "llc_mean": [64.129316], "llc_std": [5.525709],
                          "init_loss": [0.149838], "mean_gain": [0.012345], "downloads": [1234.0]})
    shown = {key: _display_column(frame, column_for(key)).iloc[0] for key in frame.columns}
    assert shown == {"free_energy": 330.3, "llc_mean": 64.13, "llc_std": 5.53, "init_loss": 0.15,
                     "mean_gain": 1.23, "downloads": 1234}
    assert shown["init_loss"] == pytest.approx(0.150)  # three decimals: 0.149838 -> 0.15(0)
    table, _ = display_frame(board, filter_rows(board, ViewQuery()), ViewQuery(groups=("overview", "free energy")))
    assert table["free energy"].dropna().tolist() == [1000.0, 1100.0, 1200.0, 1300.0]
    assert board.rows["free_energy"].dropna().tolist() == [1000.0, 1100.0, 1200.0, 1300.0]  # the board is untouched


def test_column_widths_fit_headers_on_one_line_and_cap_long_model_names(board):
    from ui.views import CELL_PAD_PX, CHAR_PX, MODEL_MAX_CHARS, RANK_WIDTH_PX, column_widths, visible_text

    frame, _ = display_frame(board, filter_rows(board, ViewQuery()), ViewQuery())
    widths = dict(zip(frame.columns, column_widths(frame), strict=True))
    assert widths["rank"] == f"{RANK_WIDTH_PX}px"  # fixed: the pinned model column sits right after it
    px = {label: int(w.removesuffix("px")) for label, w in widths.items()}
    for label in ("targets", "downloads", "likes", "mean gain", "gain CI high", "beats base"):
        assert px[label] >= round(len(label) * CHAR_PX + CELL_PAD_PX), label
    longest = max(len(visible_text(m)) for m in frame["model"])  # "org/base (base)" and the escaped <img ...>
    assert longest == len(EVIL) and px["model"] == round(longest * CHAR_PX + CELL_PAD_PX)
    import pandas as pd

    long_names = pd.DataFrame({"rank": [1], "model": [model_link("a/" + "x" * 90)]})
    assert column_widths(long_names)[1] == f"{round(MODEL_MAX_CHARS * CHAR_PX + CELL_PAD_PX)}px"
    assert column_widths(pd.DataFrame()) == []


def test_visible_text_is_what_a_model_cell_shows():
    from ui.views import escape_markdown, visible_text

    assert visible_text(model_link("alice/strong") + " (base)") == "alice/strong (base)"
    assert visible_text(model_link(EVIL)) == EVIL
    assert visible_text(escape_markdown("a_b*c [d]")) == "a_b*c [d]"


def test_number_chars_counts_sign_digits_and_the_decimals_used():
    import pandas as pd

    from ui.views import number_chars

    frame = pd.DataFrame({"gain": [2.5, -14.0, 78.72], "fe": [1000.0, 1300.0, None], "llc": [330.3, 1150.2, 0.5],
                          "params": pd.array([124_647_170, None, 3], dtype="Int64"), "none": [float("nan")] * 3,
                          "loss": [0.15, 0.001, 0.5]})
    assert number_chars(frame) == [6, 4, 6, 9, 0, 5]  # -14.00 / 78.72, 1300, 1150.2, 124647170, -, 0.001
    assert number_chars(frame.iloc[:0]) == [0] * 6


def test_the_table_shows_each_number_at_its_columns_decimals_with_trailing_zeros():
    frame = pd.DataFrame({"model": ["[a](x)", "b"], "mean gain": [2.5, 2.4166], "rank": pd.array([1, None],
                                                                                              dtype="Int64")})
    frame.attrs["decimals"] = {"mean gain": 2, "rank": 0}
    value = table_value(frame)
    assert value["headers"] == ["model", "mean gain", "rank"]
    assert value["data"] == [["[a](x)", 2.5, 1], ["b", 2.4166, None]]  # numbers stay numbers: the grid sorts them
    assert value["metadata"]["display_value"] == [["[a](x)", "2.50", "1"], ["b", "2.42", ""]]
    shaped, _ = shape_rows(pd.DataFrame({"repo_id": ["m/a"], "is_baseline": [False], "mean_gain": [0.025]}),
                           ("overview",))
    assert shaped.attrs["decimals"]["mean gain"] == 2 and table_value(shaped)["metadata"]["display_value"][0][
        list(shaped.columns).index("mean gain")] == "2.50"
