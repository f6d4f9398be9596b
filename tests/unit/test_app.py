import subprocess
import sys
from pathlib import Path

import pytest

from data.store import Store
from tests.helpers.leaderboard_store import BASE, SUSPECT, TRAINED_ON, build_store

ROOT = Path(__file__).resolve().parents[2]


def test_import_app_does_not_import_torch():
    code = ("import sys, app; assert 'torch' not in sys.modules, 'app imported torch'; "
            "assert 'gradio' not in sys.modules, 'app imported gradio (ui.layout imports it in build_layout only)'")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=False)
    assert result.returncode == 0, result.stderr


def _markdown_values(demo) -> list[str]:
    return [block.value for block in demo.blocks.values() if type(block).__name__ == "Markdown" and block.value]


def test_an_empty_store_gets_the_empty_state(tmp_path, settings):
    import app

    demo = app.build_app(Store(tmp_path / "empty.db"), settings)
    assert any("Nothing to rank yet" in v and "python -m data crawl" in v for v in _markdown_values(demo))


def test_a_filled_store_preselects_its_leaderboard(tmp_path, settings):
    import app

    demo = app.build_app(build_store(tmp_path / "lb.db"), settings)
    assert not any("Nothing to rank yet" in v for v in _markdown_values(demo))
    dropdowns = {b.elem_id: b for b in demo.blocks.values() if getattr(b, "elem_id", None)}
    assert dropdowns["base"].value == "org/base" and dropdowns["source"].value == "project"
    server = app.create_server(build_store(tmp_path / "lb2.db"), settings)
    assert {"/api/leaderboard", "/api/leaderboards"} <= {getattr(r, "path", "") for r in server.routes}


def test_the_pinned_model_column_sticks_right_after_the_fixed_rank_column():
    import app
    from ui.layout import PINNED_TABLES
    from ui.views import RANK_WIDTH_PX

    for table in PINNED_TABLES:
        assert f'{table} .virtual-row > [data-col="0"] {{ position: sticky; left: 0px;' in app.APP_CSS
        assert f'{table} .virtual-row > [data-col="1"] {{ position: sticky; left: {RANK_WIDTH_PX}px;' in app.APP_CSS
        assert f'{table} thead th[data-heading="1"] {{ position: sticky; left: {RANK_WIDTH_PX}px;' in app.APP_CSS


def test_the_api_serves_either_estimand_and_refuses_other_include_seen_values(tmp_path, settings):
    """alice/strong was trained on sst2: by default its mean gain is trec's, 0.80 - 0.73 = 0.07; include_seen=1
    gives the mean over both targets, (0.05 + 0.07) / 2 = 0.06."""
    from fastapi.testclient import TestClient

    import app

    client = TestClient(app.create_server(build_store(tmp_path / "lb.db", tags=TRAINED_ON), settings))

    def alice(**params) -> tuple[bool, float, int]:
        response = client.get("/api/leaderboard", params={"base": BASE, **params})
        assert response.status_code == 200, response.text
        doc = response.json()
        row = {r["repo_id"]: r for r in doc["rows"]}["alice/strong"]
        return doc["include_seen"], row["mean_gain"], row["n_seen"]

    assert alice() == (False, pytest.approx(0.07), 1)
    for value, included in (("1", True), ("true", True), ("TRUE", True), ("0", False), ("false", False)):
        flag, gain, _ = alice(include_seen=value)
        assert (flag, gain) == (included, pytest.approx(0.06 if included else 0.07)), value
    csv_top = client.get("/api/leaderboard", params={"base": BASE, "format": "csv", "limit": 1, "include_seen": 1})
    assert csv_top.status_code == 200 and len(csv_top.text.splitlines()) == 3
    assert abs(float(csv_top.text.splitlines()[2].split(",")[5]) - 0.06) < 1e-9  # the top model's mean gain
    for bad in ("yes", "2", "", "on"):
        response = client.get("/api/leaderboard", params={"base": BASE, "include_seen": bad})
        assert response.status_code == 400, bad
        assert response.json()["detail"].startswith("include_seen must be 1, true, 0 or false"), bad



def test_the_api_puts_suspect_cells_back_with_include_suspect(tmp_path, settings):
    """alice/strong's sst2 is a suspect cell: by default its mean gain is trec's, 0.07; include_suspect=1 gives the
    mean over both, 0.06; another value is refused with its sentence."""
    from fastapi.testclient import TestClient

    import app

    client = TestClient(app.create_server(build_store(tmp_path / "lb.db", suspect=SUSPECT), settings))
    for params, expected in (({}, (False, 0.07)), ({"include_suspect": "1"}, (True, 0.06))):
        doc = client.get("/api/leaderboard", params={"base": BASE, **params}).json()
        row = {r["repo_id"]: r for r in doc["rows"]}["alice/strong"]
        assert (doc["include_suspect"], row["mean_gain"], row["n_suspect"]) == (
            expected[0], pytest.approx(expected[1]), 1)
    response = client.get("/api/leaderboard", params={"base": BASE, "include_suspect": "maybe"})
    assert response.status_code == 400 and response.json()["detail"].startswith("include_suspect must be 1, true")
