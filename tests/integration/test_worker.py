"""The scoring service end to end: crawl a local Hub of tiny models, work the queue in-process and on a local
Ray instance (same scores), the two-stage policy, and workers as real processes (kill -9, several at once,
SIGTERM)."""

from __future__ import annotations

import logging
import os
import random
import signal
import socket
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest

from data.crawler import crawl
from data.errors import ScoringError, StoreFull
from data.hub import HubClient
from data.records import JobStatus
from data.store import Store
from data.store.jobs import JobQueue
from service.worker import Worker, WorkReport
from tests.helpers.scorers import BASE as BASE_ID
from tests.helpers.scorers import NoopScorer, TinyScorers, dummy_snapshot, seed_noop_jobs
from tests.helpers.tiny_models import WORDS, shared_root, tiny_family_hub
from tests.helpers.tiny_suite import write_tiny_suite

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
BASE = "tiny/bert-base"
TAGS = ("transformers", "bert", f"base_model:{BASE}", f"base_model:finetune:{BASE}")
SCORERS = ("linear_probe", "free_energy")


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("worker")
    hub = tiny_family_hub(root, BASE, models=shared_root(tmp_path_factory))
    rng = random.Random(0)
    corpus = root / "corpus.txt"
    corpus.write_text("\n".join(" ".join(rng.choices(WORDS, k=rng.randint(5, 15))) for _ in range(200)))
    with hub:
        yield {"hub": hub, "factory": TinyScorers(str(write_tiny_suite(root / "data", n_train=120, n_test=60)),
                                                  str(corpus))}


def crawled_store(world, settings, db: Path):
    s = replace(settings, hub_endpoint=world["hub"].url, db_path=db, crawl_scorers=SCORERS, top_k=2,
                cache_dir=db.parent / "cache")
    store = Store(db)
    crawl(BASE, HubClient(s), store, s)
    return s, store


def score_values(store: Store) -> dict:
    return {(s.repo_id, s.revision, s.scorer, s.metric, s.target, s.seed, s.config_hash): s.value
            for s in store.scores(source="project")}


def test_worker_scores_every_queued_job_then_queues_stage_two(world, settings, tmp_path):
    s, store = crawled_store(world, settings, tmp_path / "a.db")
    assert store.queue.queue_stats().pending == 3 * len(SCORERS)
    worker = Worker(store, s, scorers=SCORERS, scorer_factory=world["factory"])
    report = worker.run(once=True)
    assert (report.done, report.failed) == (6, 0), report.lines
    assert all(j.status is JobStatus.DONE and j.attempts == 1 for j in store.queue.jobs(scorer="free_energy"))
    fe = [x for x in store.scores(scorer="free_energy") if x.metric == "free_energy"]
    assert {x.repo_id for x in fe} == {BASE, "org/cand-0", "org/cand-1", "org/cand-2"}  # the base scored once, too
    # stage 2: the probes are done, so intertraining is queued for the top 2 by probe accuracy
    probes = {x.repo_id: x.value for x in store.scores(scorer="linear_probe")}
    top = sorted(probes, key=lambda r: (-probes[r], r))[:2]
    assert sorted(j.repo_id for j in store.queue.jobs(JobStatus.PENDING, scorer="intertraining")) == sorted(top)
    assert len(report.lines) == 6 and all(": DONE in " in line for line in report.lines)


def test_ray_tasks_give_the_same_scores_as_the_in_process_worker(world, settings, tmp_path):
    ray = pytest.importorskip("ray")
    from service.ray_driver import RayDriver

    s1, local = crawled_store(world, settings, tmp_path / "local" / "a.db")
    Worker(local, s1, scorers=SCORERS, scorer_factory=world["factory"]).run(once=True)
    s2, remote = crawled_store(world, settings, tmp_path / "ray" / "b.db")
    try:
        driver = RayDriver(remote, s2, address="local", scorers=SCORERS, scorer_factory=world["factory"],
                           init_kwargs={"num_cpus": 2})
        report = driver.run(once=True)
    finally:
        ray.shutdown()
    assert (report.done, report.failed) == (6, 0), report.lines
    expected, got = score_values(local), score_values(remote)
    assert got.keys() == expected.keys()
    for key, value in expected.items():
        assert got[key] == pytest.approx(value, rel=1e-4, abs=1e-6), key
    assert {j.status for j in remote.queue.jobs()} == {JobStatus.DONE, JobStatus.PENDING}  # stage 2 queued, not run
    assert all(j.worker.startswith("ray-driver:") for j in remote.queue.jobs(JobStatus.DONE))


