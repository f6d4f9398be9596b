import multiprocessing as mp
import os
import signal
import sqlite3
import time
from dataclasses import replace

import pytest

from data.errors import StoreDamaged, StoreError
from data.records import (
    ArchSignature,
    BaseModel,
    CandidateStatus,
    JobStatus,
    Score,
    SkipReason,
)
from data.store import MIGRATIONS, Store
from tests.helpers import store_procs
from tests.helpers.store_procs import BASE_ID, SCORERS, make_candidate, sha_of

SIG = ArchSignature(model_type="bert", hidden_size=32, num_hidden_layers=2, num_attention_heads=2, vocab_size=99)


@pytest.fixture
def store(tmp_path):
    s = Store(tmp_path / "lb.db")
    s.upsert_base(BaseModel(repo_id=BASE_ID, sha=sha_of("base"), aliases=(BASE_ID, "base"), signature=SIG))
    return s


def test_schema_is_versioned_and_wal(tmp_path):
    s = Store(tmp_path / "x.db")
    assert s.schema_version() == len(MIGRATIONS)
    with sqlite3.connect(tmp_path / "x.db") as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    s.upsert_base(BaseModel(repo_id=BASE_ID, sha=sha_of("base"), aliases=(BASE_ID,), signature=SIG))
    version = s.data_version()
    reopened = Store(tmp_path / "x.db")  # reopening migrates nothing, writes nothing and keeps data
    assert reopened.schema_version() == len(MIGRATIONS) and reopened.data_version() == version
    assert [b.repo_id for b in reopened.bases()] == [BASE_ID]


def test_newer_schema_and_garbage_files_are_refused(tmp_path):
    path = tmp_path / "new.db"
    with sqlite3.connect(path) as conn:
        conn.execute(f"PRAGMA user_version = {len(MIGRATIONS) + 1}")
    with pytest.raises(StoreError, match="newer than this code"):
        Store(path)
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"this is not a database" * 100)
    with pytest.raises(StoreDamaged, match="is damaged .*restore it from a backup"):
        Store(junk)
    assert junk.read_bytes() == b"this is not a database" * 100


def test_base_round_trip_and_alias_lookup(store):
    base = store.get_base("base")
    assert base.repo_id == BASE_ID and base.signature == SIG and base.aliases == (BASE_ID, "base")
    assert store.get_base("nope") is None


def test_new_candidate_gets_jobs_and_update_supersedes_them(store):
    c = make_candidate("a/one")
    assert store.save_candidates([c], SCORERS) == 2
    assert store.save_candidates([c], SCORERS) == 0  # same sha: no new jobs
    [stored] = store.candidates(BASE_ID)
    assert stored.repo_id == "a/one" and stored.sha == c.sha and stored.tags == ("transformers",)
    first_seen = stored.first_seen

    c2 = make_candidate("a/one", version=1)
    assert store.save_candidates([c2], SCORERS) == 2
    [stored] = store.candidates(BASE_ID)
    assert stored.sha == c2.sha and stored.first_seen == first_seen and stored.downloads == 1
    by_rev = {(j.revision, j.scorer): j.status for j in store.queue.jobs()}
    assert by_rev == {
        (c.sha, "linear_probe"): JobStatus.CANCELLED, (c.sha, "free_energy"): JobStatus.CANCELLED,
        (c2.sha, "linear_probe"): JobStatus.PENDING, (c2.sha, "free_energy"): JobStatus.PENDING,
    }


def test_skipped_candidates_get_no_jobs(store):
    c = replace(make_candidate("a/gated", skipped=True), skip_reason=SkipReason.GATED)
    assert store.save_candidates([c], SCORERS) == 0
    [stored] = store.candidates(BASE_ID, status=CandidateStatus.SKIPPED)
    assert stored.skip_reason is SkipReason.GATED
    assert store.queue.jobs() == []
    assert store.known_verdicts(BASE_ID) == {"a/gated": (c.sha, "gated")}


def test_failed_batch_writes_nothing(store):
    good = make_candidate("a/good")
    bad = replace(make_candidate("a/bad"), base_id="not/a-base")  # violates the foreign key
    with pytest.raises(StoreError, match="FOREIGN KEY constraint failed"):
        store.save_candidates([good, bad], SCORERS)
    assert store.candidates() == [] and store.queue.jobs() == []


