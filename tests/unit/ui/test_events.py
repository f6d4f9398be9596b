"""The Gradio-facing event handlers, called directly: named values in their outputs' order, no browser."""

import json
from dataclasses import fields
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest

from data.metrics import PROJECT_SOURCE
from tests.helpers.leaderboard_store import BASE, EVIL, SUSPECT, build_store
from ui.board_cache import BoardKey
from ui.events import AppEvents, view_query
from ui.handlers import AppHandlers
from ui.layout import BoardView, CompareView, Filters, InsightsView, ModelView, RestoredView
from ui.views import ViewQuery

BOARD = BoardKey(BASE, PROJECT_SOURCE)


def shown_frame(update: dict) -> pd.DataFrame:
    """The numbers of a table update (its value: headers, data, and the cells' display text)."""
    value = update["value"]
    return pd.DataFrame(value["data"], columns=value["headers"])


def _filters(**values) -> Filters:
    defaults = {"search": "", "licenses": [], "min_downloads": 0, "fully_scored": False, "hide_below": False,
                "groups": None, "sort_by": "mean_gain", "max_rows": "100", "sizes": None, "include_seen": False,
                "include_suspect": False}
    return Filters(**{**defaults, **values})


def loaded(out) -> SimpleNamespace:
    """on_load's outputs by name: (base, *BoardView, *CompareView, tabs, *RestoredView, *ModelView)."""
    n_board, n_compare, n_restored = (len(fields(v)) for v in (BoardView, CompareView, RestoredView))
    at = 1 + n_board
    board, compared = BoardView(*out[1:at]), CompareView(*out[at:at + n_compare])
    at += n_compare
    restored = RestoredView(*out[at + 1:at + 1 + n_restored])
    return SimpleNamespace(base=out[0], board=board, compared=compared, tabs=out[at], restored=restored,
                           model=ModelView(*out[at + 1 + n_restored:]), url=board.page_url)


@pytest.fixture
def events(tmp_path, settings):
    return AppEvents(AppHandlers(build_store(tmp_path / "lb.db"), settings))


def test_empty_filter_values_are_the_default_query():
    assert view_query(Filters(*[None] * len(Filters.__dataclass_fields__))) == ViewQuery()
    query = view_query(_filters(search="ali", licenses=["mit"], min_downloads="10", fully_scored=1, sizes=[]))
    assert (query.search, query.licenses, query.min_downloads, query.fully_scored_only) == ("ali", ("mit",), 10, True)
    assert query.sizes == ()  # no bucket ticked shows no model, unlike no value at all


def test_a_new_board_drops_the_filter_values_it_lacks_and_opens_its_top_model(events):
    board = events.board_change(BOARD, _filters(licenses=["mit", "gpl-3.0"], sort_by="nope"))
    assert board.licenses["value"] == ["mit"] and board.sort_by["value"] == "mean_gain"
    assert board.model["value"] == "alice/strong" and board.compare_pick["value"] == []
    assert board.shown_board == BOARD and board.shown_ids[:2] == [BASE, "alice/strong"]
    assert set(board.shown_ids) == {BASE, "alice/strong", "carol/weak", EVIL}  # the mit-licensed models
    assert len(board.as_list()) == len(BoardView.__dataclass_fields__)
    named = events.board_change(BOARD, _filters(), model="bob/middling", compared=("a/1", "a/2"))
    assert named.model["value"] == "bob/middling" and named.compare_pick["value"] == ["a/1", "a/2"]


def test_the_url_opens_its_comparison(events):
    request = SimpleNamespace(query_params={"base": BASE, "compare": "alice/strong,bob/middling"})
    got = loaded(events.on_load(request, *_filters().as_list()))
    base, board, compared, tabs, url = got.base, got.board, got.compared, got.tabs, got.url
    include_seen, include_suspect = got.restored.include_seen, got.restored.include_suspect
    assert url == "?base=org/base&source=project&compare=alice/strong,bob/middling"
    assert base["value"] == BASE and board.compare_pick["value"] == ["alice/strong", "bob/middling"]
    assert compared.header.startswith("### Comparing 2 models") and tabs.selected == "compare"
    assert include_seen["value"] is False and include_suspect["value"] is False
    plain = loaded(events.on_load(None, *_filters().as_list()))
    assert plain.compared.header == {"__type__": "update"} and plain.tabs.selected == "leaderboard"
    assert plain.model.header == {"__type__": "update"}  # no model page is computed until one is opened