class _Raises:
    def __init__(self, error: Exception):
        self.error, self.name = error, "noop"

    def __call__(self, name):
        return self

    def score(self, job, ctx):
        raise self.error


@pytest.mark.parametrize(("error", "final", "attempts"), [(ScoringError("no safetensors weights"), JobStatus.FAILED, 1),
                                                           (RuntimeError("CUDA out of memory"), JobStatus.FAILED, 3)])
def test_scorer_errors_fail_at_once_and_crashes_retry_until_max_attempts(settings, tmp_path, error, final, attempts):
    store = seed_noop_jobs(tmp_path / "q.db", 1)
    worker = Worker(store, replace(settings, job_max_attempts=3), snapshot=dummy_snapshot,
                    scorer_factory=_Raises(error))
    report = worker.run(once=True)
    [job] = store.queue.jobs()
    shown = str(error) if isinstance(error, ScoringError) else "failed unexpectedly (RuntimeError)"
    assert job.status is final and job.attempts == attempts and shown in job.error
    assert report.failed == 1 and report.retried == attempts - 1


def _deep_crash():
    return {}["/root/secret/path.py"]  # a KeyError whose message is a server path, with a traceback


class _Crashes(_Raises):
    def score(self, job, ctx):
        try:
            _deep_crash()
        except KeyError as e:
            raise self.error from e


@pytest.mark.parametrize("error", [RuntimeError(f"failed in /root/secret/path.py on {socket.gethostname()}"),
                                   ScoringError(f"/root/secret/path.py failed on {socket.gethostname()}\nline 2")])
def test_the_stored_error_is_one_sentence_without_path_host_or_traceback(settings, tmp_path, caplog, error):
    store = seed_noop_jobs(tmp_path / "q.db", 1)
    worker = Worker(store, replace(settings, job_max_attempts=1), snapshot=dummy_snapshot,
                    scorer_factory=_Crashes(error))
    with caplog.at_level(logging.ERROR, logger="service.worker"):
        worker.run(once=True)
    [job] = store.queue.jobs()
    assert job.status is JobStatus.FAILED and job.error and "\n" not in job.error
    for secret in ("/", "Traceback", "secret", socket.gethostname(), worker.name, str(os.getpid())):
        assert secret not in job.error, secret
    if isinstance(error, RuntimeError):  # a crash: its class, and the whole of it in the log
        assert job.error == "The scoring worker failed unexpectedly (RuntimeError); it has been logged."
        assert "Traceback" in caplog.text and "/root/secret/path.py" in caplog.text
    else:
        assert job.error == "<path> failed on <worker>"


class _FullQueue(JobQueue):
    """A real queue whose disk is full when a failure is recorded: ``fail_job`` writes nothing and raises."""

    def fail_job(self, job_id, error, **kwargs):
        raise StoreFull("The disk holding the store is full: nothing was written.")


class _FullStore(Store):
    def __init__(self, path):
        super().__init__(path)
        self.queue = _FullQueue(self)


@pytest.mark.parametrize(("max_attempts", "after_lease"), [(2, JobStatus.RUNNING), (1, JobStatus.FAILED)])
def test_a_failure_the_store_cannot_record_leaves_the_job_to_its_lease(settings, tmp_path, max_attempts,
                                                                      after_lease):
    seed_noop_jobs(tmp_path / "q.db", 1)
    s = replace(settings, job_lease_s=0.3, job_max_attempts=max_attempts)
    worker = Worker(_FullStore(tmp_path / "q.db"), s, snapshot=dummy_snapshot,
                    scorer_factory=_Raises(RuntimeError("CUDA out of memory")))
    report = worker.run(once=True)  # returns: the worker does not crash
    assert report.failed == 1 and "left to its lease" in report.lines[0]
    store = Store(tmp_path / "q.db")
    [job] = store.queue.jobs()
    assert job.status is JobStatus.RUNNING and job.attempts == 1  # nothing recorded: its lease will tell
    time.sleep(0.4)
    reclaimed = store.queue.claim_job("w2", lease_s=60, max_attempts=max_attempts)  # any claim expires the lease
    job = store.queue.get_job(job.id)
    assert job.status is after_lease
    if after_lease is JobStatus.RUNNING:
        assert reclaimed.id == job.id and job.attempts == 2 and job.worker == "w2"
    else:
        assert reclaimed is None and "gave up after 1 attempts" in job.error


