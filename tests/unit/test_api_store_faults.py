"""A store fault while the API answers is a 503 with its kind's sentence (data.errors.public_sentence): no traceback,
no server path, no raw SQLite message."""

from __future__ import annotations

import pytest

from data.errors import StoreBusy, StoreDamaged, StoreError, StoreFull, StoreReadOnly, public_sentence
from tests.helpers.leaderboard_store import BASE, build_store


@pytest.fixture
def broken(tmp_path, settings, monkeypatch):
    """(a TestClient of the app, the store's path, a function making the service raise an error)."""
    from fastapi.testclient import TestClient

    import app
    from ui.handlers import AppHandlers

    store = build_store(tmp_path / "lb.db")
    handlers = AppHandlers(store, settings)
    client = TestClient(app.create_server(store, settings, handlers), raise_server_exceptions=False)

    def fail_with(error: Exception) -> None:
        def raise_it(*args, **kwargs):
            raise error

        monkeypatch.setattr(handlers.service, "available", raise_it)
        monkeypatch.setattr(handlers.service, "versioned_board", raise_it)

    return client, store.db_path, fail_with


@pytest.mark.parametrize("kind", [StoreBusy, StoreReadOnly, StoreFull, StoreDamaged, StoreError])
@pytest.mark.parametrize("path", ["/api/leaderboards", f"/api/leaderboard?base={BASE}&format=csv"])
def test_each_store_fault_is_a_503_with_its_sentence_and_without_the_path(broken, kind, path):
    client, db_path, fail_with = broken
    fail_with(kind(f"The store {db_path} failed: disk I/O error on /srv/app/data."))
    response = client.get(path)
    assert response.status_code == 503
    assert response.json() == {"detail": public_sentence(kind("x"))}
    assert "/" not in response.json()["detail"] and "I/O" not in response.text and "Traceback" not in response.text
    assert ("retry-after" in response.headers) == (kind is StoreBusy)


def test_each_kind_of_fault_has_its_own_sentence():
    sentences = {kind: public_sentence(kind("x")) for kind in (StoreBusy, StoreReadOnly, StoreFull, StoreDamaged)}
    assert len(set(sentences.values())) == 4
    assert "read-only" in sentences[StoreReadOnly] and "full" in sentences[StoreFull]
    assert "busy" in sentences[StoreBusy]


def test_a_damaged_store_file_is_a_503_not_a_500(tmp_path, settings):
    from fastapi.testclient import TestClient

    import app
    from ui.handlers import AppHandlers

    store = build_store(tmp_path / "lb.db")
    handlers = AppHandlers(store, settings)
    client = TestClient(app.create_server(store, settings, handlers), raise_server_exceptions=False)
    for sibling in (tmp_path / "lb.db-wal", tmp_path / "lb.db-shm"):
        sibling.unlink(missing_ok=True)
    (tmp_path / "lb.db").write_bytes(b"this is not a database, " * 1000)
    handlers.service.invalidate()  # check the store's version now, not in up to 2 s
    for path in ("/api/leaderboards", f"/api/leaderboard?base={BASE}"):
        response = client.get(path)
        assert response.status_code == 503, response.text
        detail = response.json()["detail"]
        assert detail == public_sentence(StoreDamaged("x")) and str(tmp_path) not in detail
