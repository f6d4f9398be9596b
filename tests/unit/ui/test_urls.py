"""Shareable page URLs: built from a view, read back from a request's query parameters (no browser)."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest

from ui.urls import MAX_PARAM_CHARS, PageParams, page_params, page_query, parse_flag, parse_ids, share_markdown
from ui.views import ViewQuery


def decoded(query: str) -> dict[str, str]:
    """What a server reads from ``query`` (Starlette decodes it as parse_qs does)."""
    return {k: v[0] for k, v in parse_qs(urlsplit(query).query, keep_blank_values=True).items()}


def test_a_leaderboard_a_model_page_and_a_comparison_have_readable_urls():
    assert page_query("FacebookAI/roberta-base", "published-2023") == (
        "?base=FacebookAI/roberta-base&source=published-2023")
    assert page_query("org/base", "project", model="alice/strong") == "?base=org/base&source=project&model=alice/strong"
    assert page_query("org/base", "project", compare=["a/x", " b/y", "a/x", ""]) == (
        "?base=org/base&source=project&compare=a/x,b/y")


def test_values_are_url_encoded_and_read_back_unchanged():
    evil = "<img src=x onerror=alert(1)>&model=x#frag"
    query = page_query("org/base", "project", model=evil)
    assert query.startswith("?base=org/base&source=project&model=%3Cimg%20src%3Dx")
    assert not any(c in query.split("model=", 1)[1] for c in "<>&#=() ")  # nothing of it escapes the value
    assert page_params(decoded(query)) == PageParams(base="org/base", source="project", model=evil)
    ids = ["a/b c", "d/é"]
    assert page_params(decoded(page_query("org/base", "project", compare=ids))).compare == tuple(ids)


def test_page_params_strip_and_ignore_what_is_not_asked_for():
    assert page_params(None) == PageParams()
    assert page_params({"base": " org/base ", "source": "", "compare": " a , ,b,a ", "other": "x"}) == PageParams(
        base="org/base", compare=("a", "b"))
    assert page_params({"model": "x" * (MAX_PARAM_CHARS + 1)}).model == ""


@pytest.mark.parametrize(("params", "tab"), [
    (PageParams(), "leaderboard"), (PageParams(base="org/base"), "leaderboard"),
    (PageParams(model="a/b"), "model"), (PageParams(model="a/b", compare=("a/b", "c/d")), "compare"),
])
def test_the_tab_a_url_opens(params, tab):
    assert params.tab == tab


def test_parse_ids_takes_text_or_lists():
    assert parse_ids(None) == () and parse_ids("") == () and parse_ids(" , ") == ()
    assert parse_ids("a/b, c/d,a/b") == ("a/b", "c/d")
    assert parse_ids(["c/d", "a/b", "c/d"]) == ("c/d", "a/b")


def test_share_markdown_links_to_the_query_and_shows_it():
    query = page_query("org/base", "project", model="alice/strong")
    assert share_markdown(query, "this model page") == f"**Link to this model page:** [`{query}`]({query})"


def test_include_seen_is_a_shareable_flag():
    assert page_query("org/base", "project", include_seen=True) == "?base=org/base&source=project&include_seen=1"
    assert page_query("org/base", "project", model="a/b", include_seen=True) == (
        "?base=org/base&source=project&include_seen=1&model=a/b")
    assert page_query("org/base", "project", include_seen=False) == "?base=org/base&source=project"
    for value, flag in (("1", True), ("true", True), (" TRUE ", True), ("0", False), ("false", False),
                        ("", False), ("yes", False), ("2", False)):  # what is not a yes is the default, no
        assert page_params({"base": "org/base", "include_seen": value}).include_seen is flag, value
    assert page_params(decoded(page_query("org/base", "project", include_seen=True))) == PageParams(
        base="org/base", source="project", include_seen=True)


@pytest.mark.parametrize(("value", "flag"), [("1", True), ("true", True), ("True", True), ("0", False),
                                             ("false", False), ("", None), ("yes", None), ("2", None), (None, None)])
def test_parse_flag_says_yes_no_or_neither(value, flag):
    assert parse_flag(value) is flag


def test_a_views_search_filters_columns_sort_and_rows_round_trip_through_its_url():
    view = ViewQuery(search="ali ce&x=1", licenses=("mit", "apache-2.0"), min_downloads=10, fully_scored_only=True,
                     hide_below_base=True, groups=("overview", "target gains"), sort_by="probe_accuracy",
                     max_rows="all", sizes=())
    query = page_query("org/base", "project", model="alice/strong", view=view, include_suspect=True)
    assert query.startswith("?base=org/base&source=project&q=ali%20ce%26x%3D1&license=mit,apache-2.0"
                            "&min_downloads=10&fully_scored=1&hide_below=1")
    back = page_params(decoded(query))
    assert back.view == view and back.model == "alice/strong" and back.include_suspect and back.tab == "model"


def test_a_default_view_adds_nothing_and_what_the_page_does_not_offer_is_ignored():
    assert page_query("org/base", "project", view=ViewQuery()) == "?base=org/base&source=project"
    odd = page_params({"min_downloads": "-5", "rows": "7", "columns": "nope", "sizes": "huge", "fully_scored": "x"})
    assert odd.view == ViewQuery()  # each value falls back to its default
    assert page_params({"min_downloads": "nan"}).view.min_downloads == 0
    assert page_params({"sizes": "none"}).view.sizes == ()
