"""Personal rankings in the store (data/store/personal.py): the rows are kept only while a job needs them (or as
long as a setting says), a request and its job expire, and only the job's worker can write its ranking."""

from __future__ import annotations

import time

import pytest

from data.errors import StoreError
from data.personal_record import Estimate, PersonalRanking, RankedModel
from data.records import PERSONAL_JOB, JobStatus
from data.store import Store

HASH_A, HASH_B = "a" * 64, "b" * 64


def ranking(*repo_ids: str) -> PersonalRanking:
    """A finished ranking of these models, each with one passing estimate."""
    models = tuple(RankedModel(repo_id=r, revision="a" * 40, role="candidate", general_rank=None, mean_gain=None,
                               estimates={"logme": Estimate(metric="logme", value=-0.5, status="ok")}, combined_rank=i)
                   for i, r in enumerate(repo_ids, start=1))
    return PersonalRanking(base_id="b/base", source="upload:x.csv", summary={}, estimators={"logme": "logme"},
                           protocols={}, rule="", models=models)


@pytest.fixture()
def store(tmp_path):
    return Store(tmp_path / "lb.db")


def create(store, data_hash=HASH_A, *, ttl_s=3600.0, rows_max_s=3600.0):
    return store.requests.create_personal(base_id="b/base", data_hash=data_hash, rows_json='{"rows": 1}',
                                          source="upload:x.csv", summary={"rows": 1}, top_k=2, ttl_s=ttl_s,
                                          rows_max_s=rows_max_s)


def claim(store):
    job = store.queue.claim_job("w1", [PERSONAL_JOB])
    assert job is not None
    return job


def test_a_request_has_a_pending_job_and_its_rows_until_the_ranking_is_written(store):
    request = create(store)
    assert request.status is JobStatus.PENDING and len(request.id) == 32 and request.result is None
    (job,) = store.queue.jobs(scorer=PERSONAL_JOB)
    assert job.id == request.job_id and request.id not in job.revision  # the public list never shows the token
    assert store.requests.personal_rows(HASH_A) == '{"rows": 1}' and store.requests.personal_row_sets() == 1
    claimed = claim(store)
    store.requests.set_personal_progress(request.id, [{"repo_id": "b/base"}])
    with pytest.raises(StoreError, match="not RUNNING for w2"):
        store.requests.finish_personal(claimed.id, "w2", ranking())
    nothing_written = store.requests.personal(request.id).result is None
    assert nothing_written and store.requests.personal_row_sets() == 1
    store.requests.finish_personal(claimed.id, "w1", ranking("a/one"))
    done = store.requests.personal(request.id)
    assert done.status is JobStatus.DONE and done.result == ranking("a/one")  # the typed record, read back whole
    assert done.progress == ({"repo_id": "b/base"},)
    assert store.requests.personal_rows(HASH_A) is None and store.requests.personal_row_sets() == 0


def test_rows_shared_by_two_requests_stay_until_both_jobs_end(store):
    first, second = create(store), create(store)
    assert first.id != second.id and store.requests.personal_row_sets() == 1
    store.requests.finish_personal(claim(store).id, "w1", ranking())
    assert store.requests.personal_rows(HASH_A) is not None  # the second still needs them
    job = claim(store)
    store.queue.fail_job(job.id, "boom", worker="w1")
    store.requests.release_personal_rows(job.id)
    assert store.requests.personal_row_sets() == 0


def test_a_keep_setting_keeps_the_rows_for_that_long_after_the_job(store):
    create(store)
    store.requests.finish_personal(claim(store).id, "w1", ranking(), keep_rows_s=0.3)
    assert store.requests.personal_rows(HASH_A) is not None
    time.sleep(0.35)
    store.requests.purge_personal()
    assert store.requests.personal_row_sets() == 0


def test_rows_of_a_job_that_never_ends_go_at_their_cap_and_a_request_goes_at_its_expiry(store):
    kept = create(store, HASH_B)
    request = create(store, ttl_s=0.2, rows_max_s=0.2)
    time.sleep(0.25)
    assert store.requests.personal(request.id) is None and store.requests.personal_rows(HASH_A) is None
    store.requests.purge_personal()
    assert [j.id for j in store.queue.jobs(scorer=PERSONAL_JOB)] == [kept.job_id]  # the expired request's job is gone
    assert store.requests.personal_row_sets() == 1 and store.requests.personal(kept.id) is not None


def test_an_unknown_token_finds_nothing(store):
    create(store)
    assert store.requests.personal("0" * 32) is None and store.requests.personal("' OR 1=1 --") is None


def test_a_claim_can_leave_personal_jobs_to_others(store):
    create(store)
    store.queue.enqueue("m/x", "c" * 40, ["noop"], "b/base")
    claimed = store.queue.claim_job("ray-driver", exclude=[PERSONAL_JOB])
    assert claimed.scorer == "noop" and store.queue.claim_job("ray-driver", exclude=[PERSONAL_JOB]) is None
    assert store.queue.claim_job("worker").scorer == PERSONAL_JOB  # a plain worker takes it


