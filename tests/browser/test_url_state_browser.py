"""Links that keep the page's state, in Chromium: after a search, a filter, a sort and a model page the address
bar holds them all (replaced, not pushed: Back leaves the page as before), "Copy link" copies that address, and
opening it in a fresh page restores the exact view.

The store is ``tests.helpers.leaderboard_store``: searching "r" keeps the names with an "r" (alice/strong,
carol/weak, dave/partial and EVIL's ``<img src=x onerror=...>``, not bob/middling); "fully scored only" drops
dave/partial (no trec score); sorted by probe accuracy (higher first): alice (0.70), EVIL (0.50), carol (0.40).
"""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import parse_qs, urlsplit

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import board_app
from tests.helpers.leaderboard_store import BASE, EVIL

pytestmark = pytest.mark.browser

ORDER = [f"{BASE} (base)", "alice/strong", EVIL, "carol/weak"]


@pytest.fixture(scope="module")
def app_url(tmp_path_factory) -> Iterator[str]:
    with board_app(tmp_path_factory, "url-state-app") as url:
        yield url


def shown_models(page: Page):
    return page.locator('#leaderboard-table [role="gridcell"][data-col="1"]')


def params(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


def test_a_copied_link_after_search_filter_sort_and_model_page_reopens_that_view(page: Page, browser, app_url,
                                                                                 request):
    history = page.evaluate("history.length")
    page.locator("#search textarea, #search input").first.fill("r")
    page.locator("#search textarea, #search input").first.press("Enter")
    page.locator("#fully-scored").get_by_label("fully scored only").check()
    page.locator("#sort-by input").click()
    page.get_by_role("option", name="probe", exact=True).click()
    expect(shown_models(page)).to_have_text(ORDER)
    page.wait_for_function("new URLSearchParams(location.search).get('sort') === 'probe_accuracy'")
    shown_models(page).filter(has_text="alice/strong").click()
    expect(page.locator("#model-header")).to_contain_text("alice/strong")
    page.wait_for_function("new URLSearchParams(location.search).get('model') === 'alice/strong'")
    address = page.url
    assert params(address) == {"base": BASE, "source": "project", "q": "r", "fully_scored": "1",
                               "sort": "probe_accuracy", "model": "alice/strong"}
    assert page.evaluate("history.length") == history  # replaced, not pushed
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    page.locator("#copy-link").click()
    expect(page.locator("#copy-link")).to_have_text("Link copied")
    assert page.evaluate("navigator.clipboard.readText()") == address

    reopened = page.context.new_page()
    reopened.goto(address)
    expect(reopened.locator("#model-header")).to_contain_text("alice/strong")  # the model page is open
    expect(reopened.locator("#search textarea, #search input").first).to_have_value("r")
    expect(reopened.locator("#fully-scored").get_by_label("fully scored only")).to_be_checked()
    expect(reopened.locator("#sort-by input")).to_have_value("probe")
    assert reopened.url == address
    reopened.get_by_role("tab", name="Leaderboard").click()
    expect(shown_models(reopened)).to_have_text(ORDER)
    reopened.wait_for_function("!new URLSearchParams(location.search).has('model')")  # the leaderboard's address
    assert params(reopened.url) == {k: v for k, v in params(address).items() if k != "model"}
