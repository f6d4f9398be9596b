"""The "Your data" tab in Chromium: a user's CSV ranked by a real scoring worker, bad files refused, shared links.

The world: tiny real BERT checkpoints on a local Hub (``tests.helpers.tiny_models.tiny_family_hub``), a crawled
store whose general board ranks the candidates by probe accuracy (org/cand-1, org/cand-2, org/cand-0), the app
served by uvicorn, and ``python -m scoring work --scorers personal`` as a subprocess (the web process never scores).
"""

from __future__ import annotations

import contextlib
import csv
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from data.crawler import crawl
from data.hub import HubClient
from data.records import PERSONAL_JOB, JobStatus, ModelRef, Score
from data.settings import Settings
from data.store import Store
from data.user_data import Columns, read_upload
from service.personal_submit import submit
from tests.browser.conftest import download_export, open_page, serve_app
from tests.helpers.tiny_models import WORDS, learnable_csv, shared_root, tiny_family_hub

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[2]
BASE = "tiny/bert-base"
PROBE = {"org/cand-0": 0.6, "org/cand-1": 0.8, "org/cand-2": 0.7}  # the general board's order: 1, 2, 0
RANKED = {BASE, "org/cand-1", "org/cand-2"}  # the base and the general top 2
TOP_K = 2
DONE_TIMEOUT_MS = 240_000  # the worker imports torch, then scores three tiny models (seconds each)
SHOTS = ROOT / "out" / "screenshots"


def crawled_store(hub_url: str, folder: Path, **settings) -> tuple[Store, Settings]:
    folder.mkdir(parents=True, exist_ok=True)
    s = Settings(db_path=folder / "lb.db", cache_dir=folder / "cache", hub_endpoint=hub_url, crawl_scorers=(),
                 crawl_backoff_base_s=0.01, crawl_backoff_max_s=0.05, personal_top_k=TOP_K, **settings)
    store = Store(s.db_path)
    crawl(BASE, HubClient(s), store, s)
    store.add_scores([Score(repo_id=c.repo_id, revision=c.sha, scorer="linear_probe", metric="probe_accuracy",
                            value=PROBE[c.repo_id], config_hash="p", base_id=BASE) for c in store.candidates(BASE)])
    return store, s


