"""Seeding from the bundled data: once per version, the store's own data first, bad bundles logged and skipped."""

from __future__ import annotations

import dataclasses
import gzip
import logging
import shutil
import sqlite3
from pathlib import Path

import pytest

from data.metrics import PUBLISHED_SOURCE
from data.published import BUNDLED_DIR, MODELS_TESTED_PATH
from data.settings import DEFAULT_PUBLISHED, Settings
from data.snapshot import score_key, write_snapshot
from data.store import Store
from service.bundles import PUBLISHED, STUDY, bundle_version, seed_bundles
from tests.unit.data.test_snapshot import BASE, TIMED, rich_store

ROBERTA = "FacebookAI/roberta-base"


@pytest.fixture
def snapshot_path(tmp_path) -> Path:
    source = rich_store(tmp_path / "source.db")
    return write_snapshot(source, tmp_path / "snap" / "study.json", base_ids=[BASE], meta={"command": "test"})


def study_only(store: Store, snapshot_path: Path | None) -> Settings:
    return Settings(db_path=store.db_path, snapshot_path=snapshot_path, published_path=None)


def delete_score(store: Store, score) -> None:
    """What a deployment's own clean-up does: delete one row behind the app's back."""
    with sqlite3.connect(store.db_path) as conn:
        conn.execute("DELETE FROM scores WHERE repo_id = ? AND metric = ? AND target = ?",
                     (score.repo_id, score.metric, score.target))


def stored_keys(store: Store) -> set:
    return {score_key(s) for s in store.scores()}


def test_a_bundle_is_applied_once_per_version_and_a_deleted_row_stays_deleted(snapshot_path, tmp_path):
    store = Store(tmp_path / "app.db")
    [first] = seed_bundles(store, study_only(store, snapshot_path))
    assert first.name == STUDY and first.added == first.total and first.added[1] == 6
    assert first.version == bundle_version(snapshot_path)
    assert TIMED in store.scores(repo_id=TIMED.repo_id)

    delete_score(store, TIMED)
    [again] = seed_bundles(store, study_only(store, snapshot_path))  # the next start
    assert again.added is None and "already applied" in again.summary()
    assert score_key(TIMED) not in stored_keys(store)
    [applied] = store.applied_bundles()
    assert (applied.name, applied.version, applied.added, applied.skipped) == (
        STUDY, first.version, sum(first.added), 0)

    # a new bundled version adds what the store lacks (the deleted row too), nothing else changes
    newer = tmp_path / "newer.json"
    newer.write_text(snapshot_path.read_text().replace('"command":"test"', '"command":"test v2"'))
    before = stored_keys(store)
    [update] = seed_bundles(store, study_only(store, newer))
    assert update.version != first.version and update.added[2] == 1
    assert stored_keys(store) == before | {score_key(TIMED)}
    assert [b.version for b in store.applied_bundles()] == [first.version, update.version]


def test_the_stores_own_data_wins_and_no_jobs_are_created(snapshot_path, tmp_path):
    store = Store(tmp_path / "own.db")
    own = dataclasses.replace(TIMED, value=999.0)
    store.add_scores([own])
    [seed] = seed_bundles(store, study_only(store, snapshot_path))
    assert seed.added[2] == seed.total[2] - 1
    assert [s.value for s in store.scores(repo_id=TIMED.repo_id) if s.metric == TIMED.metric] == [999.0]
    assert store.queue.jobs() == []


def test_off_missing_and_bad_bundles_are_logged_and_leave_the_store_alone(snapshot_path, tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="service.bundles")
    store = Store(tmp_path / "app.db")
    version = store.data_version()
    assert seed_bundles(store, study_only(store, None)) == []
    assert seed_bundles(store, study_only(store, tmp_path / "nothing.json")) == []
    assert "seeding from the study-snapshot bundle is off" in caplog.text
    assert "no study-snapshot bundle at" in caplog.text

    bad = tmp_path / "bad.json"
    bad.write_text("not json")
    caplog.clear()
    assert seed_bundles(store, study_only(store, bad)) == []
    [error] = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert "the study-snapshot bundle was not loaded" in error and "is not JSON" in error
    assert store.data_version() == version and store.applied_bundles() == []


