"""A live app for the browser tests: the known-answer store, a local Hub, uvicorn on 127.0.0.1, headless Chromium.

The server and the browser are started once per module; every test gets a fresh page. Chromium is Debian's
package (``/usr/bin/chromium``, installed by ``.ci/run``), never ``playwright install``.
"""

from __future__ import annotations

import contextlib
import json
import re
import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from data.local_hub import LocalHub
from data.settings import Settings
from tests.helpers.leaderboard_store import BASE, SIG, build_store

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
CANDIDATE = "eve/tiny-bert"
PICKLE_ONLY = "mallory/pickle-only"
FINETUNE_TAGS = ("transformers", "bert", f"base_model:{BASE}", f"base_model:finetune:{BASE}")
START_TIMEOUT_S = 30
FAILURE_SCREENSHOTS = Path(__file__).resolve().parents[2] / "out" / "screenshots" / "failures"
_CALL_FAILED = pytest.StashKey[bool]()


@dataclass(frozen=True, slots=True)
class LiveApp:
    url: str  # http://127.0.0.1:PORT (no trailing slash)
    hub: LocalHub
    tmp: Path


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_until_serving(url: str, thread: threading.Thread) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if not thread.is_alive():
            raise RuntimeError(f"the app server thread exited before serving {url}")
        try:
            with urllib.request.urlopen(f"{url}/api/leaderboards", timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.1)
    raise RuntimeError(f"the app did not serve {url} within {START_TIMEOUT_S}s")


@contextlib.contextmanager
def serve_app(store, settings: Settings, tmp: Path, name: str = "browser-test-app") -> Iterator[str]:
    """``app.create_server(store, settings)`` under uvicorn on a free 127.0.0.1 port in a thread (Gradio's file
    cache under ``tmp``); yields the URL once it answers, stops the server on exit."""
    import uvicorn

    from app import create_server, server_options

    with pytest.MonkeyPatch.context() as env:
        env.setenv("GRADIO_TEMP_DIR", str(tmp / "gradio"))  # Gradio's file cache (downloads) under tmp
        server = uvicorn.Server(uvicorn.Config(create_server(store, settings), host="127.0.0.1", port=_free_port(),
                                               **server_options(settings)))  # as app.main serves it
        thread = threading.Thread(target=server.run, name=name, daemon=True)
        thread.start()
        try:
            url = f"http://127.0.0.1:{server.config.port}"
            _wait_until_serving(url, thread)
            yield url
        finally:
            server.should_exit = True
            thread.join(timeout=10)


@contextlib.contextmanager
def board_app(tmp_path_factory, name: str, **store_options) -> Iterator[str]:
    """The known-answer store (``tests.helpers.leaderboard_store.build_store(**store_options)``) served in a
    fresh folder ``name``: the app's URL."""
    tmp = tmp_path_factory.mktemp(name)
    settings = Settings(db_path=tmp / "lb.db", cache_dir=tmp / "cache")
    with serve_app(build_store(settings.db_path, **store_options), settings, tmp, name) as url:
        yield url


