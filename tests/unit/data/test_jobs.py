"""The job queue's lifecycle: leases, heartbeats, retries, release, and who may write a job's result."""

from __future__ import annotations

import time

import pytest

from data.errors import StoreError
from data.records import JobStatus, Score
from data.store import Store
from tests.helpers.store_procs import sha_of

REV = sha_of("x")


@pytest.fixture
def store(tmp_path) -> Store:
    s = Store(tmp_path / "jobs.db")
    s.queue.enqueue("a/x", REV, ["free_energy"], "org/base")
    return s


def score(value: float = 1.0) -> Score:
    return Score(repo_id="a/x", revision=REV, scorer="free_energy", metric="free_energy", value=value,
                 config_hash="h", base_id="org/base")


def test_an_expired_lease_puts_the_job_back_and_the_next_worker_finishes_it_once(store):
    first = store.queue.claim_job("dead-worker", lease_s=0.05)
    time.sleep(0.1)
    second = store.queue.claim_job("w2", lease_s=60)
    assert second.id == first.id and second.attempts == 2 and second.worker == "w2"
    with pytest.raises(StoreError, match="not RUNNING for dead-worker"):
        store.queue.finish_job(first.id, [score(9.0)], worker="dead-worker")  # the dead worker's late result is refused
    store.queue.finish_job(second.id, [score(1.0)], worker="w2")
    assert [s.value for s in store.scores(repo_id="a/x")] == [1.0]
    assert store.queue.get_job(first.id).status is JobStatus.DONE


def test_after_max_attempts_an_expired_job_fails_with_the_last_error(store):
    job = store.queue.claim_job("w1", lease_s=0.05, max_attempts=2)
    failed = store.queue.fail_job(job.id, "CUDA out of memory", worker="w1", retry=True, max_attempts=2)
    assert failed is JobStatus.PENDING
    store.queue.claim_job("w2", lease_s=0.05, max_attempts=2)
    time.sleep(0.1)
    assert store.queue.claim_job("w3", lease_s=0.05, max_attempts=2) is None
    failed = store.queue.get_job(job.id)
    assert failed.status is JobStatus.FAILED and failed.attempts == 2
    assert "gave up after 2 attempts" in failed.error and "last error: CUDA out of memory" in failed.error
    assert "w2" not in failed.error  # a worker's name (host:pid) is never shown: the log says which it was


def test_heartbeat_keeps_the_lease_and_fails_once_the_job_is_lost(store):
    job = store.queue.claim_job("w1", lease_s=0.2)
    for _ in range(3):
        time.sleep(0.1)
        assert store.queue.heartbeat(job.id, "w1", lease_s=0.2)
    assert store.queue.claim_job("w2") is None  # still held
    assert not store.queue.heartbeat(job.id, "w2")  # not w2's job
    time.sleep(0.3)
    assert store.queue.claim_job("w2", lease_s=60).id == job.id
    assert not store.queue.heartbeat(job.id, "w1")  # w1 learns it lost the job


def test_fail_without_retry_is_final_and_retry_stops_at_max_attempts(store):
    job = store.queue.claim_job("w1")
    assert store.queue.fail_job(job.id, "no safetensors weights", worker="w1") is JobStatus.FAILED
    assert store.queue.get_job(job.id).error == "no safetensors weights"
    assert store.queue.fail_job(job.id, "again", worker="w1") is None  # not RUNNING any more: nothing changes
    assert store.queue.requeue_failed() == 1
    for attempt in (1, 2, 3):
        job = store.queue.claim_job("w1", max_attempts=3)
        assert job.attempts == attempt
        expected = JobStatus.PENDING if attempt < 3 else JobStatus.FAILED
        assert store.queue.fail_job(job.id, f"boom {attempt}", worker="w1", retry=True, max_attempts=3) is expected
    assert store.queue.get_job(job.id).error == "boom 3"


def test_release_returns_the_job_without_counting_the_attempt(store):
    job = store.queue.claim_job("w1")
    assert not store.queue.release_job(job.id, "w2")
    assert store.queue.release_job(job.id, "w1")
    again = store.queue.get_job(job.id)
    assert again.status is JobStatus.PENDING and again.attempts == 0 and again.worker is None
    assert store.queue.queue_stats().pending == 1


def test_jobs_filter_by_scorer_and_base(store):
    store.queue.enqueue("a/y", sha_of("y"), ["linear_probe", "free_energy"], "org/other")
    assert [j.repo_id for j in store.queue.jobs(scorer="linear_probe")] == ["a/y"]
    assert {j.repo_id for j in store.queue.jobs(base_id="org/base")} == {"a/x"}
    assert store.queue.queue_stats().pending == 3


def test_requeue_finished_puts_one_scorers_done_and_failed_jobs_back_and_keeps_the_rest(tmp_path):
    from data.store import Store

    store = Store(tmp_path / "q.db")
    store.queue.enqueue("org/a", "a" * 40, ["free_energy", "linear_probe"], base_id="org/base")
    store.queue.enqueue("org/b", "b" * 40, ["free_energy"], base_id="org/base")
    done, failed, other = (store.queue.claim_job("w", scorers=[s])
                           for s in ("free_energy", "free_energy", "linear_probe"))
    store.queue.finish_job(done.id, [], worker="w")
    store.queue.fail_job(failed.id, "broken", worker="w")
    store.queue.finish_job(other.id, [], worker="w")
    assert store.queue.requeue_finished("free_energy") == 2
    assert {(j.scorer, j.status) for j in store.queue.jobs()} == {
        ("free_energy", JobStatus.PENDING), ("linear_probe", JobStatus.DONE)}
    assert all(j.attempts == 0 for j in store.queue.jobs(scorer="free_energy"))


def test_a_worker_is_alive_while_it_polls_or_holds_a_live_lease(store):
    from datetime import UTC, datetime, timedelta

    now = datetime.now(UTC)
    assert not store.queue.worker_alive(now=now)  # nobody ever polled
    store.queue.mark_worker_alive(now=now - timedelta(seconds=120))
    assert not store.queue.worker_alive(within_s=60, now=now)  # it stopped two minutes ago
    store.queue.mark_worker_alive(now=now - timedelta(seconds=5))
    assert store.queue.worker_alive(within_s=60, now=now)
    store.queue.mark_worker_alive(now=now - timedelta(seconds=600))
    job = store.queue.claim_job("busy", lease_s=60)  # a long job: no polling, but a lease its heartbeats renew
    assert store.queue.worker_alive(within_s=60) and job is not None
    assert not store.queue.worker_alive(within_s=60, now=now + timedelta(seconds=120))  # the lease ran out: it died
