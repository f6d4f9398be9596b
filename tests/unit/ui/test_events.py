"""The Gradio-facing event handlers, called directly: named values in their outputs' order, no browser."""

from types import SimpleNamespace

import pytest

from data.metrics import PROJECT_SOURCE
from tests.helpers.leaderboard_store import BASE, EVIL, build_store
from ui.events import AppEvents, view_query
from ui.handlers import AppHandlers
from ui.layout import BoardView, CompareView, Filters
from ui.views import ViewQuery

BOARD = (BASE, PROJECT_SOURCE)


def _filters(**values) -> Filters:
    defaults = {"search": "", "licenses": [], "min_downloads": 0, "fully_scored": False, "hide_below": False,
                "groups": None, "sort_by": "mean_gain", "max_rows": "500", "sizes": None}
    return Filters(**{**defaults, **values})


@pytest.fixture
def events(tmp_path, settings):
    return AppEvents(AppHandlers(build_store(tmp_path / "lb.db"), settings))


def test_empty_filter_values_are_the_default_query():
    assert view_query(Filters(*[None] * 9)) == ViewQuery()
    query = view_query(_filters(search="ali", licenses=["mit"], min_downloads="10", fully_scored=1, sizes=[]))
    assert (query.search, query.licenses, query.min_downloads, query.fully_scored_only) == ("ali", ("mit",), 10, True)
    assert query.sizes == ()  # no bucket ticked shows no model, unlike no value at all


def test_a_new_board_drops_the_filter_values_it_lacks_and_opens_its_top_model(events):
    board = events.board_change(BASE, PROJECT_SOURCE, _filters(licenses=["mit", "gpl-3.0"], sort_by="nope"))
    assert board.licenses["value"] == ["mit"] and board.sort_by["value"] == "mean_gain"
    assert board.model["value"] == "alice/strong" and board.compare_pick["value"] == []
    assert board.shown_board == BOARD and board.shown_ids[:2] == [BASE, "alice/strong"]
    assert set(board.shown_ids) == {BASE, "alice/strong", "carol/weak", EVIL}  # the mit-licensed models
    assert len(board.as_list()) == len(BoardView.__dataclass_fields__)
    named = events.board_change(BASE, PROJECT_SOURCE, _filters(), model="bob/middling", compared=("a/1", "a/2"))
    assert named.model["value"] == "bob/middling" and named.compare_pick["value"] == ["a/1", "a/2"]


def test_the_url_opens_its_comparison(events):
    request = SimpleNamespace(query_params={"base": BASE, "compare": "alice/strong,bob/middling"})
    out = events.on_load(request, *_filters().as_list())
    base, board, compared, tabs = out[0], BoardView(*out[1:11]), CompareView(*out[11:15]), out[15]
    assert base["value"] == BASE and board.compare_pick["value"] == ["alice/strong", "bob/middling"]
    assert compared.header.startswith("### Comparing 2 models") and tabs.selected == "compare"
    plain = events.on_load(None, *_filters().as_list())
    assert CompareView(*plain[11:15]).header == {"__type__": "update"} and plain[15].selected == "leaderboard"


def test_a_filter_change_filters_the_board_on_show_and_a_clicked_row_opens_its_model(events):
    table, status, shown_ids = events.on_filters(BOARD, *_filters(search="bob").as_list())
    assert shown_ids == [BASE, "bob/middling"] and "Showing 1 of 1 matching models" in status
    assert len(table["value"]) == 2
    model, tabs = events.on_select(shown_ids, SimpleNamespace(index=[1, 3]))
    assert model["value"] == "bob/middling" and tabs.selected == "model"
    assert events.on_select(shown_ids, SimpleNamespace(index=[9, 0]))[0]["value"] == ""


def test_a_refused_comparison_says_why_and_stays_on_its_tab(events):
    with pytest.warns(UserWarning, match="Pick at least 2 models"):  # gr.Warning, outside a request
        header, _, _, _, tabs = events.on_compare(BOARD, ["alice/strong"])
    assert header.startswith("**Not compared.**") and "at least 2" in header and tabs == {"__type__": "update"}
    pick, *compared, tabs = events.on_add_to_compare(BOARD, [], "alice/strong")
    assert pick["value"] == ["alice/strong"] and tabs == {"__type__": "update"} and len(compared) == 4