@contextlib.contextmanager
def scoring_worker(settings: Settings, folder: Path):
    """``python -m scoring work --scorers personal`` on the store, stopped (SIGTERM, then killed) on exit."""
    log = (folder / "worker.log").open("w")
    env = {**os.environ, "HF_ENDPOINT": settings.hub_endpoint, "MRL_DB": str(settings.db_path),
           "MRL_CACHE_DIR": str(settings.cache_dir), "HF_HOME": str(folder / "hf_home")}
    worker = subprocess.Popen([sys.executable, "-m", "scoring", "work", "--scorers", PERSONAL_JOB, "--quiet"],
                              cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        yield worker
    finally:
        worker.send_signal(signal.SIGTERM)
        try:
            worker.wait(timeout=20)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait(timeout=10)
        log.close()


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    with tiny_family_hub(tmp_path_factory.mktemp("personal-hub"), BASE, models=shared_root(tmp_path_factory)) as hub:
        yield hub


@pytest.fixture(scope="module")
def ranking_app(hub, tmp_path_factory):
    """The app and a worker on one store: (url, store, settings, worker log)."""
    tmp = tmp_path_factory.mktemp("personal-app")
    store, settings = crawled_store(hub.url, tmp)
    with scoring_worker(settings, tmp), serve_app(store, settings, tmp, "personal-browser-app") as url:
        yield url, store, settings, tmp / "worker.log"


@pytest.fixture(scope="module")
def strict_app(hub, tmp_path_factory):
    """An app (no worker) whose limits are small: 2 KB and 40 rows per file."""
    tmp = tmp_path_factory.mktemp("personal-strict")
    store, settings = crawled_store(hub.url, tmp, personal_max_bytes=2048, personal_max_rows=40)
    with serve_app(store, settings, tmp, "personal-strict-app") as url:
        yield url, store


def open_tab(page: Page) -> None:
    """The "Your data" tab, once the page has loaded (its load event picks the tab the URL names)."""
    expect(page.locator("#status")).to_contain_text("models ranked")
    page.get_by_role("tab", name="Your data").click()
    expect(page.locator("#personal-submit")).to_be_visible()


def upload(page: Page, path: Path) -> None:
    page.locator("#personal-file input[type=file]").set_input_files(str(path))


def choose(page: Page, elem_id: str, label: str) -> None:
    """Pick an option of a Gradio dropdown by its label."""
    page.locator(f"#{elem_id} input").click()
    page.get_by_role("option", name=label, exact=True).click()
    expect(page.locator(f"#{elem_id} input")).to_have_value(label)


def close_toasts(page: Page) -> None:
    toasts = page.get_by_test_id("toast-body")
    for _ in range(toasts.count()):
        toasts.first.get_by_test_id("toast-close").first.click()
    expect(toasts).to_have_count(0)


def table_models(page: Page):
    return page.locator('#personal-table [role="gridcell"][data-col="1"]')


def wait_until_done(page: Page) -> list[str]:
    """The status texts seen until the ranking is done, in order (each once)."""
    seen: list[str] = []
    deadline = time.monotonic() + DONE_TIMEOUT_MS / 1000
    status = page.locator("#personal-status")
    while time.monotonic() < deadline:
        text = status.inner_text().strip()
        if text and (not seen or seen[-1] != text):
            seen.append(text)
        if text.startswith(("Done", "Failed")):
            return seen
        page.wait_for_timeout(250)
    raise AssertionError(f"the ranking did not end in {DONE_TIMEOUT_MS / 1000:.0f} s; seen: {seen}")


@pytest.mark.slow
def test_an_uploaded_csv_is_ranked_by_the_worker_and_downloads(browser, ranking_app, request, tmp_path):
    url, store, _, worker_log = ranking_app
    data = learnable_csv(tmp_path / "mine.csv")
    with open_page(browser, url, request) as page:
        open_tab(page)
        expect(page.locator("#personal-base input")).to_have_value(BASE)
        upload(page, data)
        expect(page.locator("#personal-message")).to_contain_text("Read 2 columns of mine.csv")
        expect(page.locator("#personal-text-column input")).to_have_value("sentence")
        choose(page, "personal-label-column", "topic")
        page.locator("#personal-top-k input").fill(str(TOP_K))
        page.locator("#personal-submit").click()
        expect(page.locator("#personal-message")).to_contain_text("Queued.")
        share = page.locator("#personal-share")
        expect(share).to_contain_text("?personal=")
        seen = wait_until_done(page)
        assert seen[-1].startswith("Done: 3 of 3 models scored"), (seen, worker_log.read_text()[-3000:])
        assert len(seen) >= 2 and seen[0].startswith(("Queued", "Scoring")), seen  # it changed as it ran
        assert any(re.search(r"[0-2] of 3 models scored", s) for s in seen[:-1]), seen
        expect(table_models(page)).to_have_count(3)
        assert {t.removesuffix(" (base)") for t in table_models(page).all_inner_texts()} == RANKED
        expect(table_models(page).filter(has_text=BASE)).to_have_text(f"{BASE} (base)")
        expect(page.locator("#personal-rule")).to_contain_text("Combined rank: the mean of a model's ranks")
        page.screenshot(path=str(tmp_path / "personal.png"), full_page=True)
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SHOTS / "personal-ranking.png"), full_page=True)

        saved_csv = download_export(page, tmp_path, ".csv", "personal-download-csv")
        rows = list(csv.DictReader(saved_csv.open()))
        assert {r["repo_id"] for r in rows} == RANKED
        assert sorted(int(r["combined_rank"]) for r in rows) == [1, 2, 3]
        saved_json = download_export(page, tmp_path, ".json", "personal-download-json")
        result = json.loads(saved_json.read_text())
        assert {m["repo_id"] for m in result["models"]} == RANKED and result["base_id"] == BASE
        assert all(set(m["estimates"]) == {"cv_probe", "cv_knn", "logme"} for m in result["models"])
    (job,) = store.queue.jobs(scorer=PERSONAL_JOB)
    assert job.status is JobStatus.DONE
    assert store.requests.personal_row_sets() == 0  # the user's rows went with the job


@pytest.mark.slow
def test_the_shared_link_opens_the_finished_ranking_in_a_fresh_page(browser, ranking_app, request, tmp_path):
    url, store, settings, worker_log = ranking_app
    data = read_upload(learnable_csv(tmp_path / "mine.csv", seed=1), Columns(text="sentence", label="topic"))
    queued = submit(store, settings, base_id=BASE, data=data, top_k=TOP_K)
    deadline = time.monotonic() + DONE_TIMEOUT_MS / 1000
    while store.requests.personal(queued.id).status in (JobStatus.PENDING, JobStatus.RUNNING):
        assert time.monotonic() < deadline, worker_log.read_text()[-3000:]
        time.sleep(0.5)
    assert store.requests.personal(queued.id).status is JobStatus.DONE, worker_log.read_text()[-3000:]
    with open_page(browser, url, request) as page:
        page.goto(f"{url}/?personal={queued.id}")
        expect(page.get_by_role("tab", name="Your data")).to_have_attribute("aria-selected", "true")
        expect(page.locator("#personal-status")).to_contain_text("Done: 3 of 3 models scored")
        expect(page.locator("#personal-status")).to_contain_text("60 rows from the file mine.csv")
        expect(page.locator("#personal-share")).to_contain_text(f"?personal={queued.id}")
        expect(table_models(page)).to_have_count(3)
        expect(page.locator("#personal-download-json").get_by_role("link")).to_have_count(1)

        page.goto(f"{url}/?personal={'0' * 32}")
        expect(page.locator("#personal-status")).to_have_text(
            "No ranking at this link. It is unknown, or it has expired: a ranking is kept for 7 days.")
        expect(table_models(page)).to_have_count(0)


