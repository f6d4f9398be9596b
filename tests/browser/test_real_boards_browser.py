"""The bundled real boards at 1,400 px: IBM's published 2023 roberta-base results (1,278 rows) and the offline
study. The store is seeded as ``python app.py`` seeds it (``seed_bundles``: both bundles). Checks that the
widest real table reads well (one-line headers, the model column pinned while it scrolls), that numbers are
rounded to what they mean, and that the model page opens on the board's top model. Screenshots go to
``out/screenshots/`` (evidence; the assertions are on the DOM).
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from data.metrics import PROJECT_SOURCE, PUBLISHED_SOURCE
from data.settings import DEFAULT_PUBLISHED, DEFAULT_SNAPSHOT, Settings
from data.store import Store
from service.bundles import seed_bundles
from tests.browser.conftest import header_lines, open_page, serve_app
from tests.helpers.boards import load_leaderboard
from ui.model_page import top_model

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not (DEFAULT_PUBLISHED.exists() and DEFAULT_SNAPSHOT.exists()),
                       reason="the bundled published results or study snapshot is missing"),
]

ROBERTA = "FacebookAI/roberta-base"
STUDY_BASE = "sentence-transformers/all-MiniLM-L6-v2"
SCREENSHOTS = Path(__file__).resolve().parents[2] / "out" / "screenshots"


@pytest.fixture(scope="module")
def real_app(tmp_path_factory) -> Iterator[tuple[str, Store]]:
    tmp = tmp_path_factory.mktemp("real-boards")
    settings = Settings(db_path=tmp / "real.db", cache_dir=tmp / "cache", hub_endpoint="http://127.0.0.1:9",
                        snapshot_path=DEFAULT_SNAPSHOT, published_path=DEFAULT_PUBLISHED)
    store = Store(settings.db_path)
    assert len(seed_bundles(store, settings)) == 2
    with serve_app(store, settings, tmp, "real-boards-browser-app") as url:
        yield url, store


@pytest.fixture
def page(browser, real_app, request) -> Iterator[Page]:
    with open_page(browser, real_app[0], request, timeout_ms=30_000) as page:  # 1,278 rows on 2 busy cores
        yield page


def screenshot(page: Page, tmp_path: Path, name: str) -> None:
    shot = tmp_path / f"{name}.png"
    page.screenshot(path=str(shot), full_page=True)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(shot, SCREENSHOTS / shot.name)


def test_the_published_board_reads_well_at_1400px(page: Page, tmp_path):
    expect(page.locator("#base input")).to_have_value(ROBERTA)
    expect(page.locator("#status")).to_contain_text("386 models ranked, 892 listed unranked (probe only")
    # the 2023 rows recorded their parameter counts: every roberta-base finetune is 50-150M, none unknown
    expect(page.locator("#size-filter").get_by_label("50–150M (1,278)")).to_be_checked()
    expect(page.locator("#size-filter").get_by_label("unknown (0)")).to_be_checked()
    page.locator("#groups").get_by_label("target gains").check()
    expect(page.locator("#leaderboard-table thead")).to_contain_text("Δ yahoo_answers")
    lines = header_lines(page)
    assert {"rank", "model", "targets", "mean gain", "gain CI high", "beats base", "params", "last modified"} <= set(
        lines)
    assert all(round(n, 2) <= 1.0 for n in lines.values()), f"headers on more than one line: {lines}"

    viewport = page.locator("#leaderboard-table .virtual-table-viewport")
    model_cell = page.locator('#leaderboard-table [role="gridcell"][data-col="1"]').nth(1)
    before = model_cell.bounding_box()["x"]
    viewport.evaluate("v => { v.scrollLeft = v.scrollWidth; }")
    page.wait_for_function("() => { const v = document.querySelector('#leaderboard-table .virtual-table-viewport');"
                           " return v.scrollLeft > 1000; }")
    assert model_cell.bounding_box()["x"] == pytest.approx(before, abs=0.5)
    expect(model_cell).to_be_visible()
    screenshot(page, tmp_path, "published-board-scrolled")


def test_the_model_page_opens_on_the_published_boards_top_model(page: Page, real_app):
    best = top_model(load_leaderboard(real_app[1], ROBERTA, PUBLISHED_SOURCE))
    page.get_by_role("tab", name="Model").click()
    expect(page.locator("#model-header")).to_contain_text(f"{best} — rank 1 on {ROBERTA}")


def test_study_numbers_are_rounded_to_what_they_mean(page: Page, real_app, tmp_path):
    """A row's free-energy status is the board's ("unconverged" when any replicate failed its gate, and then no
    free-energy number); the gain is shown in points, rounded to 2 decimals."""
    board = load_leaderboard(real_app[1], STUDY_BASE, PROJECT_SOURCE)
    best = board.rows[board.rows["mean_gain"].notna()].sort_values("rank").iloc[0]
    page.locator("#base input").click()
    page.get_by_role("option", name=STUDY_BASE, exact=True).click()
    expect(page.locator("#status")).to_contain_text(f"{int(board.rows['rank'].notna().sum())} models ranked")
    expect(page.locator("#leaderboard-table thead")).to_contain_text("free energy status")
    expect(page.get_by_test_id("toast-body")).to_have_count(0)  # the board change raised no error
    row = page.locator('#leaderboard-table [role="row"]').filter(has_text=best["repo_id"])
    headers = page.locator("#leaderboard-table thead th").evaluate_all("ths => ths.map(th => th.title)")
    cell = {label: row.locator(f'[role="gridcell"][data-col="{headers.index(label)}"]')
            for label in ("free energy status", "mean gain")}
    expect(cell["free energy status"]).to_have_text(best["free_energy_status"])  # "unconverged" or empty
    expect(cell["mean gain"]).to_have_text(f"{100 * best['mean_gain']:.2f}")  # a number cell: no sign
    screenshot(page, tmp_path, "study-board-rounded")


def test_the_page_opens_on_the_roberta_published_board_and_every_board_is_one_click_away(page, real_app, tmp_path):
    """A fresh store seeded with both bundles: the largest real board first, with all its rows; a link to each
    board (the study's too); a legacy id in the URL opens its canonical board and says so."""
    url, store = real_app
    expect(page.locator("#base input")).to_have_value(ROBERTA)
    expect(page.locator("#source input:checked")).to_have_attribute("value", PUBLISHED_SOURCE)
    board = load_leaderboard(store, ROBERTA, PUBLISHED_SOURCE)
    ranked = int(board.rows["rank"].notna().sum())
    expect(page.locator("#status")).to_contain_text(f"{ranked:,} models ranked, {len(board.rows) - ranked:,} listed")
    links = page.locator("#board-links a")
    expect(links).to_have_count(7)  # six published bases and the study
    expect(links.first).to_contain_text("1,279 scored")  # 1,278 candidates and the base itself
    study = page.locator("#board-links a", has_text="all-MiniLM")
    expect(study).to_have_attribute("href", f"?base={STUDY_BASE}&source={PROJECT_SOURCE}")
    with page.context.expect_page() as opened:  # Gradio opens Markdown links in a new tab
        study.click()
    tab = opened.value
    expect(tab.locator("#base input")).to_have_value(STUDY_BASE, timeout=30_000)
    expect(tab.locator("#source input:checked")).to_have_attribute("value", PROJECT_SOURCE)
    screenshot(tab, tmp_path, "study-board-by-link")
    tab.close()

    page.goto(f"{url}/?base=roberta-base&source={PUBLISHED_SOURCE}")
    expect(page.locator("#base input")).to_have_value(ROBERTA)
    expect(page.get_by_test_id("toast-body").first).to_contain_text(
        f"roberta-base is {ROBERTA} on the Hub today; using {ROBERTA}.")
    screenshot(page, tmp_path, "legacy-id-in-url")


def test_the_first_data_row_is_above_the_fold_at_1400_by_900_and_empty_filters_are_hidden(browser, real_app,
                                                                                         tmp_path):
    """A 1400 x 900 window shows the published roberta board's first data row (the base's) whole without scrolling;
    the filters whose columns the 2023 file lacks (license, downloads) are hidden and the status line says why."""
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    context.set_default_timeout(30_000)
    page = context.new_page()
    try:
        page.goto(f"{real_app[0]}/")
        first = page.locator('#leaderboard-table [role="row"]').nth(1)
        expect(first).to_contain_text(f"{ROBERTA} (base)")
        box = first.bounding_box()
        assert box is not None and box["y"] + box["height"] <= 900, box
        expect(page.locator("#license")).to_be_hidden()
        expect(page.locator("#min-downloads")).to_be_hidden()
        expect(page.locator("#status")).to_contain_text(
            "Its source records no licenses or download counts: those filters are hidden.")
        screenshot(page, tmp_path, "published-board-above-the-fold")
        page.get_by_role("tab", name="Insights").click()
        expect(page.locator("#probe-plot")).to_be_visible()
        for empty in ("#fe-plot", "#fe-corr", "#study-report", "#study-gain-matrix"):  # no free energy, no study
            expect(page.locator(empty)).to_be_hidden()
    finally:
        context.close()


CLIPPED_LABELS_JS = """plots => plots.map(plot => {
    const svg = plot.querySelector('svg.main-svg').getBoundingClientRect();
    const texts = [...plot.querySelectorAll('g.xtick text, g.ytick text, text.legendtext, text.gtitle, ' +
                                            'g.g-xtitle text, g.g-ytitle text, g.annotation-text-g text')];
    const boxes = texts.filter(t => t.textContent.trim()).map(t => {
        const r = t.getBoundingClientRect();
        const kind = t.classList.contains('legendtext') ? 'legend' : (t.closest('g.xtick') ? 'xtick' : 'other');
        return {text: t.textContent.trim(), kind, left: r.left, right: r.right, top: r.top, bottom: r.bottom};
    });
    const clipped = boxes.filter(b => b.left < svg.left - 1 || b.right > svg.right + 1 ||
                                      b.top < svg.top - 1 || b.bottom > svg.bottom + 1).map(b => b.text);
    const overlaps = [];
    for (const l of boxes.filter(b => b.kind === 'legend'))
        for (const x of boxes.filter(b => b.kind === 'xtick'))
            if (l.left < x.right && x.left < l.right && l.top < x.bottom && x.top < l.bottom)
                overlaps.push(l.text + ' / ' + x.text);
    return {id: plot.closest('[id]').id, labels: boxes.length, clipped, overlaps};
})"""


@pytest.mark.parametrize("base", [ROBERTA, STUDY_BASE])
def test_insights_labels_are_whole_and_clear_of_each_other(page: Page, real_app, base, tmp_path):
    page.goto(f"{real_app[0]}/?base={base}")
    expect(page.locator("#status")).to_contain_text("models ranked", timeout=30_000)
    page.get_by_role("tab", name="Insights").click()
    plots = page.locator("#insights-tab .js-plotly-plot, [id$='-plot'] .js-plotly-plot, #heatmap .js-plotly-plot, "
                         "#beats-base .js-plotly-plot, #study-gain-matrix .js-plotly-plot")
    expect(plots.first).to_be_visible(timeout=30_000)
    page.wait_for_timeout(500)  # plotly lays out its margins after the first paint
    shown = [r for r in plots.evaluate_all(CLIPPED_LABELS_JS) if r["labels"]]
    assert shown, "no chart with labels on the Insights tab"
    for chart in shown:
        assert not chart["clipped"], f"{base}: {chart['id']} cuts labels {chart['clipped'][:5]}"
        assert not chart["overlaps"], f"{base}: {chart['id']}'s legend covers labels {chart['overlaps'][:5]}"
    models = page.locator("#heatmap g.ytick text").all_text_contents()
    assert models and all("/" in m for m in models), models  # whole repo ids, not stubs
    screenshot(page, tmp_path, f"insights-{base.split('/')[-1]}")
