"""Personal rankings in the store (data/store/personal.py): the rows are kept only while a job needs them (or as
long as a setting says), a request and its job expire, and only the job's worker can write its ranking."""

from __future__ import annotations

import time

import pytest

from data.errors import StoreError
from data.records import PERSONAL_JOB, JobStatus
from data.store import Store

HASH_A, HASH_B = "a" * 64, "b" * 64


@pytest.fixture()
def store(tmp_path):
    return Store(tmp_path / "lb.db")


def create(store, data_hash=HASH_A, *, ttl_s=3600.0, rows_max_s=3600.0):
    return store.create_personal(base_id="b/base", data_hash=data_hash, rows_json='{"rows": 1}', source="upload:x.csv",
                                 summary={"rows": 1}, top_k=2, ttl_s=ttl_s, rows_max_s=rows_max_s)


def claim(store):
    job = store.claim_job("w1", [PERSONAL_JOB])
    assert job is not None
    return job


def test_a_request_has_a_pending_job_and_its_rows_until_the_ranking_is_written(store):
    request = create(store)
    assert request.status is JobStatus.PENDING and len(request.id) == 32 and request.result is None
    (job,) = store.jobs(scorer=PERSONAL_JOB)
    assert job.id == request.job_id and request.id not in job.revision  # the public list never shows the token
    assert store.personal_rows(HASH_A) == '{"rows": 1}' and store.personal_row_sets() == 1
    claimed = claim(store)
    store.set_personal_progress(request.id, [{"repo_id": "b/base"}])
    with pytest.raises(StoreError, match="not RUNNING for w2"):
        store.finish_personal(claimed.id, "w2", {"models": []})
    assert store.personal(request.id).result is None and store.personal_row_sets() == 1  # nothing written
    store.finish_personal(claimed.id, "w1", {"models": [1]})
    done = store.personal(request.id)
    assert done.status is JobStatus.DONE and done.result == {"models": [1]}
    assert done.progress == ({"repo_id": "b/base"},)
    assert store.personal_rows(HASH_A) is None and store.personal_row_sets() == 0


def test_rows_shared_by_two_requests_stay_until_both_jobs_end(store):
    first, second = create(store), create(store)
    assert first.id != second.id and store.personal_row_sets() == 1
    store.finish_personal(claim(store).id, "w1", {})
    assert store.personal_rows(HASH_A) is not None  # the second still needs them
    job = claim(store)
    store.fail_job(job.id, "boom", worker="w1")
    store.release_personal_rows(job.id)
    assert store.personal_row_sets() == 0


def test_a_keep_setting_keeps_the_rows_for_that_long_after_the_job(store):
    create(store)
    store.finish_personal(claim(store).id, "w1", {}, keep_rows_s=0.3)
    assert store.personal_rows(HASH_A) is not None
    time.sleep(0.35)
    store.purge_personal()
    assert store.personal_row_sets() == 0


def test_rows_of_a_job_that_never_ends_go_at_their_cap_and_a_request_goes_at_its_expiry(store):
    kept = create(store, HASH_B)
    request = create(store, ttl_s=0.2, rows_max_s=0.2)
    time.sleep(0.25)
    assert store.personal(request.id) is None and store.personal_rows(HASH_A) is None
    store.purge_personal()
    assert [j.id for j in store.jobs(scorer=PERSONAL_JOB)] == [kept.job_id]  # the expired request's job is gone
    assert store.personal_row_sets() == 1 and store.personal(kept.id) is not None


def test_an_unknown_token_finds_nothing(store):
    create(store)
    assert store.personal("0" * 32) is None and store.personal("' OR 1=1 --") is None


def test_a_claim_can_leave_personal_jobs_to_others(store):
    create(store)
    store.enqueue("m/x", "c" * 40, ["noop"], "b/base")
    claimed = store.claim_job("ray-driver", exclude=[PERSONAL_JOB])
    assert claimed.scorer == "noop" and store.claim_job("ray-driver", exclude=[PERSONAL_JOB]) is None
    assert store.claim_job("worker").scorer == PERSONAL_JOB  # a plain worker takes it
