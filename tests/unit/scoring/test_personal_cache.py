"""The personal features' cache (service/personal.py): written atomically, a damaged file deleted and rebuilt, and
``purge_personal_data`` deleting what is past its time (rows, requests, features of rows that are gone)."""

from __future__ import annotations

import logging
import random
import time

import pytest
import torch

from data.records import PERSONAL_JOB
from data.store import Store
from data.user_data import Columns, user_data
from scoring.config import UserFeatureConfig
from service.personal import FEATURES_DIR, purge_personal_data, user_features
from tests.helpers.tiny_models import TINY_BERT, WORDS, build_base

CFG = UserFeatureConfig(max_length=16, batch_size=8)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return build_base(TINY_BERT, tmp_path_factory.mktemp("tiny") / "bert-base")


@pytest.fixture(scope="module")
def data():
    rng = random.Random(0)
    rows = [{"text": " ".join(rng.choices(WORDS, k=rng.randint(2, 8))), "label": "ab"[i % 2]} for i in range(12)]
    return user_data(rows, Columns(text="text", label="label"), source="test")


def features(model_dir, data, cache_dir):
    return user_features(model_dir, data, CFG, cache_dir=cache_dir, model_key="tiny/bert-base@1")


def damage(path, how: str, num_rows: int) -> None:
    good = path.read_bytes()
    if how == "garbage":
        path.write_bytes(b"not a torch file at all")
    elif how == "truncated":
        path.write_bytes(good[: len(good) // 2])
    elif how == "empty":
        path.write_bytes(b"")
    elif how == "wrong_rows":
        torch.save(torch.zeros(num_rows - 1, 32), path)
    elif how == "not_features":
        torch.save({"train": torch.zeros(num_rows, 32)}, path)


def test_the_features_are_cached_in_one_whole_file(model_dir, data, tmp_path):
    first = features(model_dir, data, tmp_path)
    folder = tmp_path / FEATURES_DIR / data.data_hash
    (cached,) = folder.iterdir()  # no temporary file left beside it
    assert cached.suffix == ".pt" and torch.equal(torch.load(cached, weights_only=True), first)
    assert torch.equal(features(model_dir, data, tmp_path), first)


@pytest.mark.parametrize("how", ["garbage", "truncated", "empty", "wrong_rows", "not_features"])
def test_a_damaged_cache_file_is_deleted_and_rebuilt(model_dir, data, tmp_path, caplog, how):
    expected = features(model_dir, data, tmp_path)
    (path,) = (tmp_path / FEATURES_DIR / data.data_hash).iterdir()
    damage(path, how, data.num_rows)
    with caplog.at_level(logging.WARNING, logger="service.personal"):
        got = features(model_dir, data, tmp_path)
    assert torch.allclose(got, expected, atol=1e-6) and got.shape == (data.num_rows, 32)
    assert "deleted, extracting again" in caplog.text
    assert torch.allclose(torch.load(path, weights_only=True), expected, atol=1e-6)  # the file was replaced
    assert list(path.parent.iterdir()) == [path]


def create(store, data_hash, *, rows_max_s=3600.0):
    return store.requests.create_personal(base_id="b/base", data_hash=data_hash, rows_json="{}", source="upload:x.csv",
                                 summary={}, top_k=2, ttl_s=3600.0, rows_max_s=rows_max_s)


def feature_folder(cache_dir, data_hash):
    folder = cache_dir / FEATURES_DIR / data_hash
    folder.mkdir(parents=True)
    (folder / "m.pt").write_bytes(b"features")
    return folder


def test_the_purge_deletes_rows_and_features_no_job_needs_and_keeps_the_rest(tmp_path):
    store, cache = Store(tmp_path / "lb.db"), tmp_path / "cache"
    kept, done, capped = "a" * 64, "b" * 64, "c" * 64
    create(store, done)  # the oldest: the job claimed below
    create(store, kept)
    create(store, capped, rows_max_s=0.01)
    time.sleep(0.02)  # capped's rows are past their cap: their job never ended
    folders = {h: feature_folder(cache, h) for h in (kept, done, capped, "d" * 64)}  # d: rows long gone
    job = store.queue.claim_job("w1", [PERSONAL_JOB])
    with store._write() as conn:  # the job of ``done`` ends without its purge (as a crash after the write would)
        conn.execute("UPDATE jobs SET status = 'DONE' WHERE id = ?", (job.id,))
        conn.execute("UPDATE personal_rows SET keep_until = '2000-01-01T00:00:00+00:00' WHERE data_hash = ?", (done,))
    assert purge_personal_data(store, cache) == 2 + 3  # rows of done and capped; folders of done, capped, d
    assert store.requests.personal_data_hashes() == {kept} and store.requests.personal_row_sets() == 1
    assert [h for h, f in folders.items() if f.exists()] == [kept]
    assert purge_personal_data(store, cache) == 0  # nothing more is due