def test_a_personal_job_failed_by_its_lease_releases_its_rows_in_that_transaction(store):
    request = create(store)
    store.queue.claim_job("dead-worker", [PERSONAL_JOB], lease_s=0.05, max_attempts=1)
    time.sleep(0.1)
    assert store.queue.claim_job("w2", ["noop"], max_attempts=1) is None  # any claim expires the lease
    failed = store.requests.personal(request.id)
    assert failed.status is JobStatus.FAILED and "lease expired" in failed.error and "dead-worker" not in failed.error
    assert store.requests.personal_row_sets() == 0 and store.requests.personal_data_hashes() == set()


def test_a_personal_job_back_to_pending_by_its_lease_keeps_its_rows(store):
    request = create(store)
    store.queue.claim_job("dead-worker", [PERSONAL_JOB], lease_s=0.05, max_attempts=2)
    time.sleep(0.1)
    again = store.queue.claim_job("w2", [PERSONAL_JOB], max_attempts=2)
    assert again.id == request.job_id and again.attempts == 2
    assert store.requests.personal_data_hashes() == {HASH_A}


def test_the_public_job_list_and_counts_leave_personal_jobs_out(store):
    create(store)
    store.queue.enqueue("m/x", "c" * 40, ["noop"], "b/base")
    assert [j.scorer for j in store.queue.public_jobs()] == ["noop"]
    assert store.queue.queue_stats().pending == 1
    assert {j.scorer for j in store.queue.jobs()} == {"noop", PERSONAL_JOB}  # the queue itself holds both
    assert store.queue.claim_job("w1", [PERSONAL_JOB]).scorer == PERSONAL_JOB


def test_the_public_job_list_is_newest_first_and_limited(store):
    for i in range(5):
        store.queue.enqueue(f"m/x{i}", "c" * 40, ["noop"], "b/base")
    create(store)
    assert [j.repo_id for j in store.queue.public_jobs(limit=3)] == ["m/x4", "m/x3", "m/x2"]


class _InsecureStore(Store):
    """The control: a store whose connections leave deleted bytes in place (SQLite's usual default)."""

    def _configure(self, conn):
        conn.execute("PRAGMA secure_delete = OFF")


@pytest.mark.parametrize(("store_class", "wiped"), [(Store, True), (_InsecureStore, False)])
def test_deleted_rows_leave_no_trace_in_the_file(tmp_path, store_class, wiped):
    store = store_class(tmp_path / "lb.db")
    marker = "zebra-7f3a1c-unique-user-text"
    short = '{"texts": ["' + marker + '"]}'
    long = '{"texts": ["' + " ".join([marker] * 200) + '"]}'  # over a page: overflow pages are wiped too
    for data_hash, rows in ((HASH_A, short), (HASH_B, long)):
        request = store.requests.create_personal(base_id="b/base", data_hash=data_hash, rows_json=rows,
                                                 source="upload:x.csv", summary={}, top_k=2, ttl_s=3600.0,
                                                 rows_max_s=3600.0)
        store.requests.finish_personal(store.queue.claim_job("w1", [PERSONAL_JOB]).id, "w1", ranking())
        assert store.requests.personal(request.id).status is JobStatus.DONE
    assert store.requests.personal_row_sets() == 0
    with store._connect() as conn:
        assert conn.execute("PRAGMA secure_delete").fetchone()[0] == int(wiped)
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    files = [p for p in tmp_path.iterdir() if p.name.startswith("lb.db")]
    assert files and any(marker.encode() in p.read_bytes() for p in files) is not wiped


def test_truncate_wal_empties_the_wal_without_waiting(store):
    create(store)
    wal = store.db_path.parent / "lb.db-wal"
    assert store.truncate_wal() and (not wal.exists() or wal.stat().st_size == 0)
    with store._connect() as reader:
        reader.execute("BEGIN")
        reader.execute("SELECT COUNT(*) FROM jobs").fetchone()
        create(store, HASH_B)  # written after the reader's snapshot began
        assert store.truncate_wal() is False  # a reader is in the way: it says so at once
        reader.execute("COMMIT")
    assert store.truncate_wal()


def test_a_stored_ranking_this_app_cannot_read_shows_no_table_and_says_why(store):
    request = create(store)
    store.requests.finish_personal(claim(store).id, "w1", ranking("a/one"))
    with store._connect() as conn:
        conn.execute("UPDATE personal_requests SET result = ? WHERE id = ?",
                     ('{"version": 99, "models": []}', request.id))
        conn.commit()
    shown = store.requests.personal(request.id)
    assert shown.result is None and shown.error.startswith("This ranking was stored in a layout")