def test_refresh_listing_metadata_touches_only_counts(store):
    store.save_candidates([make_candidate("a/one")], SCORERS)
    before = store.candidates()[0]
    store.refresh_listing_metadata(BASE_ID, [("a/one", 42, 7), ("a/missing", 1, 1)])
    after = store.candidates()[0]
    assert (after.downloads, after.likes) == (42, 7)
    assert replace(after, downloads=0, likes=0) == replace(before, downloads=0, likes=0)


def test_enqueue_is_idempotent_and_claim_is_exclusive(store):
    rev = sha_of("x")
    jobs = store.queue.enqueue("a/x", rev, ["free_energy"])
    again = store.queue.enqueue("a/x", rev, ["free_energy"])
    assert [j.id for j in jobs] == [j.id for j in again]
    job = store.queue.claim_job("w1")
    assert job.status is JobStatus.RUNNING and job.attempts == 1 and job.worker == "w1"
    assert store.queue.claim_job("w2") is None
    score = Score(repo_id="a/x", revision=rev, scorer="free_energy", metric="free_energy", value=1.5,
                  config_hash="abc", extra={"chains": [1, 2]})
    store.queue.finish_job(job.id, [score])
    [done] = store.queue.jobs(JobStatus.DONE)
    assert done.id == job.id and done.finished_at is not None
    [stored] = store.scores(repo_id="a/x")
    assert stored.value == 1.5 and stored.extra == {"chains": [1, 2]} and stored.source == "project"
    with pytest.raises(StoreError, match="not RUNNING"):
        store.queue.finish_job(job.id, [score])


def test_fail_job_keeps_the_error(store):
    store.queue.enqueue("a/x", sha_of("x"), ["free_energy"])
    job = store.queue.claim_job("w")
    store.queue.fail_job(job.id, "CUDA out of memory at target sst2 step 12")
    [failed] = store.queue.jobs(JobStatus.FAILED)
    assert failed.error == "CUDA out of memory at target sst2 step 12"


def _spawn():
    return mp.get_context("spawn")


@pytest.mark.slow
def test_concurrent_processes_lose_nothing(store):
    """4 writer processes, then 4 claimer processes, on one file: every row and every job exactly once."""
    ctx = _spawn()
    writers = [ctx.Process(target=store_procs.write_candidates, args=(str(store.db_path), w, 100, 5))
               for w in range(4)]
    for p in writers:
        p.start()
    while any(p.is_alive() for p in writers):  # the app reads meanwhile
        store.candidates()
        store.queue.jobs()
    assert all(p.exitcode == 0 for p in writers)
    candidates = store.candidates(BASE_ID)
    assert len(candidates) == 400 and len({c.repo_id for c in candidates}) == 400
    assert len(store.queue.jobs(JobStatus.PENDING)) == 800

    with ctx.Pool(4) as pool:
        claimed = pool.map(store_procs.claim_until_empty, [str(store.db_path)] * 4)
    all_claimed = [job_id for ids in claimed for job_id in ids]
    assert len(all_claimed) == len(set(all_claimed)) == 800
    assert len(store.queue.jobs(JobStatus.DONE)) == 800
    assert len(store.scores()) == 800
    assert store.integrity_check() == "ok"


@pytest.mark.slow
def test_kill_9_mid_write_leaves_whole_batches(store):
    ctx = _spawn()
    p = ctx.Process(target=store_procs.write_forever, args=(str(store.db_path), 7))
    p.start()
    deadline = time.monotonic() + 30
    while len(store.candidates()) < 70 and time.monotonic() < deadline:
        time.sleep(0.05)
    os.kill(p.pid, signal.SIGKILL)
    p.join()
    candidates = store.candidates(BASE_ID)
    assert len(candidates) >= 70 and len(candidates) % 7 == 0
    assert len(store.queue.jobs()) == 2 * len(candidates)
    assert store.integrity_check() == "ok"


def test_data_version_changes_with_every_write_and_only_then(store):
    v0 = store.data_version()
    store.candidates()
    store.queue.jobs()
    assert store.data_version() == v0
    store.save_candidates([make_candidate("a/v")], SCORERS)
    v1 = store.data_version()
    store.add_scores([Score(repo_id="a/v", revision=sha_of("a/v@0"), scorer="s", metric="m", value=1.0)])
    assert v0 < v1 < store.data_version()
