"""The scoring service when its workers fail: a worker that lost its lease writes nothing, and a Ray task that
raises or whose worker process dies costs its job exactly one attempt."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from dataclasses import replace
from functools import partial
from pathlib import Path

import pytest

from data.errors import ScoringError
from data.local_hub import LocalHub
from data.records import ArchSignature, BaseModel, JobStatus
from data.store import Store
from tests.helpers.faulty_scorers import (
    GATED_VALUE,
    DyingScorer,
    RaisingScorer,
    noop_score,
    runs_per_job,
)
from tests.helpers.scorers import seed_noop_jobs

ROOT = Path(__file__).resolve().parents[2]
RESCUER_VALUE = 2.0


def wait_for(predicate, what: str, timeout: float = 60.0) -> None:
    """Poll until ``predicate()``; the timeout only keeps a broken run from hanging."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.02)


def is_stopped(pid: int) -> bool:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "T"


def stop_between_writes(proc: subprocess.Popen, db: Path) -> None:
    """SIGSTOP the worker at a moment it holds no write lock on the store (a heartbeat is a short write
    transaction; stopped inside one, it would block every other writer): stop, check, else resume and retry."""
    while True:
        proc.send_signal(signal.SIGSTOP)
        wait_for(lambda: is_stopped(proc.pid), "the worker to stop")
        conn = sqlite3.connect(db, timeout=0, isolation_level=None)
        try:
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("ROLLBACK")
            return
        except sqlite3.OperationalError:  # stopped inside a heartbeat's transaction
            proc.send_signal(signal.SIGCONT)
        finally:
            conn.close()


# ------------------------------------------------------------------------------------------- lost lease
@pytest.mark.parametrize("rescuer_finishes", [False, True], ids=["rescuer-still-running", "rescuer-done"])
def test_a_worker_that_lost_its_lease_writes_nothing(tmp_path, rescuer_finishes):
    """The worker's process stalls (SIGSTOP) while its scorer runs, so no heartbeat renews the lease; another
    worker claims the expired job (and, in one case, finishes it). Resumed, the first worker's scorer returns its
    scores: none is written, and the job stays the other worker's."""
    db, gate = tmp_path / "q.db", tmp_path / "gate"
    gate.mkdir()
    store = seed_noop_jobs(db, 1)
    [job] = store.queue.jobs()
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.helpers.faulty_scorers", str(db), str(gate), "--lease", "1.0",
         "--name", "stalled"], cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: (gate / "started").exists() or proc.poll() is not None, "the scorer to start")
        assert proc.poll() is None, proc.communicate()
        assert store.queue.get_job(job.id).worker == "stalled"
        stop_between_writes(proc, db)

        deadline = time.monotonic() + 60  # only keeps a broken run from hanging
        while (rescued := store.queue.claim_job("rescuer", lease_s=600.0)) is None:  # until the lease has expired
            assert time.monotonic() < deadline, "the stalled worker's lease never expired"
            time.sleep(0.02)
        assert (rescued.id, rescued.attempts, rescued.worker) == (job.id, 2, "rescuer")
        if rescuer_finishes:
            store.queue.finish_job(job.id, [noop_score(rescued, "noop", RESCUER_VALUE)], worker="rescuer")
        (gate / "go").touch()
    finally:
        proc.send_signal(signal.SIGCONT)
    out, err = proc.communicate(timeout=60)

    assert proc.returncode == 0, err
    assert (gate / "returned").exists()  # the stalled worker's scorer did return its scores
    report = json.loads(out.splitlines()[-1])
    assert (report["done"], report["released"]) == (0, 0)
    [line] = report["lines"]
    assert ": lost in " in line and "not written" in line
    final = store.queue.get_job(job.id)
    assert final.worker == "rescuer" and final.attempts == 2
    values = [s.value for s in store.scores()]
    if rescuer_finishes:
        assert final.status is JobStatus.DONE and values == [RESCUER_VALUE]  # the rescuer's, not overwritten
    else:
        assert final.status is JobStatus.RUNNING and values == []
        assert final.error.startswith("lease expired: its worker stopped before finishing (attempt 1)")
        assert "stalled" not in final.error  # no worker's name (host:pid) in what users see
    assert GATED_VALUE not in values