def test_an_idle_worker_purges_personal_data_past_its_time(settings, tmp_path):
    from service.personal import FEATURES_DIR

    store = seed_noop_jobs(tmp_path / "q.db", 0)
    store.requests.create_personal(base_id=BASE_ID, data_hash="a" * 64, rows_json="{}", source="upload:x.csv",
                                   summary={}, top_k=1, ttl_s=3600.0, rows_max_s=0.01)
    orphan = settings.cache_dir / FEATURES_DIR / ("a" * 64)
    orphan.mkdir(parents=True)
    (orphan / "m.pt").write_bytes(b"features")
    time.sleep(0.02)
    Worker(store, settings, scorers=["noop"], snapshot=dummy_snapshot, scorer_factory=NoopScorer).run(once=True)
    assert store.requests.personal_row_sets() == 0 and not orphan.exists()


# ---------------------------------------------------------------- real worker processes
def start_worker(db: Path, log: Path, *, sleep: float, lease: float = 600.0, once: bool = True) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "tests.helpers.scorers", str(db), "--sleep", str(sleep), "--log", str(log),
           "--lease", str(lease)] + (["--once"] if once else [])
    return subprocess.Popen(cmd, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


def wait_for(predicate, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.05)


def runs_per_job(log: Path) -> dict[str, int]:
    counts: dict[str, int] = {}
    for line in log.read_text().splitlines() if log.exists() else []:
        key = line.split()[0]
        counts[key] = counts.get(key, 0) + 1
    return counts


def test_a_killed_worker_s_job_runs_again_after_its_lease_and_completes_exactly_once(tmp_path):
    store = seed_noop_jobs(tmp_path / "q.db", 3)
    log = tmp_path / "runs.log"
    victim = start_worker(tmp_path / "q.db", log, sleep=3.0, lease=1.5)
    wait_for(lambda: store.queue.queue_stats().running == 1)
    [held] = store.queue.jobs(JobStatus.RUNNING)
    victim.send_signal(signal.SIGKILL)
    victim.wait(10)
    assert store.queue.get_job(held.id).status is JobStatus.RUNNING and not store.scores()  # nothing partial written
    rescuer = start_worker(tmp_path / "q.db", log, sleep=0.2, lease=1.5, once=False)
    try:
        wait_for(lambda: store.queue.queue_stats().done == 3)
    finally:
        rescuer.send_signal(signal.SIGTERM)
        rescuer.wait(10)
    assert store.queue.get_job(held.id).attempts == 2
    assert set(runs_per_job(log).values()) == {1} and len(runs_per_job(log)) == 3  # each job ran to the end once
    assert len(store.scores()) == 3


def test_several_workers_on_one_store_do_every_job_exactly_once(tmp_path):
    store = seed_noop_jobs(tmp_path / "q.db", 60)
    log = tmp_path / "runs.log"
    workers = [start_worker(tmp_path / "q.db", log, sleep=0.02) for _ in range(3)]
    outputs = [w.communicate(timeout=120)[0] for w in workers]
    assert all(w.returncode == 0 for w in workers), outputs
    counts = runs_per_job(log)
    assert len(counts) == 60 and set(counts.values()) == {1}
    assert all(j.status is JobStatus.DONE and j.attempts == 1 for j in store.queue.jobs())
    assert sum(int(o.splitlines()[-1].split()[1]) for o in outputs) == 60  # the workers' own counts add up
    pids = {line.split()[1] for line in log.read_text().splitlines()}
    assert len(pids) >= 2  # the work really was shared


def test_sigterm_releases_the_running_job_untouched(tmp_path):
    store = seed_noop_jobs(tmp_path / "q.db", 1)
    log = tmp_path / "runs.log"
    worker = start_worker(tmp_path / "q.db", log, sleep=30.0)
    wait_for(lambda: store.queue.queue_stats().running == 1)
    started = time.monotonic()
    worker.send_signal(signal.SIGTERM)
    out = worker.communicate(timeout=20)[0]
    assert worker.returncode == 0 and time.monotonic() - started < 10, out
    assert "released 1" in out
    [job] = store.queue.jobs()
    assert job.status is JobStatus.PENDING and job.attempts == 0 and not log.exists()


def test_work_reports_do_not_share_their_lines():
    first, second = WorkReport(), WorkReport()
    first.lines.append("job 1 done")
    assert second.lines == [] and (first.done, first.failed, first.retried) == (0, 0, 0)
