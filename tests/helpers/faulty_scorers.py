"""Scorers that misbehave on cue, for the service's failure tests (importable by worker processes and Ray workers).

``GatedScorer`` touches ``started`` in its directory, waits until the test creates ``go``, touches ``returned`` and
returns one score: a worker whose job the test can hold mid-scoring. ``RaisingScorer`` raises the error it was given;
``DyingScorer`` ends its process with ``os._exit(1)`` (a node lost under a task). Each appends "job-key pid" to a
log before misbehaving, so a test counts how often a job really ran. ``python -m tests.helpers.faulty_scorers DB
DIR --lease S --name NAME`` is one worker process with the gated scorer over a store's queue (``--once``).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import time
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from data.records import Score

GATED_VALUE = 1.0  # the value of the gated scorer's one score (a rescuer writes another)


def _log(log_path: str | None, job) -> None:
    if log_path:
        with open(log_path, "a") as f:  # one short line: O_APPEND writes do not interleave
            f.write(f"{job.repo_id}@{job.revision} {os.getpid()}\n")


def noop_score(job, scorer: str, value: float) -> Score:
    return Score(repo_id=job.repo_id, revision=job.revision, scorer=scorer, metric="noop", value=value,
                 config_hash="noop", base_id=job.base_id)


@dataclass(frozen=True)
class GatedScorer:
    name: str
    gate_dir: str

    def score(self, job, ctx) -> list[Score]:
        gate = Path(self.gate_dir)
        (gate / "started").write_text(f"{job.repo_id}@{job.revision} {os.getpid()}\n")
        while not (gate / "go").exists():
            time.sleep(0.02)
        scores = [noop_score(job, self.name, GATED_VALUE)]
        (gate / "returned").write_text(f"{len(scores)} scores\n")
        return scores


@dataclass(frozen=True)
class RaisingScorer:
    name: str
    error: Exception
    log_path: str | None = None

    def score(self, job, ctx) -> list[Score]:
        _log(self.log_path, job)
        raise self.error


@dataclass(frozen=True)
class DyingScorer:
    name: str
    log_path: str | None = None

    def score(self, job, ctx) -> list[Score]:
        _log(self.log_path, job)
        os._exit(1)


def runs_per_job(log: Path) -> dict[str, int]:
    """How often each job's scorer started, from a log the scorers above append to."""
    counts: dict[str, int] = {}
    for line in log.read_text().splitlines() if log.exists() else []:
        counts[line.split()[0]] = counts.get(line.split()[0], 0) + 1
    return counts


def main() -> None:
    from data.settings import Settings
    from data.store import Store
    from service.worker import Worker
    from tests.helpers.scorers import dummy_snapshot

    parser = argparse.ArgumentParser(prog="python -m tests.helpers.faulty_scorers")
    parser.add_argument("db", type=Path)
    parser.add_argument("gate_dir")
    parser.add_argument("--lease", type=float, required=True)
    parser.add_argument("--name", required=True)
    args = parser.parse_args()
    settings = dataclasses.replace(Settings(), db_path=args.db, job_lease_s=args.lease)
    factory = partial(GatedScorer, gate_dir=args.gate_dir)
    worker = Worker(Store(args.db), settings, snapshot=dummy_snapshot, scorer_factory=factory, name=args.name)
    report = worker.run(once=True)
    print(json.dumps({"done": report.done, "failed": report.failed, "retried": report.retried,
                      "released": report.released, "lines": report.lines}), flush=True)


if __name__ == "__main__":
    main()
