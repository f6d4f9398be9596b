"""A fresh machine: ``python app.py`` on an empty store, seeded from the bundled snapshot, serves its leaderboard.

The app is started as ``app.main`` starts it (``seed_bundles``, then ``create_server``) on a new, empty
database. Every expectation is read from ``data/snapshot/study.json`` itself, so the test holds for whatever
study wrote it.
"""

from __future__ import annotations

import csv
import io
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from playwright.sync_api import Page, expect

from data.settings import Settings
from data.snapshot import DEFAULT_SNAPSHOT, Snapshot, read_snapshot
from data.store import Store
from service.bundles import seed_bundles
from tests.browser.conftest import download_export, open_page, serve_app

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not DEFAULT_SNAPSHOT.exists(),
                       reason=f"no bundled snapshot at {DEFAULT_SNAPSHOT}: `python -m scoring study` writes it"),
]


@dataclass(frozen=True, slots=True)
class SeededApp:
    url: str
    snapshot: Snapshot


@pytest.fixture(scope="module")
def seeded_app(tmp_path_factory) -> Iterator[SeededApp]:
    tmp = tmp_path_factory.mktemp("snapshot-app")
    settings = Settings(db_path=tmp / "fresh.db", cache_dir=tmp / "cache", hub_endpoint="http://127.0.0.1:9",
                        snapshot_path=DEFAULT_SNAPSHOT, published_path=None)
    snapshot = read_snapshot(DEFAULT_SNAPSHOT)
    store = Store(settings.db_path)
    [seed] = seed_bundles(store, settings)
    assert seed.added == (len(snapshot.bases), len(snapshot.candidates), len(snapshot.scores))
    with serve_app(store, settings, tmp, "snapshot-browser-app") as url:
        yield SeededApp(url=url, snapshot=snapshot)


@pytest.fixture
def page(browser, seeded_app, request) -> Iterator[Page]:
    with open_page(browser, seeded_app.url, request, timeout_ms=20_000) as page:
        yield page


def shown_leaderboard(page: Page, snapshot: Snapshot) -> tuple[str, str]:
    """The (base, source) the page opened with; it must be one of the snapshot's bases."""
    base = page.locator("#base input").input_value()
    source = page.locator("#source input:checked").get_attribute("value")
    assert base in {b.repo_id for b in snapshot.bases}, f"the page shows {base!r}, not a base of the snapshot"
    return base, source


def expected_models(snapshot: Snapshot, base: str, source: str) -> set[str]:
    """The models the snapshot scores on that leaderboard (at their candidate's sha, when crawled)."""
    current = {c.repo_id: c.sha for c in snapshot.candidates if c.base_id == base}
    return {s.repo_id for s in snapshot.scores if s.base_id == base and s.source == source and s.repo_id != base
            and current.get(s.repo_id, s.revision) == s.revision}


def model_cells(page: Page):
    return page.locator('#leaderboard-table [role="gridcell"][data-col="1"]')


def ranking_csv(url: str, base: str, source: str) -> list[dict]:
    query = urllib.parse.urlencode({"base": base, "source": source, "format": "csv"})
    with urllib.request.urlopen(f"{url}/api/leaderboard?{query}", timeout=30) as response:
        return list(csv.DictReader(io.StringIO(response.read().decode())))


def test_the_seeded_leaderboard_shows_the_snapshots_models_under_the_baseline(page: Page, seeded_app):
    snapshot = seeded_app.snapshot
    base, source = shown_leaderboard(page, snapshot)
    models = expected_models(snapshot, base, source)
    assert models, f"the snapshot has no {source} scores of candidates of {base}"
    assert any(s.repo_id == base and s.base_id == base and s.source == source for s in snapshot.scores), (
        f"the snapshot has no {source} scores of {base} itself: no baseline")

    expect(page.locator("#status")).to_contain_text(f"{len(models):,} models ranked")
    cells = model_cells(page)
    expect(cells.first).to_have_text(f"{base} (base)")
    if len(models) < 10:  # all of them fit; of more, the virtual list renders those in view
        expect(cells).to_have_count(len(models) + 1)
    shown = cells.all_inner_texts()
    assert len(shown) >= min(len(models) + 1, 5)
    assert set(shown[1:]) <= models, f"rows not in the snapshot: {set(shown[1:]) - models}"

    # a row opens its model page
    first = shown[1]
    page.locator('#leaderboard-table [role="row"]').filter(has_text=first).locator(
        '[role="gridcell"][data-col="2"]').first.click()
    expect(page.locator("#model-header")).to_contain_text(f"{first} — rank")
    expect(page.locator("#model-gains .js-plotly-plot")).to_be_visible()


def test_the_insights_charts_render_the_seeded_data(page: Page, seeded_app):
    base, source = shown_leaderboard(page, seeded_app.snapshot)
    rows = [r for r in ranking_csv(seeded_app.url, base, source) if r["is_baseline"] != "True"]
    with_gain = [r for r in rows if r["mean_gain"]]
    assert with_gain, "no model of the seeded leaderboard has a mean gain: nothing to chart"

    page.get_by_role("tab", name="Insights").click()
    beats = page.locator("#beats-base .js-plotly-plot")
    expect(beats).to_be_visible()
    expect(beats).to_contain_text("Models that beat their base")
    expect(beats.locator("g.trace.bars")).to_have_count(2)
    expect(beats.locator("g.trace.bars").first.locator("path")).not_to_have_count(0)
    heatmap = page.locator("#heatmap .js-plotly-plot")
    expect(heatmap).to_contain_text("Per-target gain over the base")
    if any(r["free_energy"] for r in with_gain):
        scatter = page.locator("#fe-plot .js-plotly-plot g.trace.scatter path.point")
        expect(scatter).to_have_count(sum(1 for r in with_gain if r["free_energy"]))


def test_the_csv_download_holds_the_snapshots_models(page: Page, seeded_app, tmp_path):
    snapshot = seeded_app.snapshot
    base, source = shown_leaderboard(page, snapshot)
    models = expected_models(snapshot, base, source)

    page.get_by_label("csv").check()
    page.get_by_label("full ranking").check()
    page.locator("#export").click()
    saved = download_export(page, tmp_path, ".csv")

    rows = list(csv.DictReader(io.StringIO(saved.read_text())))
    assert (rows[0]["repo_id"], rows[0]["rank"], rows[0]["is_baseline"]) == (base, "0", "True")
    assert sorted(r["repo_id"] for r in rows[1:]) == sorted(models)
    assert {(r["base_id"], r["source"]) for r in rows} == {(base, source)}
    assert [r["repo_id"] for r in ranking_csv(seeded_app.url, base, source)] == [r["repo_id"] for r in rows]
