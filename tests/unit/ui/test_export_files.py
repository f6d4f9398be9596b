"""GET /api/leaderboard from pre-rendered files (ui/export_files.py): the same bytes as a render, gzip when the
client accepts it, a strong ETag and 304, a new ETag when the store changes, whole files under concurrency."""

from __future__ import annotations

import gzip
import os
import threading
import time

import pytest

from data.records import Score
from tests.helpers.leaderboard_store import BASE, TRAINED_ON, build_store, sha
from ui import export_files
from ui.board_cache import BoardKey, LeaderboardService, render_board
from ui.export_files import ExportFiles, accepts_gzip, etag_matches, write_atomically

API = "/api/leaderboard"


@pytest.fixture
def served(tmp_path, settings):
    """(a TestClient of the app, its handlers, its store)."""
    from fastapi.testclient import TestClient

    import app
    from ui.handlers import AppHandlers

    store = build_store(tmp_path / "lb.db", tags=TRAINED_ON)
    handlers = AppHandlers(store, settings)
    return TestClient(app.create_server(store, settings, handlers)), handlers, store


@pytest.mark.parametrize("params", [{"format": "csv"}, {"format": "json"}, {"format": "parquet"},
                                    {"format": "csv", "limit": 2}, {"format": "json", "include_seen": "1"},
                                    {"format": "csv", "limit": 99}])
def test_the_body_is_the_rendering_gzipped_or_not(served, params):
    client, handlers, _ = served
    expected = handlers.service.rendered(BoardKey(BASE, "project"), params["format"], params.get("limit"),
                                         include_seen=params.get("include_seen") == "1")
    plain = client.get(API, params={"base": BASE, **params}, headers={"Accept-Encoding": "identity"})
    packed = client.get(API, params={"base": BASE, **params}, headers={"Accept-Encoding": "gzip, br"})
    assert plain.status_code == packed.status_code == 200
    assert plain.content == expected and "content-encoding" not in plain.headers
    assert packed.headers["content-encoding"] == "gzip" and packed.content == expected  # httpx decodes it
    with client.stream("GET", API, params={"base": BASE, **params}, headers={"Accept-Encoding": "gzip"}) as raw:
        assert gzip.decompress(b"".join(raw.iter_raw())) == expected  # the bytes sent: gzip of the rendering
    for response in (plain, packed):
        assert response.headers["cache-control"] == "no-cache" and response.headers["vary"] == "Accept-Encoding"
        assert response.headers["etag"].startswith('"') and response.headers["etag"].endswith('"')
    assert plain.headers["etag"] != packed.headers["etag"]  # two representations, two strong ETags


def test_a_matching_etag_gets_304_and_another_gets_the_file(served):
    client, _, _ = served
    query = {"base": BASE, "format": "csv"}
    first = client.get(API, params=query, headers={"Accept-Encoding": "gzip"})
    etag = first.headers["etag"]
    again = client.get(API, params=query, headers={"Accept-Encoding": "gzip", "If-None-Match": etag})
    assert again.status_code == 304 and again.content == b"" and again.headers["etag"] == etag
    for header in (f'"other", W/{etag}', "*"):
        assert client.get(API, params=query, headers={"Accept-Encoding": "gzip", "If-None-Match": header}
                          ).status_code == 304
    other = client.get(API, params=query, headers={"Accept-Encoding": "gzip", "If-None-Match": '"stale"'})
    assert other.status_code == 200 and other.headers["etag"] == etag
    plain = client.get(API, params=query, headers={"Accept-Encoding": "identity", "If-None-Match": etag})
    assert plain.status_code == 200 and "content-encoding" not in plain.headers


def test_the_errors_are_those_of_before(served):
    client, _, _ = served
    for params, status in (({"format": "xml"}, 400), ({"limit": -1}, 400), ({"source": "nowhere"}, 400),
                           ({"include_seen": "yes"}, 400)):
        assert client.get(API, params={"base": BASE, **params}).status_code == status, params
    assert client.get(API, params={"base": "nobody/nothing"}).status_code == 404


