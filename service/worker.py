"""The scoring worker: claim a job, fetch the candidate and its base at their pinned shas, score, write.

``Worker.run`` loops: claim the oldest PENDING job of its scorers (atomic: two workers never get the same
one), download both snapshots through huggingface_hub into the cache, run the scorer, and write all of
the job's scores with DONE in one transaction. A heartbeat thread renews the lease while the scorer runs;
a worker that died leaves a lease that expires, and the next claim puts the job back (``data/store/jobs``).
A scorer's LeaderboardError (a bad checkpoint, a model it cannot score) fails the job at once; anything
else (out of memory, the Hub down) is retried until ``job_max_attempts``. The error stored with the job is one
sentence for users (service/job_errors.py); the traceback goes to the log. A failure the store cannot record (full,
read-only, busy) leaves the job to its lease. SIGTERM/SIGINT release the running job untouched and stop the loop.
After a probe job the two-stage policy may queue intertraining for the base's top-K (service/stages.py). While the
queue is empty the worker purges personal data past its time every ``personal_purge_every_s``.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from data.errors import LeaderboardError, StoreError
from data.personal_record import PersonalRanking
from data.records import PERSONAL_JOB, Job, JobStatus, ModelRef, Score
from data.settings import Settings
from data.store import Store
from scoring import registry
from scoring.base import ScoringContext, ScoringJob
from service.job_errors import public_error

logger = logging.getLogger(__name__)
MARK_EVERY_S = 10.0  # an idle worker's sign of life in the store (Store.worker_alive allows 60 s)

Snapshot = Callable[[ModelRef], Path]
ScorerFactory = Callable[[str], object]


class Stopping(BaseException):  # noqa: N818 (a signal, not an error: BaseException so scorers cannot swallow it)
    """Raised in the worker's thread by SIGTERM/SIGINT."""


@dataclass
class WorkReport:
    done: int = 0
    failed: int = 0
    retried: int = 0
    released: int = 0
    seconds: float = 0.0
    lines: list[str] = field(default_factory=list)


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


def default_scorer_factory(settings: Settings, *, local_root: Path | None = None) -> ScorerFactory:
    """Scorer name -> the registered scorer, configured from settings (scoring/registry.py)."""
    return lambda name: registry.build(name, settings, local_root=local_root)


def scoring_job(store: Store, job: Job, snapshot: Snapshot) -> ScoringJob:
    """The job's candidate and base as local snapshot directories at their pinned shas."""
    base = store.get_base(job.base_id) if job.base_id else None
    if base is None:
        raise LeaderboardError(f"job {job.id}: base {job.base_id!r} is not in the store")
    model_dir = snapshot(ModelRef(job.repo_id, job.revision))
    return ScoringJob(repo_id=job.repo_id, revision=job.revision, model_dir=model_dir, base_id=base.repo_id,
                      base_revision=base.sha, base_dir=snapshot(ModelRef(base.repo_id, base.sha)))


def record_failure(store: Store, job: Job, worker: str, error: BaseException, max_attempts: int,
                   report: WorkReport) -> tuple[JobStatus | None, str]:
    """Map a job's exception to the queue: a StoreError means the result was not written (the lease was
    lost); a LeaderboardError (also inside a Ray task error's ``cause``) fails the job for good; anything
    else goes back to PENDING while attempts remain. The job stores one public sentence (``public_error``), the log
    the whole error. When the store refuses the failure itself (StoreError: full, read-only, busy) the job is left
    to its lease, which the next claim after it expires retries or fails. Returns (new status, detail for the log)."""
    cause = getattr(error, "cause", None) or error
    if isinstance(cause, StoreError):
        report.failed += 1
        return None, f"not written: {cause}"
    permanent = isinstance(cause, LeaderboardError)
    text = f"{type(cause).__name__}: {cause}"
    if not permanent:
        logger.error("job %d crashed", job.id, exc_info=cause)
    try:
        status = store.queue.fail_job(job.id, public_error(cause, hide=(worker,)), worker=worker, retry=not permanent,
                                max_attempts=max_attempts)
    except StoreError as e:
        report.failed += 1
        return None, f"failure not recorded, the job is left to its lease ({e}): {text}"
    report.retried += int(status is JobStatus.PENDING)
    report.failed += int(status is not JobStatus.PENDING)
    return status, f"{'will retry' if status is JobStatus.PENDING else 'failed'}: {text}"


