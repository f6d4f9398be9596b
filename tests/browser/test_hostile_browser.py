"""Hostile input in the real app, in Chromium: no injected link, image or markup renders (model page, toast,
submit result), Submit serves a second user while the Hub is slow for the first, and a client cannot choose the
address the rate limit counts. Part of the issue-15 catalogue (tests/integration/test_hostile.py has the rest)."""

from __future__ import annotations

import json
import sqlite3
import time
import urllib.error
import urllib.request
from dataclasses import replace

import pytest
from playwright.sync_api import expect

from data.local_hub import FaultPlan, LocalHub
from data.settings import Settings
from tests.browser.conftest import FINETUNE_TAGS, open_page, serve_app
from tests.helpers.leaderboard_store import BASE, build_store

pytestmark = pytest.mark.browser

EVIL = "evil.example"
HOSTILE_LICENSE = (f"[Download](http://{EVIL}/x) ![p](http://{EVIL}/pixel.png) <img src=x onerror=alert(1)> "
                   f"**bold** <b>b</b> http://{EVIL}/auto www.{EVIL}")
HOSTILE_MODEL_TYPE = "<b>bold</b><img src=x onerror=alert(1)>[link](http://evil.example/t)"
SLOW_REPO = "slow/model"
SHOTS = "out/screenshots/hostile"


@pytest.fixture(scope="module")
def hostile_app(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("hostile-app")
    hub = LocalHub()
    config = {"model_type": HOSTILE_MODEL_TYPE, "hidden_size": 32, "num_hidden_layers": 2,
              "num_attention_heads": 2, "vocab_size": 205}
    hub.add_model("evil/markup-config", {"config.json": json.dumps(config).encode(), "model.safetensors": b"x" * 16},
                  tags=FINETUNE_TAGS, parameters=1000)
    hub.add_model(SLOW_REPO, {"config.json": b"{}", "model.safetensors": b"x" * 16}, tags=FINETUNE_TAGS,
                  parameters=1000)
    hub.set_faults(FaultPlan(rate=1.0, kinds=("slow",), slow_s=6.0, only_paths=(f"/api/models/{SLOW_REPO}",)))
    with hub:
        settings = Settings(db_path=tmp / "lb.db", cache_dir=tmp / "cache", hub_endpoint=hub.url,
                            crawl_backoff_base_s=0.01, crawl_backoff_max_s=0.05, submit_timeout_s=5.0)
        store = build_store(settings.db_path)
        candidate = store.get_candidate("alice/strong", BASE)
        store.save_candidates([replace(candidate, license=HOSTILE_LICENSE)], ())
        with serve_app(store, settings, tmp, "hostile-browser-app") as url:
            yield url, store, candidate.repo_id


def test_hub_text_renders_as_text_on_the_model_page(browser, hostile_app, request):
    url, _, repo_id = hostile_app
    fetched = []
    with open_page(browser, url, request) as page:
        page.on("request", lambda r: fetched.append(r.url))
        page.goto(f"{url}/?base={BASE}&source=project&model={repo_id}")
        header = page.locator("#model-header")
        expect(header).to_contain_text("[Download](http://")  # shown as the literal text it is
        page.screenshot(path=f"{SHOTS}-model-page.png", full_page=True)
        links = header.locator(f'a[href*="{EVIL}"]')
        assert links.count() == 0, [links.nth(i).evaluate("e => e.outerHTML") for i in range(links.count())]
        assert header.locator("img").count() == 0 and header.locator("b, strong").count() == 0
        page.wait_for_timeout(300)
    assert not [u for u in fetched if EVIL in u]


def test_hub_text_in_a_table_cell_is_shown_once_escaped_as_the_characters_it_is(browser, hostile_app, request):
    url, _, _ = hostile_app
    with open_page(browser, url, request) as page:
        page.goto(f"{url}/?base={BASE}&source=project")
        table = page.locator("#leaderboard-table")
        expect(table).to_contain_text("<img src=x onerror=alert(1)>")  # the characters, not "&lt;img"
        assert "&lt;" not in table.inner_text()
        assert table.locator("img").count() == 0 and table.locator(f'a[href*="{EVIL}"]').count() == 0


def test_a_refusal_quoting_hub_markup_shows_it_as_text_in_the_toast_and_the_result(browser, hostile_app, request):
    url, _, _ = hostile_app
    with open_page(browser, url, request) as page:
        page.get_by_role("tab", name="Submit").click()
        page.locator("#submit-id textarea, #submit-id input").first.fill("evil/markup-config")
        page.locator("#submit-button").click()
        result = page.locator("#submit-result")
        expect(result).to_contain_text("matches none of the architectures")
        toast = page.get_by_test_id("toast-body")
        expect(toast).to_contain_text("<b>bold</b><img")  # the markup as characters
        page.screenshot(path=f"{SHOTS}-toast.png", full_page=True)
        for where in (toast, result):
            assert where.locator("img").count() == 0 and where.locator("b").count() == 0
            assert where.locator(f'a[href*="{EVIL}"]').count() == 0


def test_a_slow_hub_for_one_submitter_does_not_hold_another(browser, hostile_app, request):
    url, _, _ = hostile_app
    with open_page(browser, url, request) as slow, open_page(browser, url, request) as quick:
        for page in (slow, quick):
            page.get_by_role("tab", name="Submit").click()
        slow.locator("#submit-id textarea, #submit-id input").first.fill(SLOW_REPO)
        slow.locator("#submit-button").click()
        time.sleep(0.5)  # the slow submission is waiting on the Hub
        started = time.monotonic()
        quick.locator("#submit-id textarea, #submit-id input").first.fill("../not-an-id")
        quick.locator("#submit-button").click()
        expect(quick.locator("#submit-result")).to_contain_text("That is not a Hub model id", timeout=10_000)
        answered_s = time.monotonic() - started
        expect(slow.locator("#submit-result")).to_contain_text("did not answer in time", timeout=15_000)
    assert answered_s < 2.0, f"the second submitter waited {answered_s:.1f} s"


def test_a_forged_forwarded_for_header_is_not_the_counted_address(browser, hostile_app, request):
    url, store, _ = hostile_app
    with open_page(browser, url, request) as page:
        page.context.set_extra_http_headers({"X-Forwarded-For": "203.0.113.66"})
        page.reload()
        expect(page.locator("#status")).to_contain_text("models ranked")  # loaded: a tab clicked now stays open
        page.get_by_role("tab", name="Submit").click()
        page.locator("#submit-id textarea, #submit-id input").first.fill("nobody/nothing")
        page.locator("#submit-button").click()
        expect(page.locator("#submit-result")).to_contain_text("was not found on the Hub")
    with sqlite3.connect(store.db_path) as conn:
        submitters = {row[0] for row in conn.execute("SELECT submitter FROM submission_events")}
    assert "203.0.113.66" not in submitters and "127.0.0.1" in submitters


def test_the_api_answers_other_methods_with_405(hostile_app):
    url, _, _ = hostile_app
    for method in ("POST", "PUT", "DELETE"):
        call = urllib.request.Request(f"{url}/api/leaderboard?base={BASE}", method=method)
        with pytest.raises(urllib.error.HTTPError) as answer:
            urllib.request.urlopen(call, timeout=10)
        assert answer.value.code == 405 and answer.value.headers["Allow"] == "GET"