def test_a_store_change_gives_a_new_etag_and_drops_the_old_files(served, settings):
    client, handlers, store = served
    handlers.service.recheck_s = 0.0
    query = {"base": BASE, "format": "csv"}
    old = client.get(API, params=query)
    store.add_scores([Score(repo_id="zed/new", revision=sha("zed/new"), scorer="intertraining",
                            metric="target_score", target=t, seed=0, value=0.99, config_hash="ft1", base_id=BASE)
                      for t in ("sst2", "trec")])
    deadline = time.monotonic() + 10
    while (new := client.get(API, params=query)).headers["etag"] == old.headers["etag"]:
        assert time.monotonic() < deadline, "the ETag never changed"
        time.sleep(0.05)  # the stale board is served while the new one builds
    assert b"zed/new" in new.content and b"zed/new" not in old.content
    assert client.get(API, params=query, headers={"If-None-Match": old.headers["etag"]}).status_code == 200
    [folder] = (settings.cache_dir / "api").iterdir()
    assert len(list(folder.iterdir())) == 2  # the new version's file and its gzip copy; the old ones are gone


def test_concurrent_first_requests_render_once_and_read_whole_files(tmp_path, monkeypatch):
    service = LeaderboardService(build_store(tmp_path / "lb.db"))
    version, board = service.versioned_board(BoardKey(BASE, "project"))
    renders = []

    def slow_render(*args):
        renders.append(args)
        time.sleep(0.2)  # every thread arrives while the first renders
        return render_board(*args)

    monkeypatch.setattr(export_files, "render_board", slow_render)
    files = ExportFiles(tmp_path / "api")
    barrier, answers = threading.Barrier(16), []

    def fetch(i: int) -> None:
        barrier.wait()
        answers.append(files.read(version, board, "json", None, gzip=bool(i % 2)))

    threads = [threading.Thread(target=fetch, args=(i,)) for i in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    expected = render_board(board, "json")
    assert len(renders) == 1 and len(answers) == 16
    assert {gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data for data, _ in answers} == {expected}
    assert len({etag for _, etag in answers}) == 2
    assert sorted(p.suffix for p in files.folder.iterdir()) == [".gz", ".json"]  # no temporary file left


def test_an_atomic_write_is_never_seen_in_part(tmp_path):
    path = tmp_path / "export.csv"
    versions = [bytes([65 + i]) * 2_000_000 for i in range(4)]
    stop, seen = threading.Event(), []

    def read_while_written() -> None:
        while not stop.is_set():
            if path.exists():
                seen.append(path.read_bytes())

    reader = threading.Thread(target=read_while_written)
    reader.start()
    writers = [threading.Thread(target=lambda d=d: [write_atomically(path, d) for _ in range(5)]) for d in versions]
    for writer in writers:
        writer.start()
    for writer in writers:
        writer.join()
    stop.set()
    reader.join()
    assert seen and all(data in versions for data in seen)
    assert os.listdir(tmp_path) == ["export.csv"]


def test_the_files_are_bounded_and_a_deleted_file_is_rendered_again(tmp_path):
    service = LeaderboardService(build_store(tmp_path / "lb.db"))
    version, board = service.versioned_board(BoardKey(BASE, "project"))
    files = ExportFiles(tmp_path / "api", max_files=3)
    for limit in range(5):
        files.read(version, board, "csv", limit, gzip=False)
    assert len(files) == 3 and len(list(files.folder.iterdir())) == 6
    files.read(version + 1, board, "csv", 1, gzip=False)  # a newer version drops the board's older files
    assert len(files) == 1 and len(list(files.folder.iterdir())) == 2
    for path in files.folder.iterdir():
        path.unlink()
    assert files.read(version + 1, board, "csv", 1, gzip=False)[0] == render_board(board, "csv", 1)


def test_folders_of_processes_that_ended_are_removed(tmp_path):
    (tmp_path / "api" / "999999999-dead").mkdir(parents=True)
    (tmp_path / "api" / "999999999-dead" / "x.csv").write_text("old")
    (tmp_path / "api" / f"{os.getpid()}-alive").mkdir()
    ExportFiles(tmp_path / "api")
    assert [p.name for p in (tmp_path / "api").iterdir()] == [f"{os.getpid()}-alive"]


@pytest.mark.parametrize(("header", "accepted"), [
    ("gzip", True), ("gzip, deflate, br", True), ("br;q=1.0, gzip;q=0.8", True), ("x-gzip", True), ("*", True),
    ("", False), ("identity", False), ("br", False), ("gzip;q=0", False), ("*, gzip;q=0", False),
    ("gzip;q=nonsense", False), ("GZIP", True)])
def test_accept_encoding(header, accepted):
    assert accepts_gzip(header) is accepted


def test_if_none_match():
    assert etag_matches('"a"', '"a"') and etag_matches('W/"a"', '"a"') and etag_matches('"b", "a"', '"a"')
    assert etag_matches("*", '"a"') and not etag_matches("", '"a"') and not etag_matches('"b"', '"a"')
