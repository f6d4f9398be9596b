"""The "Include the targets a model was trained on" toggle in Chromium: ticking it shows, downloads and opens on
the model page the mean gain over every suite target; unticking it goes back to the zero-shot one.

The store is ``tests.helpers.leaderboard_store`` with alice/strong's card saying it was trained on sst2
(``TRAINED_ON``), one of the suite's two targets (sst2, trec). By hand, against the base's means (sst2 0.85, trec
0.73): alice gains +5.00 points on sst2 (0.90) and +7.00 on trec (0.80). Zero-shot (the default) its mean gain is
trec's alone, +7.00, 95% interval ± t_2 · 0.2 / √3 = ± 0.50 points (6.50 to 7.50); with sst2 included it is
(5.00 + 7.00) / 2 = +6.00 (5.50 to 6.50). The other models were trained on no suite target: their gains stay.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import board_app, download_export
from tests.helpers.leaderboard_store import BASE, EVIL, TRAINED_ON
from ui.urls import page_query

pytestmark = pytest.mark.browser

LABEL = "Include the targets a model was trained on"
BASE_ROW = f"{BASE} (base)"
ORDER = [BASE_ROW, "alice/strong", "bob/middling", EVIL, "carol/weak", "dave/partial"]  # either way
MEAN_GAIN, CI_LOW, CI_HIGH = 2, 3, 4  # columns of the table (rank, model, then these)


@pytest.fixture(scope="module")
def app_url(tmp_path_factory) -> Iterator[str]:
    with board_app(tmp_path_factory, "include-seen-app", tags=TRAINED_ON) as url:
        yield url


def toggle(page: Page):
    return page.locator("#include-seen").get_by_label(LABEL)


def cell(page: Page, model: str, col: int):
    row = page.locator('#leaderboard-table [role="row"]').filter(has_text=model)
    return row.locator(f'[role="gridcell"][data-col="{col}"]')


def expect_alice(page: Page, gain: str, low: str, high: str) -> None:
    for col, text in ((MEAN_GAIN, gain), (CI_LOW, low), (CI_HIGH, high)):
        expect(cell(page, "alice/strong", col)).to_have_text(text)
    expect(cell(page, "bob/middling", MEAN_GAIN)).to_have_text("1.00")  # (0.86 - 0.85 + 0.74 - 0.73) / 2: decimals kept
    expect(page.locator('#leaderboard-table [role="gridcell"][data-col="1"]')).to_have_text(ORDER)


def downloaded_alice(page: Page, folder) -> float:
    """The mean gain of alice/strong in the CSV of the current view (a fraction)."""
    page.locator("#export").click()
    saved = download_export(page, folder, ".csv")
    rows = {r["repo_id"]: r for r in csv.DictReader(io.StringIO(saved.read_text()))}
    saved.unlink()
    return float(rows["alice/strong"]["mean_gain"])


def test_ticking_the_toggle_includes_the_trained_on_target_and_unticking_leaves_it_out(page: Page, tmp_path):
    expect(toggle(page)).not_to_be_checked()
    expect_alice(page, "7.00", "6.50", "7.50")  # zero-shot: trec alone
    expect(page.locator("#status")).to_contain_text(
        "Mean gains leave out the suite targets a model was trained on (1 model).")
    assert downloaded_alice(page, tmp_path) == pytest.approx(0.07)

    toggle(page).check()
    expect_alice(page, "6.00", "5.77", "6.23")  # sst2 and trec: seed variance pooled over both, df 4
    expect(page.locator("#status")).to_contain_text("Mean gains include the targets a model was trained on.")
    assert downloaded_alice(page, tmp_path) == pytest.approx(0.06)  # the download is the board shown
    page.get_by_role("tab", name="Model").click()
    header = page.locator("#model-header")
    expect(header).to_contain_text("alice/strong — rank 1 on org/base")
    expect(header).to_contain_text("+6.00 (95% CI +5.77 to +6.23; n = 3 seeds, df = 4)")
    expect(page.locator("#model-share a")).to_have_attribute(
        "href", page_query(BASE, "project", model="alice/strong", include_seen=True))

    page.get_by_role("tab", name="Leaderboard").click()
    toggle(page).uncheck()
    expect_alice(page, "7.00", "6.50", "7.50")
    assert downloaded_alice(page, tmp_path) == pytest.approx(0.07)
    page.get_by_role("tab", name="Model").click()
    expect(header).to_contain_text("+7.00 (95% CI +6.50 to +7.50; n = 3 seeds, df = 2)")
    expect(header).to_contain_text("suite targets trained on (left out of the mean gain)")
    page.screenshot(path=str(tmp_path / "include-seen.png"), full_page=True)


def test_a_url_with_include_seen_1_opens_the_board_with_the_toggle_ticked(page: Page, app_url):
    page.goto(f"{app_url}/{page_query(BASE, 'project', include_seen=True)}")
    expect(toggle(page)).to_be_checked()
    expect_alice(page, "6.00", "5.77", "6.23")
    page.goto(f"{app_url}/{page_query(BASE, 'project')}")  # the plain URL: the zero-shot board again
    expect(toggle(page)).not_to_be_checked()
    expect_alice(page, "7.00", "6.50", "7.50")