def finish(store: Store, job: Job, scores: list[Score], worker: str, settings: Settings,
           report: WorkReport) -> tuple[JobStatus, str]:
    """Write a job's scores with DONE (raises StoreError when the lease was lost); after a prefilter job the
    two-stage policy may queue full runs for the base's top-K (service/stages.py)."""
    store.queue.finish_job(job.id, scores, worker=worker)
    report.done += 1
    if job.base_id and not registry.unknown([job.scorer]) and registry.is_prefilter(job.scorer):
        from service.stages import enqueue_stage2

        enqueue_stage2(store, job.base_id, settings.top_k)
    return JobStatus.DONE, f"{len(scores)} scores"


def finish_personal(store: Store, job: Job, result: PersonalRanking, worker: str, settings: Settings,
                    report: WorkReport) -> tuple[JobStatus, str]:
    """Write a personal ranking with DONE (raises StoreError when the lease was lost); its rows then go."""
    from service.personal import purge_personal_data

    store.requests.finish_personal(job.id, worker, result, settings.personal_keep_rows_s)
    purge_personal_data(store, Path(settings.cache_dir))  # the rows went: their features go too
    report.done += 1
    return JobStatus.DONE, f"{len(result.models)} models ranked"


class Heartbeat:
    """Renews a job's lease every ``lease_s / 3`` seconds in a daemon thread; ``lost`` once it could not."""

    def __init__(self, store: Store, job_id: int, worker: str, lease_s: float):
        self.store, self.job_id, self.worker, self.lease_s = store, job_id, worker, lease_s
        self.lost = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"heartbeat-{job_id}", daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self.lease_s / 3):
            try:
                if not self.store.queue.heartbeat(self.job_id, self.worker, self.lease_s):
                    self.lost = True
                    return
            except StoreError as e:  # a busy store: try again at the next beat
                logger.warning("heartbeat of job %d failed: %s", self.job_id, e)

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