def test_a_filter_change_filters_the_board_on_show_and_a_clicked_row_opens_its_model(events):
    table, status, shown_ids, url = events.on_filters(BOARD, *_filters(search="bob").as_list())
    assert url == "?base=org/base&source=project&q=bob"
    assert shown_ids == [BASE, "bob/middling"] and "Showing 1 of 1 matching models" in status
    assert len(table["value"]["data"]) == 2
    model, tabs = events.on_select(shown_ids, SimpleNamespace(index=[1, 3]))
    assert model["value"] == "bob/middling" and tabs.selected == "model"
    assert events.on_select(shown_ids, SimpleNamespace(index=[9, 0]))[0]["value"] == ""


def test_a_refused_comparison_says_why_and_stays_on_its_tab(events):
    with pytest.warns(UserWarning, match="Pick at least 2 models"):  # gr.Warning, outside a request
        header, _, _, _, tabs = events.on_compare(BOARD, ["alice/strong"])
    assert header.startswith("**Not compared.**") and "at least 2" in header and tabs == {"__type__": "update"}
    pick, *compared, tabs = events.on_add_to_compare(BOARD, [], "alice/strong")
    assert pick["value"] == ["alice/strong"] and tabs == {"__type__": "update"} and len(compared) == 4


def test_the_include_seen_toggle_rebuilds_the_table_its_download_and_what_follows_it(tmp_path, settings):
    """dave/partial's card says it was trained on trec, the one suite target it lacks: zero-shot (the default) its
    mean gain is sst2's, +10.00 points, and it ranks 1st; with the targets it was trained on it has no mean gain."""
    events = AppEvents(AppHandlers(build_store(tmp_path / "lb.db", tags={"dave/partial": ("dataset:trec",)}),
                                   settings))
    zero_shot = events.on_filters(BOARD, *_filters().as_list())
    included = events.on_filters(BOARD, *_filters(include_seen=True).as_list())
    assert zero_shot[2][:2] == [BASE, "dave/partial"] and included[2][:2] == [BASE, "alice/strong"]
    assert shown_frame(zero_shot[0])["mean gain"].tolist()[:2] == [0.0, 10.0]
    assert shown_frame(included[0])["mean gain"].tolist()[:2] == [0.0, 6.0]
    for include_seen in (False, True):
        path = events.on_export(BOARD, "full ranking", "json", *_filters(include_seen=include_seen).as_list())
        assert json.loads(Path(path).read_text())["include_seen"] is include_seen

    header, share, *_ = events.on_model(BOARD, "dave/partial", True)
    assert "unranked (no mean gain" in header and "include_seen=1" in share
    page_and_compare = events.on_include_seen(BOARD, "dave/partial", ["dave/partial", "alice/strong"], False)
    model, compared = ModelView(*page_and_compare[:8]), CompareView(*page_and_compare[8:])
    assert "rank 1 on org/base" in model.header and "dave/partial): rank 1, mean gain +10.00" in compared.header
    assert compared.table["value"]["mean gain"].tolist() == [10.0, 6.0]
    alone = events.on_include_seen(BOARD, "dave/partial", ["dave/partial"], True)  # nothing to compare: left as is
    assert "unranked" in alone[0] and CompareView(*alone[8:]).header == {"__type__": "update"}
    assert [t.x for t in events.on_insights(BOARD, True)[5].data] == [(4,), (3,)]  # beats_base: 3 of 4 models


def test_a_url_with_include_seen_ticks_the_toggle_and_opens_that_board(tmp_path, settings):
    events = AppEvents(AppHandlers(build_store(tmp_path / "lb.db", tags={"dave/partial": ("dataset:trec",)}),
                                   settings))
    request = SimpleNamespace(query_params={"base": BASE, "include_seen": "1",
                                            "compare": "dave/partial,alice/strong"})
    got = loaded(events.on_load(request, *_filters().as_list()))
    board, compared, include_seen = got.board, got.compared, got.restored.include_seen
    assert include_seen["value"] is True and board.model["value"] == "alice/strong"  # the top model of that board
    assert board.shown_ids[:2] == [BASE, "alice/strong"] and "unranked (no mean gain" in compared.header
    plain = loaded(events.on_load(SimpleNamespace(query_params={"base": BASE}), *_filters().as_list()))
    assert plain.restored.include_seen["value"] is False and plain.board.shown_ids[:2] == [BASE, "dave/partial"]


