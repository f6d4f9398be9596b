"""A live app for the browser tests: the known-answer store, a local Hub, uvicorn on 127.0.0.1, headless Chromium.

The server and the browser are started once per module; every test gets a fresh page. Chromium is
Debian's package (``/usr/bin/chromium``, installed by ``.ci/run``), never ``playwright install``.
"""

from __future__ import annotations

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


@pytest.fixture(scope="module")
def live_app(tmp_path_factory) -> Iterator[LiveApp]:
    import json

    import uvicorn

    from app import create_server
    from tests.helpers.tiny_models import tiny_checkpoints

    tmp = tmp_path_factory.mktemp("browser-app")
    store = build_store(tmp / "lb.db")
    checkpoints = tiny_checkpoints(tmp_path_factory.getbasetemp() / "tiny-models")
    candidate_config = json.loads((checkpoints["bert-candidate"] / "config.json").read_text())
    signature = {field: candidate_config[field] for field in
                 ("model_type", "hidden_size", "num_hidden_layers", "num_attention_heads", "vocab_size")}
    assert signature == {"model_type": SIG.model_type, "hidden_size": SIG.hidden_size,
                         "num_hidden_layers": SIG.num_hidden_layers, "num_attention_heads": SIG.num_attention_heads,
                         "vocab_size": SIG.vocab_size}, "the tiny candidate no longer matches the store's base"

    hub = LocalHub()
    hub.add_files_from_dir(BASE, checkpoints["bert-base"], tags=("transformers", "bert", "fill-mask"))
    hub.add_files_from_dir(CANDIDATE, checkpoints["bert-candidate"], tags=FINETUNE_TAGS, downloads=3,
                           card_data={"license": "mit"})
    pickle_files = {"config.json": (checkpoints["bert-candidate"] / "config.json").read_bytes(),
                    "pytorch_model.bin": b"not really a pickle"}
    hub.add_model(PICKLE_ONLY, pickle_files, tags=FINETUNE_TAGS)
    hub.start()

    settings = Settings(db_path=tmp / "lb.db", cache_dir=tmp / "cache", hub_endpoint=hub.url,
                        crawl_backoff_base_s=0.01, crawl_backoff_max_s=0.05, crawl_max_retries=1)
    port = _free_port()
    env = pytest.MonkeyPatch()
    env.setenv("GRADIO_TEMP_DIR", str(tmp / "gradio"))  # Gradio's file cache (downloads) under tmp, not /tmp/gradio
    server = uvicorn.Server(uvicorn.Config(create_server(store, settings), host="127.0.0.1", port=port,
                                           log_level="warning"))
    thread = threading.Thread(target=server.run, name="browser-test-app", daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_until_serving(url, thread)
        yield LiveApp(url=url, hub=hub, tmp=tmp)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        hub.stop()
        env.undo()


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing: install Debian's chromium package (.ci/run does)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def page(browser, live_app):
    """A fresh browser context and page on the app, loaded and showing its leaderboard."""
    from playwright.sync_api import expect

    context = browser.new_context(accept_downloads=True, viewport={"width": 1400, "height": 1000})
    context.set_default_timeout(15_000)
    page = context.new_page()
    try:
        page.goto(f"{live_app.url}/")
        expect(page.locator("#status")).to_contain_text("models ranked")
        yield page
    finally:
        context.close()
