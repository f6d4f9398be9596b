"""Scale-out on Ray: the driver claims jobs from the store and runs each as a Ray task; it alone writes.

Each task asks for ``num_gpus`` GPUs (1 with ``--device cuda``) or one CPU, downloads the candidate and its
base at their pinned shas on its own node (cache dir from settings), runs the scorer and returns the
scores. The driver keeps as many tasks in flight as the cluster has room for, renews their leases while
they run, writes each result with DONE in one transaction, and maps a task's failure to the job's
attempts exactly as the in-process worker does (a LeaderboardError fails the job; anything else, including
a lost node, is retried until ``job_max_attempts``). Every node needs this project importable (the same
commit on ``PYTHONPATH``) and its requirements installed; the store lives with the driver only.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from pathlib import Path

from data.errors import LeaderboardError
from data.records import PERSONAL_JOB, BaseModel, Job, Score
from data.settings import Settings
from data.store import Store
from service.worker import ScorerFactory, WorkReport, default_scorer_factory, finish, record_failure, worker_name

logger = logging.getLogger(__name__)
ROOT = Path(__file__).resolve().parents[1]


def run_task(job: Job, base: BaseModel, settings: Settings, device: str, known: frozenset,
             scorer_factory: ScorerFactory | None, local_root: Path | None) -> list[Score]:
    """What a Ray task runs on its node: snapshots, scorer, scores. ``known`` answers ``has_score`` (the
    base's stored score keys) since a task cannot read the driver's store."""
    from data.hub import HubClient
    from data.records import ModelRef
    from scoring.base import ScoringContext, ScoringJob

    snapshot = HubClient(settings).snapshot
    make = scorer_factory or default_scorer_factory(settings, local_root=local_root)
    scoring_job = ScoringJob(repo_id=job.repo_id, revision=job.revision,
                             model_dir=snapshot(ModelRef(job.repo_id, job.revision)), base_id=base.repo_id,
                             base_revision=base.sha, base_dir=snapshot(ModelRef(base.repo_id, base.sha)))
    ctx = ScoringContext.for_known(known, device=device, cache_dir=Path(settings.cache_dir))
    return make(job.scorer).score(scoring_job, ctx)


class RayDriver:
    def __init__(self, store: Store, settings: Settings, *, address: str | None = "auto",
                 scorers: Sequence[str] | None = None, device: str = "cpu", num_gpus: float | None = None,
                 scorer_factory: ScorerFactory | None = None, local_root: Path | None = None,
                 max_in_flight: int | None = None, init_kwargs: dict | None = None):
        import ray

        self.ray, self.store, self.settings, self.device = ray, store, settings, device
        self.scorers = tuple(scorers) if scorers else None
        self.num_gpus = num_gpus if num_gpus is not None else (1.0 if device == "cuda" else 0.0)
        self.scorer_factory, self.local_root = scorer_factory, local_root
        self.name = f"ray-driver:{worker_name()}"
        if not ray.is_initialized():
            kwargs = dict(init_kwargs or {})
            if address in (None, "local"):  # a fresh local instance; tasks import the project from here
                kwargs.setdefault("runtime_env", {"env_vars": {"PYTHONPATH": str(ROOT)}})
                address = None
            ray.init(address=address, include_dashboard=False, logging_level=logging.WARNING, **kwargs)
        resources = ray.cluster_resources()
        room = int(resources.get("GPU", 0) // self.num_gpus) if self.num_gpus else int(resources.get("CPU", 1))
        self.max_in_flight = max(1, max_in_flight or room)
        self._task = ray.remote(run_task)

    def _submit(self, job: Job):
        base = self.store.get_base(job.base_id) if job.base_id else None
        if base is None:
            raise LeaderboardError(f"job {job.id}: base {job.base_id!r} is not in the store")
        known = {(s.repo_id, s.revision, s.scorer, s.metric, s.target, s.seed, s.config_hash): s.status
                 for s in self.store.scores(repo_id=base.repo_id)}
        options = {"num_gpus": self.num_gpus, "num_cpus": 1, "max_retries": 0}
        return self._task.options(**options).remote(job, base, self.settings, self.device, known,
                                                    self.scorer_factory, self.local_root)

    def run(self, *, once: bool = False, max_jobs: int | None = None, poll_s: float = 2.0) -> WorkReport:
        report, started = WorkReport(), time.perf_counter()
        in_flight: dict = {}
        claimed = 0
        while True:
            while len(in_flight) < self.max_in_flight and (max_jobs is None or claimed < max_jobs):
                # personal rankings run in a worker process (``python -m scoring work``), never as Ray tasks
                job = self.store.queue.claim_job(self.name, self.scorers, self.settings.job_lease_s,
                                           self.settings.job_max_attempts, exclude=(PERSONAL_JOB,))
                if job is None:
                    break
                claimed += 1
                try:
                    in_flight[self._submit(job)] = (job, time.perf_counter())
                except LeaderboardError as e:  # failed for good, its error made public as a worker's is
                    record_failure(self.store, job, self.name, e, self.settings.job_max_attempts, report)
            if not in_flight:
                if once or (max_jobs is not None and claimed >= max_jobs):
                    break
                time.sleep(poll_s)
                continue
            ready, _ = self.ray.wait(list(in_flight), num_returns=1, timeout=self.settings.job_lease_s / 3)
            for job, _ in in_flight.values():
                self.store.queue.heartbeat(job.id, self.name, self.settings.job_lease_s)
            for ref in ready:
                job, t0 = in_flight.pop(ref)
                self._collect(ref, job, t0, report)
        report.seconds = time.perf_counter() - started
        return report

    def _collect(self, ref, job: Job, t0: float, report: WorkReport) -> None:
        label = f"job {job.id} {job.scorer} {job.repo_id}@{job.revision[:8]} (attempt {job.attempts}, ray)"
        try:
            status, detail = finish(self.store, job, self.ray.get(ref), self.name, self.settings, report)
        except Exception as e:  # noqa: BLE001 (RayTaskError wraps the task's exception; a lost node raises too)
            status, detail = record_failure(self.store, job, self.name, e, self.settings.job_max_attempts, report)
        line = f"{label}: {status.value if status else 'lost'} in {time.perf_counter() - t0:.1f}s ({detail})"
        logger.info("%s", line)
        report.lines.append(line)