def test_a_corrupt_published_bundle_writes_nothing(tmp_path, caplog):
    broken = tmp_path / "published"
    shutil.copytree(BUNDLED_DIR, broken)
    (broken / f"{MODELS_TESTED_PATH}.gz").write_bytes(b"not gzip")
    store = Store(tmp_path / "app.db")
    settings = Settings(db_path=store.db_path, snapshot_path=None, published_path=broken)
    assert seed_bundles(store, settings) == []
    assert "the published-2023 bundle was not loaded" in caplog.text and "not a readable text file" in caplog.text
    assert store.scores() == [] and store.applied_bundles() == []


@pytest.mark.slow
def test_the_bundled_published_results_seed_every_2023_board_once(tmp_path):
    assert DEFAULT_PUBLISHED == BUNDLED_DIR and Settings().published_path == BUNDLED_DIR
    store = Store(tmp_path / "app.db")
    settings = Settings(db_path=store.db_path, snapshot_path=None)
    [seed] = seed_bundles(store, settings)
    assert seed.name == PUBLISHED and seed.added == (0, 0, seed.total[2]) and seed.total[2] > 50_000
    boards = {(b, s): n for b, s, n in store.score_summary()}
    # 1,278 rows of models_tested.csv for roberta-base (the site ranks 1,277 of them) plus the baseline
    assert boards[(ROBERTA, PUBLISHED_SOURCE)] == 1278 + 1
    assert len([b for b, s in boards if s == PUBLISHED_SOURCE]) == 6
    assert seed_bundles(store, settings)[0].added is None


def test_bundle_version_covers_every_file_and_name(tmp_path):
    folder = tmp_path / "bundle"
    (folder / "results").mkdir(parents=True)
    (folder / "results" / "a.csv.gz").write_bytes(gzip.compress(b"x"))
    first = bundle_version(folder)
    (folder / "results" / "a.csv.gz").rename(folder / "results" / "b.csv.gz")
    assert bundle_version(folder) != first
    (folder / "LICENSE").write_text("text")
    assert len({first, bundle_version(folder), bundle_version(folder / "LICENSE")}) == 3


def test_app_main_seeds_its_store_before_serving(snapshot_path, tmp_path, monkeypatch):
    import uvicorn

    import app

    served = []
    monkeypatch.setattr(app, "create_server", lambda store, settings: (store, settings))
    monkeypatch.setattr(uvicorn, "run", lambda server, **kwargs: served.append(server))
    argv = ["--db", str(tmp_path / "a.db"), "--snapshot", str(snapshot_path), "--published", "none", "--port", "1"]
    assert app.main(argv) == 0
    store, settings = served[-1]
    assert settings.snapshot_path == snapshot_path and settings.published_path is None
    assert len(store.candidates()) == 6 and store.queue.jobs() == []

    assert app.main(["--db", str(tmp_path / "b.db"), "--snapshot", "none", "--published", "none"]) == 0
    assert served[-1][1].snapshot_path is None and served[-1][0].bases() == [] and served[-1][0].scores() == []

    monkeypatch.setenv("MRL_SNAPSHOT", str(tmp_path / "missing.json"))
    monkeypatch.setenv("MRL_PUBLISHED", "none")
    assert app.main(["--db", str(tmp_path / "c.db")]) == 0
    assert served[-1][0].bases() == [] and served[-1][1].published_path is None


def test_the_bundled_personal_validation_is_read_and_a_bad_file_is_none(tmp_path):
    from service.bundles import read_personal_validation

    doc = read_personal_validation()
    assert doc is not None and doc["base_id"] == "sentence-transformers/all-MiniLM-L6-v2"
    assert {r["predictor"] for r in doc["rows"]} >= {"general", "cv_knn_accuracy", "combined"}
    assert all(isinstance(r["rho"], float) for r in doc["rows"])
    bad = tmp_path / "bad.json"
    bad.write_text('{"rows": 3}')
    assert read_personal_validation(bad) is None and read_personal_validation(tmp_path / "missing.json") is None
