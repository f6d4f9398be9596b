"""Hostile input cannot stop, slow or poison the service: each attack of issue 15 as a case, against the real
Hub client, a local Hub on 127.0.0.1 and a real store file. Nothing already stored is lost in any case."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sqlite3
import struct
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from data.__main__ import main as data_main
from data.crawler import crawl
from data.errors import StoreBusy, StoreFull, SubmissionRejected
from data.hub import HubClient
from data.local_hub import LocalHub
from data.records import CandidateStatus, SkipReason
from data.settings import Settings
from data.store import Store
from data.submissions import submit
from tests.helpers.hub_population import BASE_ID, MAX_PARAMS, ROBERTA, WEIGHTS, add_base, add_shape, shape_named
from ui.board_cache import BoardKey

ROOT = Path(__file__).resolve().parents[2]
TAGS = shape_named("tagged").tags
N_GOOD = 20
DEEP_CONFIG = b"[" * 100_000 + b"]" * 100_000
BIG_CONFIG = json.dumps({**ROBERTA, "padding": "x" * 50_000_000}).encode()  # 50 MB
CLIENT_REJECTED_IDS = ("evil/=1+1", "evil/rоberta-і", "evil/" + "a" * 200)  # Cyrillic о and і in the second


def safetensors_with(n_params: int) -> bytes:
    """A real safetensors header for one F32 tensor of ``n_params`` values (the data bytes are not needed)."""
    header = json.dumps({"w": {"dtype": "F32", "shape": [n_params], "data_offsets": [0, 4 * n_params]}}).encode()
    return struct.pack("<Q", len(header)) + header


def add_model(hub: LocalHub, repo_id: str, config: bytes | dict | None, *, parameters: int | None = 124_647_170,
              weights: bytes = WEIGHTS, extra: dict | None = None) -> None:
    files = {"model.safetensors": weights, **(extra or {})}
    if config is not None:
        files["config.json"] = config if isinstance(config, bytes) else json.dumps(config).encode()
    hub.add_model(repo_id, files=files, tags=TAGS, parameters=parameters, downloads=1)


# repo id -> the verdict a crawl must give it (None: reported as failed, not stored)
HOSTILE: dict[str, SkipReason | None] = {
    "evil/deep-config": SkipReason.INVALID_CONFIG,
    "evil/50mb-config": SkipReason.INVALID_CONFIG,
    "evil/trust-remote-code": SkipReason.REMOTE_CODE,
    "evil/quantization-config": SkipReason.QUANTIZED,
    "evil/untagged-adapter": SkipReason.ADAPTER,
    "evil/no-size-anywhere": SkipReason.UNKNOWN_SIZE,
    "evil/oversize-by-header": SkipReason.TOO_LARGE,
    **dict.fromkeys(CLIENT_REJECTED_IDS),
}
SIZED_BY_HEADER = {"evil/negative-size": 1234, "evil/no-listed-size": 4321}  # candidates, size from the header


@pytest.fixture(scope="module")
def hub():
    hub = LocalHub()
    add_base(hub)
    for i in range(N_GOOD):
        add_shape(hub, shape_named("tagged"), f"good/model-{i:02d}", downloads=100 + i)
    add_model(hub, "evil/deep-config", DEEP_CONFIG)
    add_model(hub, "evil/50mb-config", BIG_CONFIG)
    add_model(hub, "evil/trust-remote-code", {**ROBERTA, "trust_remote_code": True})
    add_model(hub, "evil/quantization-config", {**ROBERTA, "quantization_config": {"quant_method": "gptq"}})
    add_model(hub, "evil/untagged-adapter", ROBERTA, extra={"adapter_config.json": b"{}"})
    add_model(hub, "evil/no-size-anywhere", ROBERTA, parameters=None)  # the placeholder header counts nothing
    add_model(hub, "evil/oversize-by-header", ROBERTA, parameters=None, weights=safetensors_with(MAX_PARAMS + 1))
    add_model(hub, "evil/negative-size", ROBERTA, parameters=-5, weights=safetensors_with(1234))
    add_model(hub, "evil/no-listed-size", ROBERTA, parameters=0, weights=safetensors_with(4321))
    for repo_id in CLIENT_REJECTED_IDS:
        add_model(hub, repo_id, ROBERTA)
    with hub:
        yield hub


@pytest.fixture
def hub_settings(settings, hub, tmp_path):
    return replace(settings, hub_endpoint=hub.url, db_path=tmp_path / "hostile.db", crawl_max_retries=1,
                   max_params=MAX_PARAMS)


def verdicts(store: Store) -> dict[str, SkipReason | None]:
    return {c.repo_id: c.skip_reason for c in store.candidates(BASE_ID)}


def test_a_crawl_stores_every_other_model_and_reports_the_hostile_ones(hub, hub_settings):
    store = Store(hub_settings.db_path)
    report = crawl(BASE_ID, HubClient(hub_settings), store, hub_settings)

    stored = verdicts(store)
    assert {f"good/model-{i:02d}" for i in range(N_GOOD)} <= {r for r, skip in stored.items() if skip is None}
    for repo_id, reason in HOSTILE.items():
        if reason is None:
            assert repo_id not in stored and "not a valid Hub id" in report.failed[repo_id]
        else:
            assert stored[repo_id] is reason, repo_id
    assert set(report.failed) == set(CLIENT_REJECTED_IDS)
    sized = {c.repo_id: c.num_params for c in store.candidates(BASE_ID, CandidateStatus.OK)}
    assert {r: sized[r] for r in SIZED_BY_HEADER} == SIZED_BY_HEADER
    # the 50 MB config was never read whole: at most the client's cap went over the wire
    assert f"failed {len(CLIENT_REJECTED_IDS)}" in report.summary()


def test_the_crawl_command_exits_1_and_names_each_failure(hub, hub_settings, capsys):
    code = data_main(["crawl", "--base", BASE_ID, "--db", str(hub_settings.db_path), "--endpoint", hub.url,
                      "--quiet"])
    out, err = capsys.readouterr()
    assert code == 1 and f"failed {len(CLIENT_REJECTED_IDS)}" in out
    assert all(f"failed: {repo_id}:" in err for repo_id in CLIENT_REJECTED_IDS)
    assert "Traceback" not in err


@pytest.mark.parametrize(("repo_id", "sentence"), [
    ("evil/deep-config", "config.json is not a valid model config"),
    ("evil/50mb-config", "config.json is too large to be a model config"),
    ("evil/trust-remote-code", "needs custom code"),
    ("evil/quantization-config", "the model is quantized"),
    ("evil/untagged-adapter", "the model is an adapter"),
    ("evil/no-size-anywhere", "its parameter count is neither in the Hub's metadata nor readable"),
    ("evil/oversize-by-header", "more parameters than this leaderboard scores"),
])
def test_submit_judges_a_hostile_model_as_the_crawl_does(hub, hub_settings, repo_id, sentence):
    store = Store(hub_settings.db_path)
    crawl(BASE_ID, HubClient(hub_settings), store, hub_settings)
    before = (store.candidates(), store.queue.jobs())
    with pytest.raises(SubmissionRejected) as refused:
        submit(repo_id, None, HubClient(hub_settings), store, hub_settings)
    assert sentence in refused.value.reason
    assert (store.candidates(), store.queue.jobs()) == before


def test_submit_takes_the_size_from_the_weights_header(hub, hub_settings):
    store = Store(hub_settings.db_path)
    crawl(BASE_ID, HubClient(hub_settings), store, hub_settings)
    result = submit("evil/negative-size", None, HubClient(hub_settings), store, hub_settings)
    assert result.base_id == BASE_ID
    assert store.get_candidate("evil/negative-size", BASE_ID).num_params == 1234


def test_serve_hub_serves_a_directory_with_broken_repos_in_it(tmp_path, caplog):
    from data.local_hub.directory import load_directory

    for name, config in (("org/good", json.dumps(ROBERTA)), ("org/deep", DEEP_CONFIG.decode()),
                         ("org/not-json", "{"), ("org/list", "[]")):
        (tmp_path / name).mkdir(parents=True)
        (tmp_path / name / "config.json").write_text(config)
    (tmp_path / "org" / "bad-meta").mkdir()
    (tmp_path / "org" / "bad-meta" / "hub.json").write_text('{"no_such_key": 1}')
    hub = LocalHub()
    assert load_directory(hub, tmp_path) == ["org/deep", "org/good", "org/list", "org/not-json"]
    assert "org/bad-meta: not served: " in caplog.text.replace(str(tmp_path) + "/", "")


# ------------------------------------------------------------------------------------------- store faults
def seeded_store(path) -> Store:
    from data.records import Score

    store = Store(path)
    store.add_scores([Score(repo_id="org/m", revision="r" * 40, scorer="linear_probe", metric="probe_accuracy",
                            target="nli", value=0.5, config_hash="h", base_id=BASE_ID)])
    return store


@contextlib.contextmanager
def read_only(path: Path):
    """Make ``path`` unwritable for this process: chmod for a normal user; for root (who ignores modes) the
    immutable attribute (chattr +i), removed again afterwards. Skips where neither can be had."""
    if os.geteuid() != 0:
        path.chmod(0o444)
        try:
            yield
        finally:
            path.chmod(0o644)
        return
    if shutil.which("chattr") is None or subprocess.run(["chattr", "+i", str(path)], check=False).returncode:
        pytest.skip("running as root without chattr +i: no way to make a file read-only here")
    try:
        yield
    finally:
        subprocess.run(["chattr", "-i", str(path)], check=True)


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=120,
                          check=False)


def test_a_read_only_store_can_be_browsed_and_refuses_writes_in_one_sentence(tmp_path):
    db = tmp_path / "ro.db"
    seeded_store(db)
    with read_only(db):
        store = Store(db)
        assert store.read_only and [s.repo_id for s in store.scores()] == ["org/m"]
        browse = cli("-m", "ranking", "export", "--base", BASE_ID, "--db", str(db), "--format", "csv")
        assert browse.returncode == 0 and "org/m" in browse.stdout, browse.stderr
        write = cli("-m", "data", "seed-snapshot", "--db", str(db))
        assert write.returncode == 1 and "Traceback" not in write.stderr
        assert f"The store {db} is read-only: it can be browsed, but nothing can be written to it" in write.stderr
    assert [s.repo_id for s in Store(db).scores()] == ["org/m"]  # nothing lost


def test_a_locked_store_is_read_without_waiting_and_a_write_says_busy(tmp_path):
    db = tmp_path / "locked.db"
    seeded_store(db)
    holder = sqlite3.connect(db, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another process holds the write lock
    try:
        store = Store(db, busy_timeout_s=0.2)  # opening takes no write lock
        assert [s.repo_id for s in store.scores()] == ["org/m"]
        with pytest.raises(StoreBusy, match=r"is busy: another process has held its write lock for more than 0.2 s"):
            store.add_scores([])
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert len(Store(db).scores()) == 1


def test_a_damaged_store_is_refused_at_start_in_one_sentence(tmp_path, caplog):
    import app

    db = tmp_path / "damaged.db"
    store = seeded_store(db)
    store.add_scores([replace(store.scores()[0], repo_id=f"org/m{i}", extra={"pad": "x" * 2000})
                      for i in range(300)])  # enough pages to damage some in the middle
    with sqlite3.connect(db) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    data = bytearray(db.read_bytes())
    page = 4096
    for n in (len(data) // page // 2, len(data) // page // 2 + 1, len(data) // page // 2 + 2):
        data[n * page:(n + 1) * page] = b"\xa5" * page
    db.write_bytes(bytes(data))
    assert app.main(["--db", str(db), "--snapshot", "none", "--published", "none"]) == 1
    [line] = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert line.startswith(f"The store {db} is damaged (") and "restore it from a backup" in line


class FullDiskStore(Store):
    """A store whose disk fills at ``max_pages`` pages (SQLite's own limit stands in for the disk)."""

    max_pages = 0

    def _configure(self, conn) -> None:
        if self.max_pages:
            conn.execute(f"PRAGMA max_page_count = {self.max_pages}")


def test_a_full_disk_rolls_the_write_back_and_says_so(tmp_path):
    from data.records import Score

    store = FullDiskStore(tmp_path / "full.db")
    seeded = seeded_store(store.db_path)
    before = seeded.scores()
    with sqlite3.connect(store.db_path) as conn:
        store.max_pages = conn.execute("PRAGMA page_count").fetchone()[0] + 1
    many = [Score(repo_id=f"org/x{i}", revision="r" * 40, scorer="linear_probe", metric="probe_accuracy",
                  target="nli", value=0.5, config_hash="h", base_id=BASE_ID, extra={"pad": "y" * 1000})
            for i in range(500)]
    with pytest.raises(StoreFull, match=r"The disk holding the store .* is full: nothing was written"):
        store.add_scores(many)
    assert store.scores() == before


# ------------------------------------------------------------------------------------------- bounded caches
def test_memory_stays_flat_over_10000_distinct_requests(tmp_path):
    import tracemalloc

    from tests.helpers.leaderboard_store import BASE, build_store
    from ui.board_cache import MAX_RENDERS, LeaderboardService

    service = LeaderboardService(build_store(tmp_path / "lb.db"))
    n_rows = len(service.board(BoardKey(BASE, "project")).rows)

    def request(i: int) -> None:
        if i % 2:
            service.board(BoardKey(f"stranger/base-{i}", "project"))  # an unknown base each time
        else:
            service.rendered(BoardKey(BASE, "project"), ("csv", "json")[i % 4 // 2], limit=i)  # a new limit each time

    for i in range(1000):
        request(i)
    tracemalloc.start()
    warm = tracemalloc.get_traced_memory()[0]
    for i in range(1000, 10_000):
        request(i)
    grown = tracemalloc.get_traced_memory()[0] - warm
    tracemalloc.stop()
    assert len(service._boards) == 1 and len(service._renders) <= min(MAX_RENDERS, 2 * (n_rows + 1))
    assert grown < 2_000_000, f"{grown:,} bytes kept after 9,000 more requests"


def test_repeated_downloads_reuse_one_file_and_the_folder_stays_bounded(tmp_path):
    from tests.helpers.leaderboard_store import BASE, build_store
    from ui.handlers import MAX_EXPORT_FILES, AppHandlers
    from ui.views import ViewQuery

    settings = replace(Settings(), db_path=tmp_path / "lb.db", cache_dir=tmp_path / "cache")
    handlers = AppHandlers(build_store(settings.db_path), settings)
    first = handlers.export(BoardKey(BASE, "project"), None, "csv")
    assert handlers.export(BoardKey(BASE, "project"), None, "csv") == first  # the same bytes: the same file
    for i in range(3 * MAX_EXPORT_FILES):
        handlers.export(BoardKey(BASE, "project"), ViewQuery(search=f"no-match-{i}", max_rows="all"), "json")
    files = list(first.parent.iterdir())
    assert len(files) <= MAX_EXPORT_FILES and not [f for f in files if f.suffix == ".part"]


def test_a_submitter_with_a_line_break_cannot_forge_a_log_line(hub, hub_settings, caplog):
    import logging

    caplog.set_level(logging.INFO, logger="data.submissions")
    store = Store(hub_settings.db_path)
    crawl(BASE_ID, HubClient(hub_settings), store, hub_settings)
    submit("good/model-00", None, HubClient(hub_settings), store, hub_settings,
           submitter="198.51.100.1\n2026-12-01 INFO app: forged")
    [line] = [r.getMessage() for r in caplog.records if r.name == "data.submissions"]
    assert "\n" not in line and "198.51.100.1\\n2026-12-01 INFO app: forged" in line


def test_the_app_starts_on_a_read_only_store_and_seeds_nothing(tmp_path, monkeypatch):
    import uvicorn

    import app

    db = tmp_path / "ro.db"
    before = [s.repo_id for s in seeded_store(db).scores()]
    served = []
    monkeypatch.setattr(uvicorn, "run", lambda server, **kwargs: served.append(server))
    with read_only(db):
        assert app.main(["--db", str(db), "--port", "1"]) == 0  # the bundles would be seeded into a writable one
    assert served and [s.repo_id for s in Store(db).scores()] == before and Store(db).applied_bundles() == []


def test_read_file_stops_at_its_byte_cap(hub, hub_settings):
    from data.errors import FileTooLarge

    client = HubClient(hub_settings)
    sha = hub.sha_of("evil/50mb-config")
    with pytest.raises(FileTooLarge, match="is 50,0[0-9,]+ bytes, more than the 1,000 bytes read"):
        client.read_file("evil/50mb-config", "config.json", sha, max_bytes=1000)
    assert json.loads(client.read_file("good/model-00", "config.json", hub.sha_of("good/model-00")))["model_type"]
