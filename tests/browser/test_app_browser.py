"""The app as a user sees it: headless Chromium drives the real Gradio page served by uvicorn.

The store is ``tests.helpers.leaderboard_store`` (known answers): by mean gain the order is alice/strong,
bob/middling, the model named ``<img src=x onerror=alert(1)>``, carol/weak, then dave/partial (unscored on
one target, so no mean gain), under the baseline row of ``org/base``.
"""

from __future__ import annotations

import csv
import io
import json
import re
import shutil
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import CANDIDATE, PICKLE_ONLY, download_export
from tests.helpers.leaderboard_store import BASE, EVIL

pytestmark = pytest.mark.browser

REPO_ROOT = Path(__file__).resolve().parents[2]
SCREENSHOT = REPO_ROOT / "out" / "screenshots" / "leaderboard.png"
BASE_ROW = f"{BASE} (base)"
BY_MEAN_GAIN = [BASE_ROW, "alice/strong", "bob/middling", EVIL, "carol/weak", "dave/partial"]


def model_cells(page: Page):
    """The visible cells of the table's model column (Gradio's virtual list; the sizing table is aria-hidden)."""
    return page.locator('#leaderboard-table [role="gridcell"][data-col="1"]')


def table_row(page: Page, text: str):
    return page.locator('#leaderboard-table [role="row"]').filter(has_text=text)


def text_input(page: Page, elem_id: str):
    return page.locator(f"#{elem_id} textarea, #{elem_id} input").first


def choose(page: Page, elem_id: str, label: str) -> None:
    """Pick an option of a Gradio dropdown by its label."""
    page.locator(f"#{elem_id} input").click()
    page.get_by_role("option", name=label, exact=True).click()


def test_browse_shows_the_ranking_under_its_baseline(page: Page, tmp_path, record_property):
    expect(model_cells(page)).to_have_text(BY_MEAN_GAIN)
    expect(page.locator("#status strong").first).to_have_text("4")
    expect(page.locator("#status")).to_contain_text(
        "4 models ranked, 1 listed unranked (not every target scored: no mean gain), 4 with every target of the "
        "suite (2 targets), 3 beat the base beyond seed noise.")
    expect(table_row(page, "alice/strong").locator('[role="gridcell"][data-col="0"]')).to_have_text("1")
    expect(table_row(page, BASE_ROW).locator('[role="gridcell"][data-col="0"]')).to_have_text("0")
    expect(page.locator("#leaderboard-table").get_by_role("link", name="alice/strong")).to_have_attribute(
        "href", "https://huggingface.co/alice/strong")

    shot = tmp_path / "leaderboard.png"
    page.screenshot(path=str(shot), full_page=True)
    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(shot, SCREENSHOT)  # evidence for a person; the assertions above are on the DOM
    record_property("screenshot", str(SCREENSHOT))
    print(f"screenshot: {SCREENSHOT} (and {shot})")


def test_search_keeps_the_baseline_and_the_matching_model(page: Page):
    search = text_input(page, "search")
    search.fill("carol")
    search.press("Enter")
    expect(model_cells(page)).to_have_text([BASE_ROW, "carol/weak"])
    expect(page.locator("#status")).to_contain_text("Showing 1 of 1 matching models.")

    search.fill("")
    search.press("Enter")
    expect(model_cells(page)).to_have_text(BY_MEAN_GAIN)


def test_filters_hide_unscored_and_below_base_models(page: Page):
    page.get_by_label("fully scored only").check()
    expect(model_cells(page)).to_have_text([BASE_ROW, "alice/strong", "bob/middling", EVIL, "carol/weak"])

    page.get_by_label("hide models below the base").check()
    expect(model_cells(page)).to_have_text([BASE_ROW, "alice/strong", "bob/middling", EVIL])
    expect(page.locator("#status")).to_contain_text("Showing 3 of 3 matching models.")

    page.get_by_label("fully scored only").uncheck()
    page.get_by_label("hide models below the base").uncheck()
    expect(model_cells(page)).to_have_text(BY_MEAN_GAIN)


def test_sort_follows_each_columns_direction(page: Page):
    # free energy: lower is better (1000, 1100, 1200, 1300; highest-first would put carol/weak on top) and
    # dave/partial has none, so it goes last: here that happens to be the mean-gain order
    choose(page, "sort-by", "free energy")
    expect(page.locator("#status")).to_contain_text("Sorted by free energy; rank is by mean gain.")
    expect(model_cells(page)).to_have_text(BY_MEAN_GAIN)

    choose(page, "sort-by", "downloads")  # higher is better: 7000, 500, 50, 5, 1
    expect(page.locator("#status")).to_contain_text("Sorted by downloads")
    expect(model_cells(page)).to_have_text([BASE_ROW, "dave/partial", "alice/strong", "bob/middling", "carol/weak",
                                            EVIL])
    # the rank column still tells the mean-gain rank: none for dave/partial (no mean gain), 1 for alice/strong
    expect(table_row(page, "dave/partial").locator('[role="gridcell"][data-col="0"]')).to_have_text("")
    expect(table_row(page, "alice/strong").locator('[role="gridcell"][data-col="0"]')).to_have_text("1")


