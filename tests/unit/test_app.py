import subprocess
import sys
from pathlib import Path

from data.store import Store
from tests.helpers.leaderboard_store import build_store

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