class Worker:
    def __init__(self, store: Store, settings: Settings, *, scorers: Sequence[str] | None = None,
                 device: str = "cpu", snapshot: Snapshot | None = None, scorer_factory: ScorerFactory | None = None,
                 name: str | None = None, local_root: Path | None = None, verbose: bool = False,
                 run_workers: int = 1):
        self.store, self.settings, self.device, self.verbose = store, settings, device, verbose
        self.run_workers = run_workers  # fine-tuning runs side by side (scoring/run_pool.py)
        self.scorers = tuple(scorers) if scorers else None
        self.name = name or worker_name()
        from data.hub import HubClient

        # a personal ranking has a person waiting: one retry and a short backoff per model, then its sentence
        quick = HubClient(replace(settings, crawl_max_retries=1,
                                  crawl_backoff_max_s=min(2.0, settings.crawl_backoff_max_s)))
        self.snapshot = snapshot or HubClient(settings).snapshot
        self.personal_snapshot = snapshot or quick.snapshot
        self.quick_hub = quick
        self.make_scorer = scorer_factory or default_scorer_factory(settings, local_root=local_root)
        self._scorers: dict[str, object] = {}
        self._stopping = False
        self._purged_at = -float("inf")
        self._marked = -float("inf")

    # ------------------------------------------------------------------ signals
    def _on_signal(self, signum, frame) -> None:
        self._stopping = True
        raise Stopping(signal.Signals(signum).name)

    def install_signal_handlers(self) -> None:
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self._on_signal)

    # --------------------------------------------------------------------- loop
    def run(self, *, once: bool = False, max_jobs: int | None = None, poll_s: float = 2.0) -> WorkReport:
        """Work until the queue is empty (``once``), ``max_jobs`` jobs ran, or a signal arrives."""
        report, started = WorkReport(), time.perf_counter()
        try:
            while not self._stopping and (max_jobs is None or report.done + report.failed < max_jobs):
                job = self.store.queue.claim_job(self.name, self.scorers, self.settings.job_lease_s,
                                           self.settings.job_max_attempts)
                if job is None:
                    self.purge()
                    if once:
                        break
                    self._mark_alive()
                    time.sleep(poll_s)
                    continue
                self.run_job(job, report)
        except Stopping:
            pass
        report.seconds = time.perf_counter() - started
        return report

    def _mark_alive(self) -> None:
        """Tell the store (and so the page) that a worker is waiting, at most every ``MARK_EVERY_S``."""
        now = time.monotonic()
        if now - self._marked >= MARK_EVERY_S:
            self.store.queue.mark_worker_alive()
            self._marked = now

    def run_job(self, job: Job, report: WorkReport) -> JobStatus | None:
        """Run one claimed job to DONE, FAILED, back to PENDING (retry or release); one log line."""
        started = time.perf_counter()
        label = f"job {job.id} {job.scorer} {job.repo_id}@{job.revision[:8]} (attempt {job.attempts})"
        status: JobStatus | None
        try:
            with Heartbeat(self.store, job.id, self.name, self.settings.job_lease_s) as beat:
                outcome = self.personal(job) if job.scorer == PERSONAL_JOB else self.score(job)
            if beat.lost:
                raise StoreError("the lease was lost while scoring (another worker may have the job)")
            if job.scorer == PERSONAL_JOB:
                status, detail = finish_personal(self.store, job, outcome, self.name, self.settings, report)
            else:
                status, detail = finish(self.store, job, outcome, self.name, self.settings, report)
        except Stopping:
            report.released += int(self._release(job))
            logger.info("%s: released on signal", label)
            raise
        except Exception as e:  # noqa: BLE001 (any scorer crash: record it, retry while attempts remain)
            status, detail = record_failure(self.store, job, self.name, e, self.settings.job_max_attempts, report)
            if job.scorer == PERSONAL_JOB and status is JobStatus.FAILED:
                self._release_personal(job)
        line = f"{label}: {status.value if status else 'lost'} in {time.perf_counter() - started:.1f}s ({detail})"
        logger.info("%s", line)
        report.lines.append(line)
        return status

    def _release(self, job: Job) -> bool:
        """Give the job back untouched; False when the store refused (the job is then left to its lease)."""
        try:
            return self.store.queue.release_job(job.id, self.name)
        except StoreError as e:
            logger.error("job %d could not be released, it is left to its lease: %s", job.id, e)
            return False

    def _release_personal(self, job: Job) -> None:
        """A personal job failed for good: the user's rows go now, and their features with them."""
        from service.personal import purge_personal_data

        try:
            self.store.requests.release_personal_rows(job.id)
        except StoreError as e:  # the purge or the rows' cap deletes them later
            logger.warning("job %d: its personal rows could not be released now: %s", job.id, e)
        purge_personal_data(self.store, Path(self.settings.cache_dir))

    def purge(self) -> None:
        """At most every ``personal_purge_every_s``: delete personal data past its time (service/personal.py)."""
        from service.personal import purge_personal_data

        now = time.monotonic()
        if now - self._purged_at >= self.settings.personal_purge_every_s:
            self._purged_at = now
            purge_personal_data(self.store, Path(self.settings.cache_dir))

    def personal(self, job: Job) -> dict:
        """A personal ranking's job (service/personal.py): every candidate on the user's rows."""
        from service.personal import pin_commit, run_personal

        return run_personal(self.store, job, self.personal_snapshot, self.settings, device=self.device,
                            cache_dir=Path(self.settings.cache_dir), pin=pin_commit(self.quick_hub, self.settings))

    def score(self, job: Job) -> list[Score]:
        if job.scorer not in self._scorers:
            self._scorers[job.scorer] = self.make_scorer(job.scorer)
        scorer = self._scorers[job.scorer]
        ctx = ScoringContext.for_store(self.store, device=self.device, verbose=self.verbose,
                                       cache_dir=Path(self.settings.cache_dir), run_workers=self.run_workers)
        return scorer.score(scoring_job(self.store, job, self.snapshot), ctx)