# ------------------------------------------------------------------------------------------------ Ray
@pytest.fixture(scope="module")
def ray_world(tmp_path_factory):
    """A local Ray instance (one CPU) and a local Hub serving one base and one candidate."""
    import ray

    with LocalHub() as hub:
        base_sha = hub.add_model("org/base", files={"config.json": b"{}"})
        model_sha = hub.add_model("org/m-0", files={"config.json": b"{}"})
        ray.init(num_cpus=1, include_dashboard=False, runtime_env={"env_vars": {"PYTHONPATH": str(ROOT)}})
        try:
            yield {"hub": hub, "base_sha": base_sha, "model_sha": model_sha}
        finally:
            ray.shutdown()


def ray_store(ray_world, settings, tmp_path: Path) -> tuple:
    db = tmp_path / "q.db"
    s = replace(settings, db_path=db, cache_dir=tmp_path / "cache", hub_endpoint=ray_world["hub"].url,
                job_max_attempts=2)
    store = Store(db)
    store.upsert_base(BaseModel(repo_id="org/base", sha=ray_world["base_sha"], aliases=("org/base",),
                                signature=ArchSignature(model_type="bert", hidden_size=32, num_hidden_layers=2,
                                                        num_attention_heads=2, vocab_size=205)))
    store.queue.enqueue("org/m-0", ray_world["model_sha"], ["noop"], "org/base")
    return s, store


@pytest.mark.slow
@pytest.mark.parametrize(("kind", "error_text"), [("raises", "failed unexpectedly (RuntimeError)"),
                                                   ("dies", "failed unexpectedly (WorkerCrashedError)")])
def test_a_failed_or_lost_ray_task_counts_as_one_attempt(ray_world, settings, tmp_path, kind, error_text):
    from service.ray_driver import RayDriver

    s, store = ray_store(ray_world, settings, tmp_path)
    log = tmp_path / "runs.log"
    factory = partial(RaisingScorer, error=RuntimeError("CUDA out of memory"), log_path=str(log)) \
        if kind == "raises" else partial(DyingScorer, log_path=str(log))
    driver = RayDriver(store, s, address="local", scorer_factory=factory)
    key = f"org/m-0@{ray_world['model_sha']}"

    first = driver.run(max_jobs=1)
    [job] = store.queue.jobs()
    assert (job.status, job.attempts) == (JobStatus.PENDING, 1), job
    assert error_text in job.error and job.worker is None
    assert (first.done, first.failed, first.retried) == (0, 0, 1)
    assert runs_per_job(log) == {key: 1}  # Ray did not run it again behind the store's back

    second = driver.run(max_jobs=1)
    [job] = store.queue.jobs()
    assert (job.status, job.attempts) == (JobStatus.FAILED, 2), job  # job_max_attempts=2
    assert error_text in job.error and (second.failed, second.retried) == (1, 0)
    assert runs_per_job(log) == {key: 2}

    third = driver.run(once=True)
    assert (third.done, third.failed, third.retried) == (0, 0, 0)
    assert store.queue.get_job(job.id).attempts == 2 and runs_per_job(log) == {key: 2} and store.scores() == []


@pytest.mark.slow
def test_a_ray_task_s_scoring_error_fails_its_job_at_once(ray_world, settings, tmp_path):
    from service.ray_driver import RayDriver

    s, store = ray_store(ray_world, settings, tmp_path)
    log = tmp_path / "runs.log"
    factory = partial(RaisingScorer, error=ScoringError("no weights"), log_path=str(log))
    driver = RayDriver(store, s, address="local", scorer_factory=factory)
    report = driver.run(once=True)
    [job] = store.queue.jobs()
    assert (job.status, job.attempts) == (JobStatus.FAILED, 1) and job.error == "no weights"
    assert (report.failed, report.retried) == (1, 0) and sum(runs_per_job(log).values()) == 1