@contextlib.contextmanager
def chromium_browser():
    """Headless Debian Chromium through Playwright; skips the test when the package is missing."""
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing: install Debian's chromium package (.ci/run does)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture(scope="module")  # per module: test_app_browser queues a submission in its store
def live_app(tmp_path_factory) -> Iterator[LiveApp]:
    """The known-answer store served by ``create_server`` on a free port, its Hub a LocalHub holding
    the base, a valid tiny finetune of it (``CANDIDATE``) and a pickle-only repo (``PICKLE_ONLY``)."""

    from tests.helpers.tiny_models import ARCHITECTURE_FIELDS, shared_root, tiny_checkpoints

    tmp = tmp_path_factory.mktemp("browser-app")
    checkpoints = tiny_checkpoints(shared_root(tmp_path_factory) / "tiny")
    config = json.loads((checkpoints["bert-candidate"] / "config.json").read_text())
    assert {f: config[f] for f in ARCHITECTURE_FIELDS} == {f: getattr(SIG, f) for f in ARCHITECTURE_FIELDS}, (
        "the tiny BERT candidate no longer matches the architecture of the store's base")

    hub = LocalHub()
    hub.add_files_from_dir(BASE, checkpoints["bert-base"], tags=("transformers", "bert", "fill-mask"))
    hub.add_files_from_dir(CANDIDATE, checkpoints["bert-candidate"], tags=FINETUNE_TAGS, downloads=3,
                           card_data={"license": "mit"})
    hub.add_model(PICKLE_ONLY, {"config.json": json.dumps(config).encode(), "pytorch_model.bin": b"\x80\x02}q\x00."},
                  tags=FINETUNE_TAGS)
    with contextlib.ExitStack() as cleanup:
        cleanup.enter_context(hub)  # starts it; stops it last
        settings = Settings(db_path=tmp / "lb.db", cache_dir=tmp / "cache", hub_endpoint=hub.url,
                            crawl_backoff_base_s=0.01, crawl_backoff_max_s=0.05, crawl_max_retries=1)
        url = cleanup.enter_context(serve_app(build_store(settings.db_path), settings, tmp))
        yield LiveApp(url=url, hub=hub, tmp=tmp)


EXPECT_TIMEOUT_MS = 20_000  # expect()'s wait: charts and 1,000-row tables on a busy 2-core machine


@pytest.fixture(autouse=True)
def _patient_expect():
    from playwright.sync_api import expect

    expect.set_options(timeout=EXPECT_TIMEOUT_MS)
    yield


@pytest.fixture(scope="module")  # not per session: Playwright's sync API would then hold an event loop open
def browser():  # through every later test, and a test that starts Playwright itself fails inside it
    with chromium_browser() as browser:
        yield browser


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    report = yield
    if report.when == "call":
        item.stash[_CALL_FAILED] = report.failed
    return report


@contextlib.contextmanager
def open_page(browser, url: str, request, *, timeout_ms: int = 15_000):
    """A fresh browser context and page on the app at ``url``, loaded and showing its leaderboard.

    When the test fails, a full-page screenshot goes to ``out/screenshots/failures/<test>.png``.
    """
    from playwright.sync_api import expect

    context = browser.new_context(accept_downloads=True, viewport={"width": 1400, "height": 1000})
    context.set_default_timeout(timeout_ms)
    page = context.new_page()
    try:
        page.goto(f"{url}/")
        expect(page.locator("#status")).to_contain_text("models ranked")
        yield page
        if request.node.stash.get(_CALL_FAILED, False):
            name = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.name)
            FAILURE_SCREENSHOTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(FAILURE_SCREENSHOTS / f"{name}.png"), full_page=True)
    finally:
        context.close()


def header_lines(page, table: str = "leaderboard-table") -> dict[str, float]:
    """Each header's text height in lines of its own line height (1.0: on one line)."""
    return page.locator(f"#{table} thead th").evaluate_all(
        """ths => Object.fromEntries(ths.map(th => {
            const span = th.querySelector('span.header') || th;
            const style = getComputedStyle(span);
            const line = parseFloat(style.lineHeight) || 1.2 * parseFloat(style.fontSize);
            return [span.textContent.trim(), span.getBoundingClientRect().height / line];
        }))""")


def download_export(page, folder: Path, suffix: str, elem_id: str = "download-file") -> Path:
    """Check the download link in ``#elem_id`` (default: the leaderboard's export, made by ``#export``) ends in
    ``suffix``, click it, save the file in ``folder``."""
    from playwright.sync_api import expect

    link = page.locator(f"#{elem_id}").get_by_role("link")
    expect(link).to_have_attribute("href", re.compile(re.escape(suffix) + "$"))
    with page.expect_download() as download_info:
        link.click()
    saved = folder / download_info.value.suggested_filename
    download_info.value.save_as(saved)
    return saved


@pytest.fixture(scope="module")
def app_url(live_app) -> str:
    """The app a module's ``page`` opens: ``live_app``'s unless the module defines its own ``app_url``."""
    return live_app.url


@pytest.fixture
def page(browser, app_url, request):
    with open_page(browser, app_url, request) as page:
        yield page