def write_bytes(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def bad_files(folder: Path) -> list[tuple[Path, str, str | None]]:
    """(file, the sentence's telling part, a label column to type first, if any)."""
    lines = [f"{WORDS[i]} {WORDS[i + 1]},{'a' if i % 2 else 'b'}" for i in range(12)]
    return [
        (write_bytes(folder / "binary.csv", b"text,label\n\x00\x01\x02\x03,a\n"),
         "The file 'binary.csv' looks like a binary file", None),
        (write_bytes(folder / "latin.csv", "text,label\ncafé crème,a\nthé,b\n".encode("latin-1")),
         "The file 'latin.csv' is not UTF-8 text: byte 14 (line 2) cannot be read", None),
        (write_bytes(folder / "one-class.csv", ("text,label\n" + "\n".join(
            f"{WORDS[i]} word,same" for i in range(6)) + "\n").encode()),
         "The file 'one-class.csv' has 1 distinct label(s) in column 'label' ('same'); at least 2 are needed", None),
        (write_bytes(folder / "lonely.csv", ("text,label\n" + "\n".join(
            f"{WORDS[i]} word,{'lonely' if i == 0 else 'common'}" for i in range(6)) + "\n").encode()),
         "In the file 'lonely.csv', the class(es) 'lonely' have fewer than 2 examples each", None),
        (write_bytes(folder / "no-label.jsonl", "\n".join(
            json.dumps({"text": f"{WORDS[i]} word", "stars": i % 2}) for i in range(6)).encode()),
         "The file 'no-label.jsonl' has no column 'label'; its columns are 'text', 'stars'", "label"),
        (write_bytes(folder / "long.csv", ("text,label\n" + "\n".join(lines * 4) + "\n").encode()),
         "The file 'long.csv' has more than 40 rows; the limit is 40", None),
    ]


REFUSED_ON_UPLOAD = ("binary.csv", "latin.csv", "long.csv")  # the rest are read, then refused


def test_a_file_over_the_size_limit_is_stopped_as_it_uploads_and_nothing_is_kept(browser, strict_app, request,
                                                                                  tmp_path):
    """The page refuses the file before sending it, and Gradio's upload route would cut it off at the limit
    (mount_gradio_app's max_file_size; tests/integration/test_hostile_personal.py posts one): Rank has no file."""
    url, store = strict_app
    lines = [f"{WORDS[i]} {WORDS[i + 1]},{'a' if i % 2 else 'b'}" for i in range(12)]
    large = write_bytes(tmp_path / "large.csv", ("text,label\n" + "\n".join(lines * 20) + "\n").encode())
    with open_page(browser, url, request) as page:
        open_tab(page)
        upload(page, large)
        toast = page.get_by_test_id("toast-body")
        expect(toast.first).to_be_visible()
        expect(toast.first).to_contain_text('File(s) exceed the maximum allowed size of 2.0 Kb: "large.csv"')
        page.locator("#personal-submit").click()
        expect(page.locator("#personal-message")).to_contain_text("Not queued.")
    assert store.queue.jobs(scorer=PERSONAL_JOB) == [] and store.requests.personal_row_sets() == 0


def test_each_bad_file_is_refused_with_its_sentence_and_nothing_is_queued(browser, strict_app, request, tmp_path):
    url, store = strict_app
    with open_page(browser, url, request) as page:
        open_tab(page)
        expect(page.locator("#personal-intro")).to_contain_text("At most 40 rows and 2 KB per file.")
        message = page.locator("#personal-message")
        for path, sentence, label in bad_files(tmp_path):
            page.goto(f"{url}/")  # a fresh form for each file
            open_tab(page)
            upload(page, path)
            if path.name in REFUSED_ON_UPLOAD:
                expect(message).to_contain_text(f"Cannot use this file. {sentence}")
                close_toasts(page)
            else:
                expect(message).to_contain_text(f"Read 2 columns of {path.name}")
                if label:  # a column the file lacks, typed into the picker
                    picker = page.locator("#personal-label-column input")
                    picker.fill(label)
                    picker.press("Enter")
                    expect(picker).to_have_value(label)
            page.locator("#personal-submit").click()
            expect(message).to_contain_text(f"Not queued. {sentence}")
            expect(page.get_by_test_id("toast-body")).to_contain_text(sentence)
            assert page.locator("#personal-message img, #personal-message a").count() == 0
            assert store.queue.jobs(scorer=PERSONAL_JOB) == [] and store.requests.personal_row_sets() == 0, path.name


@pytest.fixture(scope="module")
def offline_app(hub, tmp_path_factory):
    """The app with no Hub (a closed port) and no worker: the base in this machine's cache (fetched once while the
    Hub answered), two of the user's checkpoints in the models folder. (url, store, settings, folder)."""
    tmp = tmp_path_factory.mktemp("personal-offline")
    store, online = crawled_store(hub.url, tmp)
    base = store.get_base(BASE)
    HubClient(online).snapshot(ModelRef(BASE, base.sha))  # the cache holds the base; nothing else
    models = shared_root(tmp_path_factory)
    for name, source in (("first", "cand-0"), ("second", "cand-2")):
        shutil.copytree(models / source, tmp / "models" / name)
    settings = replace(online, hub_endpoint="http://127.0.0.1:9", models_dir=tmp / "models")
    with serve_app(store, settings, tmp, "personal-offline-app") as url:
        yield url, store, settings, tmp


def start_named_worker(page: Page, settings: Settings, folder: Path):
    """The command the status line names, run as the user would beside the app (same store and cache)."""
    command = page.locator("#personal-status code").first.inner_text()
    assert command == "python -m scoring work"
    env = {**os.environ, "HF_ENDPOINT": settings.hub_endpoint, "MRL_DB": str(settings.db_path),
           "MRL_CACHE_DIR": str(settings.cache_dir), "HF_HOME": str(folder / "hf_home")}
    log = (folder / "named-worker.log").open("w")
    args = command.split()
    return subprocess.Popen([sys.executable, *args[1:]], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)


def rank_named(page: Page, data: Path, models: str) -> None:
    upload(page, data)
    expect(page.locator("#personal-message")).to_contain_text("Read 2 columns of")
    choose(page, "personal-label-column", "topic")
    page.locator("#personal-models textarea").fill(models)
    page.locator("#personal-submit").click()
    expect(page.locator("#personal-message")).to_contain_text("Queued.")


@pytest.mark.slow
def test_with_no_hub_the_base_and_two_local_checkpoints_are_ranked_and_an_unreachable_id_is_listed(
        browser, offline_app, request, tmp_path):
    url, store, settings, folder = offline_app
    SHOTS.mkdir(parents=True, exist_ok=True)
    worker = None
    try:
        with open_page(browser, url, request) as page:
            open_tab(page)
            rank_named(page, learnable_csv(tmp_path / "mine.csv"), f"{BASE}\n./first\n./second")
            status = page.locator("#personal-status")
            expect(status).to_contain_text("no scoring worker is running: start one beside the app with")
            page.screenshot(path=str(SHOTS / "personal-offline-queued.png"), full_page=True)
            worker = start_named_worker(page, settings, folder)
            seen = wait_until_done(page)
            assert seen[-1].startswith("Done: 3 of 3 models scored"), (seen, folder / "named-worker.log")
            expect(table_models(page)).to_have_count(3)
            shown = {t.removesuffix(" (base)") for t in table_models(page).all_inner_texts()}
            assert shown == {BASE, "./first", "./second"}
            page.screenshot(path=str(SHOTS / "personal-offline-local-models.png"), full_page=True)

            page.reload()
            open_tab(page)
            rank_named(page, learnable_csv(tmp_path / "again.csv", seed=2),
                       f"{BASE}, ./first, ./second, ghost/unreachable")
            expect(page.locator("#personal-message")).to_contain_text(
                "Cannot be fetched now, so listed without a rank: ghost/unreachable: not in this server's cache, "
                "and the Hub cannot be reached.")
            seen = wait_until_done(page)
            assert seen[-1].startswith("Done: 4 of 4 models scored"), seen
            expect(table_models(page)).to_have_count(4)
            ghost = page.locator('#personal-table [role="row"]').filter(has_text="ghost/unreachable")
            expect(ghost).to_contain_text(re.compile("the Hub cannot be reached and this machine's cache does not "
                                                     "hold it", re.IGNORECASE))
            page.screenshot(path=str(SHOTS / "personal-offline-unreachable-id.png"), full_page=True)
            body = page.locator("body").inner_text()
            assert "Traceback" not in body and str(folder) not in body
    finally:
        if worker is not None:
            worker.send_signal(signal.SIGTERM)
            worker.wait(timeout=30)
    done = [j for j in store.queue.jobs(scorer=PERSONAL_JOB) if j.status is JobStatus.DONE]
    assert len(done) == 2 and store.requests.personal_row_sets() == 0