def test_a_model_named_like_html_is_shown_as_text(page: Page):
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    cell = table_row(page, EVIL).locator('[role="gridcell"][data-col="1"]')
    expect(cell).to_have_text(EVIL)
    expect(cell.locator("a")).to_have_count(0)  # not a Hub id, so not linked
    assert page.locator('img[src="x"]').count() == 0
    assert page.locator("#leaderboard-table img").count() == 0

    table_row(page, EVIL).locator('[role="gridcell"][data-col="2"]').click()  # its model page too
    expect(page.locator("#model-header")).to_contain_text(f"{EVIL} — rank 3 on {BASE}")
    assert page.locator('img[src="x"]').count() == 0
    assert page.locator("#model-header img").count() == 0
    page.wait_for_timeout(300)  # an injected onerror handler would have fired by now
    assert dialogs == []


def test_clicking_a_row_opens_its_model_page(page: Page):
    table_row(page, "alice/strong").locator('[role="gridcell"][data-col="2"]').click()
    expect(page.get_by_role("tab", name="Model")).to_have_attribute("aria-selected", "true")
    header = page.locator("#model-header")
    expect(header).to_contain_text(f"alice/strong — rank 1 on {BASE}")
    # 3 paired seeds on 2 targets, ±0.2 pts each: the seed variance pooled within targets, df 4
    expect(header).to_contain_text("+6.00 (95% CI +5.77 to +6.23; n = 3 seeds, df = 4)")
    plot = page.locator("#model-gains .js-plotly-plot")
    expect(plot).to_be_visible()
    expect(plot).to_contain_text("Per-target gain over the base: alice/strong")
    expect(plot.locator("g.trace.bars")).to_have_count(1)
    expect(page.locator("#model-input input")).to_have_value("alice/strong")


REJECTED = [
    ("../x", "That is not a Hub model id"),
    ("nobody/nothing", "nobody/nothing was not found on the Hub"),
    (PICKLE_ONLY, f"{PICKLE_ONLY}: the repo has only pickle weights"),
    (BASE, f"{BASE} is a base model"),
]


def test_a_rejected_submission_says_why(page: Page):
    page.get_by_role("tab", name="Submit").click()
    result = page.locator("#submit-result")
    for repo_id, reason in REJECTED:
        text_input(page, "submit-id").fill(repo_id)
        page.locator("#submit-button").click()
        expect(result).to_contain_text(reason)
        expect(result).to_contain_text("Not queued.")
        toast = page.get_by_test_id("toast-body")
        expect(toast).to_contain_text(reason)  # gr.Warning says it too, over the Submit button: close it
        toast.get_by_test_id("toast-close").first.click()
        expect(toast).to_have_count(0)
        expect(page.locator("#jobs-table").get_by_text(repo_id, exact=True)).to_have_count(0)


def test_a_valid_submission_is_queued(page: Page, live_app):
    sha = live_app.hub.sha_of(CANDIDATE)
    page.get_by_role("tab", name="Submit").click()
    text_input(page, "submit-id").fill(CANDIDATE)
    page.locator("#submit-button").click()
    result = page.locator("#submit-result")
    expect(result).to_contain_text(f"Queued {CANDIDATE} at {sha[:8]} for the {BASE} leaderboard")
    expect(result.locator("strong").first).to_have_text(CANDIDATE)
    rows = page.locator('#jobs-table [role="row"]').filter(has_text=CANDIDATE)
    expect(rows).to_have_count(2)
    for scorer in ("linear_probe", "free_energy"):
        expect(rows.filter(has_text=scorer)).to_contain_text("PENDING")
    expect(page.locator("#job-counts")).to_contain_text("pending 2")

    page.locator("#submit-button").click()  # again: nothing new is queued
    expect(result).to_contain_text("is already queued or scored")
    expect(rows).to_have_count(2)


def test_download_the_full_ranking_as_csv(page: Page, tmp_path):
    page.get_by_label("csv").check()
    page.get_by_label("full ranking").check()
    page.get_by_label("hide models below the base").check()  # the full ranking ignores the view's filters
    expect(model_cells(page)).to_have_count(4)
    page.locator("#export").click()
    expect(page.locator("#download-file")).to_contain_text(re.compile(r"org_base-project-full-[0-9a-f]{16}\s*\.csv"))
    saved = download_export(page, tmp_path, ".csv")

    assert saved.suffix == ".csv" and "full" in saved.name
    text = saved.read_text()
    assert text.startswith("base_id,source,rank,repo_id")
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [r["repo_id"] for r in rows] == [BASE, "alice/strong", "bob/middling", EVIL, "carol/weak",
                                            "dave/partial"]
    assert (rows[0]["rank"], rows[0]["is_baseline"]) == ("0", "True")
    assert (rows[1]["rank"], rows[1]["base_id"], rows[1]["source"]) == ("1", BASE, "project")


def _get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def test_json_api_serves_the_same_ranking(live_app):
    query = urllib.parse.urlencode({"base": BASE, "format": "json"})
    status, body = _get(f"{live_app.url}/api/leaderboard?{query}")
    assert status == 200
    document = json.loads(body)
    assert (document["base_id"], document["source"]) == (BASE, "project")
    assert document["columns"][:4] == ["base_id", "source", "rank", "repo_id"]
    assert [r["repo_id"] for r in document["rows"]] == [BASE, "alice/strong", "bob/middling", EVIL, "carol/weak",
                                                       "dave/partial"]
    assert [r["rank"] for r in document["rows"]][:2] == [0, 1]

    status, body = _get(f"{live_app.url}/api/leaderboard?{urllib.parse.urlencode({'base': BASE, 'format': 'xml'})}")
    assert status == 400 and b"format must be one of" in body
    status, _ = _get(f"{live_app.url}/api/leaderboard?{urllib.parse.urlencode({'base': 'nobody/nothing'})}")
    assert status == 404
