"""Scorers and worker processes for the service tests (importable by spawned processes and Ray workers).

``NoopScorer`` sleeps, appends "job-key pid" to a log file (so a test can count how often each job really
ran) and returns one deterministic score. ``TinyScorers`` is a picklable scorer factory with the real
linear-probe and free-energy scorers sized for tiny models. ``python -m tests.helpers.scorers DB ...`` runs
a worker process over noop jobs.
"""

from __future__ import annotations

import argparse
import os
import time
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path

from data.records import BaseModel, Score
from data.settings import Settings
from data.store import Store

BASE = "org/base"


@dataclass(frozen=True)
class NoopScorer:
    name: str
    sleep_s: float = 0.0
    log_path: str | None = None

    def score(self, job, ctx) -> list[Score]:
        time.sleep(self.sleep_s)
        if self.log_path:
            with open(self.log_path, "a") as f:  # one short line: O_APPEND writes do not interleave
                f.write(f"{job.repo_id}@{job.revision}:{self.name} {os.getpid()}\n")
        return [Score(repo_id=job.repo_id, revision=job.revision, scorer=self.name, metric="noop",
                      value=float(int(job.revision[:6], 16)), config_hash="noop", base_id=job.base_id)]


@dataclass(frozen=True)
class TinyScorers:
    """linear_probe on the tiny suite's "cats" target and free_energy on a word corpus, both small."""

    data_root: str
    corpus_path: str

    def __call__(self, name: str):
        from scoring import registry
        from scoring.config import PROBE, FreeEnergyConfig, LinearProbeConfig, SGLDConfig

        sgld = SGLDConfig(epsilon=1e-4, gamma=100.0, num_chains=2, num_draws=10, num_burnin=2, batch_size=8)
        configs = {"linear_probe": LinearProbeConfig(probe=replace(PROBE, max_train_examples=120), target="cats"),
                   "free_energy": FreeEnergyConfig(sgld=sgld, corpus=self.corpus_path, num_sequences=32, seq_len=16,
                                                   head_sequences=32, head_max_steps=5, halving_check=False)}
        return registry.build(name, Settings(), config=configs[name], local_root=Path(self.data_root))


def dummy_snapshot(ref) -> Path:
    return Path("/nonexistent") / ref.repo_id


def seed_noop_jobs(db_path: Path, n: int, scorer: str = "noop") -> Store:
    """A store with a base and ``n`` PENDING noop jobs."""
    from data.records import ArchSignature
    from tests.helpers.store_procs import sha_of

    store = Store(db_path)
    store.upsert_base(BaseModel(repo_id=BASE, sha=sha_of("base"), aliases=(BASE,),
                                signature=ArchSignature(model_type="bert", hidden_size=32, num_hidden_layers=2,
                                                        num_attention_heads=2, vocab_size=205)))
    for i in range(n):
        store.queue.enqueue(f"org/m-{i:04d}", sha_of(f"m-{i}"), [scorer], BASE)
    return store


def main() -> None:
    """A worker process over noop jobs: python -m tests.helpers.scorers DB --sleep S --log PATH --lease L."""
    from data.settings import Settings
    from service.worker import Worker

    parser = argparse.ArgumentParser()
    parser.add_argument("db")
    parser.add_argument("--sleep", type=float, default=0.0)
    parser.add_argument("--log")
    parser.add_argument("--lease", type=float, default=600.0)
    parser.add_argument("--once", action="store_true")
    args = parser.parse_args()
    settings = replace(Settings(), db_path=Path(args.db), job_lease_s=args.lease)
    worker = Worker(Store(settings.db_path), settings, snapshot=dummy_snapshot,
                    scorer_factory=partial(NoopScorer, sleep_s=args.sleep, log_path=args.log))
    worker.install_signal_handlers()
    report = worker.run(once=args.once, poll_s=0.1)
    print(f"done {report.done} released {report.released} seconds {report.seconds:.3f}", flush=True)


if __name__ == "__main__":
    main()