def test_the_include_suspect_toggle_puts_suspect_cells_back_everywhere_the_board_is_read(tmp_path, settings):
    """alice/strong's sst2 is a suspect cell: by default its mean gain is trec's alone, +7.00 points, and the status
    line says what was left out; ticked (or from a URL's include_suspect=1) it is the plain mean, +6.00, in the
    table, the download, the model page and its share link."""
    events = AppEvents(AppHandlers(build_store(tmp_path / "lb.db", suspect=SUSPECT), settings))
    default = events.on_filters(BOARD, *_filters().as_list())
    included = events.on_filters(BOARD, *_filters(include_suspect=True).as_list())
    gains = [dict(zip(t[2], shown_frame(t[0])["mean gain"], strict=False)) for t in (default, included)]
    assert gains[0]["alice/strong"] == pytest.approx(7.0) and gains[1]["alice/strong"] == pytest.approx(6.0)
    assert "leave out 1 suspect imported cells: 1 model" in default[1]
    assert "include 1 suspect imported cells" in included[1]
    for include_suspect in (False, True):
        path = events.on_export(BOARD, "full ranking", "json", *_filters(include_suspect=include_suspect).as_list())
        document = json.loads(Path(path).read_text())
        assert document["include_suspect"] is include_suspect
        alice = next(r for r in document["rows"] if r["repo_id"] == "alice/strong")
        assert alice["n_suspect"] == 1
    header, share, *_ = events.on_model(BOARD, "alice/strong", False, True)
    assert "suspect cells" in header and "counted in the mean gain" in header and "include_suspect=1" in share
    got = loaded(events.on_load(SimpleNamespace(query_params={"base": BASE, "include_suspect": "1"}),
                                *_filters().as_list()))
    assert got.restored.include_suspect["value"] is True and got.restored.include_seen["value"] is False
    assert got.url == f"?base={BASE}&source=project&include_suspect=1"


def test_a_url_restores_the_search_filters_sort_and_rows_and_the_address_follows_each_change(events):
    """The address a view gets (page_url, which the browser's address bar follows) reopens that view: search,
    filters, columns, sort, rows and the model page, on load; a filter change, an opened model page and a
    comparison each give their own address."""
    request = SimpleNamespace(query_params={"base": BASE, "source": "project", "q": "bob", "sort": "probe_accuracy",
                                            "rows": "500", "fully_scored": "1", "model": "bob/middling"})
    got = loaded(events.on_load(request, *_filters().as_list()))
    board, tabs, restored, url = got.board, got.tabs, got.restored, got.url
    assert "bob/middling" in got.model.header  # the URL's model page, computed on load
    assert restored.search["value"] == "bob" and restored.fully_scored["value"] is True
    assert restored.max_rows["value"] == "500" and board.sort_by["value"] == "probe_accuracy"
    assert board.shown_ids == [BASE, "bob/middling"] and tabs.selected == "model"
    assert url == ("?base=org/base&source=project&q=bob&fully_scored=1&sort=probe_accuracy&rows=500"
                   "&model=bob/middling")
    searched = _filters(search="bob", sort_by="probe_accuracy", max_rows="500", fully_scored=True)
    assert events.on_url(BOARD, *searched.as_list()) == url.split("&model=")[0]
    assert events.on_model_url(BOARD, "bob/middling", *searched.as_list()) == url
    both = events.on_compare_url(BOARD, ["alice/strong", "bob/middling"], *_filters().as_list())
    assert both == "?base=org/base&source=project&compare=alice/strong,bob/middling"
    assert events.on_compare_url(BOARD, ["alice/strong"], *_filters().as_list()) == "?base=org/base&source=project"
    tab = SimpleNamespace(value="Model", index=1)
    assert events.on_tab_url(BOARD, "bob/middling", [], *searched.as_list(), evt=tab) == url
    assert events.on_url((None, PROJECT_SOURCE), *_filters().as_list()) == ""


def test_insights_hide_the_panels_a_board_has_no_data_for(events):
    """The helper board has free energies but no source x target study: the free-energy scatter and its sentence
    are shown, the study's report and matrix hidden (on a published board, with no free energy, those hide too:
    tests/browser/test_real_boards_browser.py)."""
    view = InsightsView(*events.on_insights(BOARD))
    assert view.free_energy["visible"] is True and view.free_energy_text["visible"] is True
    assert view.study["visible"] is False and view.study_matrix["visible"] is False
