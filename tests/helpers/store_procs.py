"""Functions run in separate processes by the store's concurrency tests (importable, spawn-safe)."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from data.records import Candidate, CandidateStatus, Kind, Match, Score
from data.store import Store

BASE_ID = "org/base"
SCORERS = ("linear_probe", "free_energy")


def sha_of(text: str) -> str:
    return hashlib.sha1(text.encode()).hexdigest()


def make_candidate(repo_id: str, *, version: int = 0, skipped: bool = False) -> Candidate:
    return Candidate(
        repo_id=repo_id, base_id=BASE_ID, sha=sha_of(f"{repo_id}@{version}"), kind=Kind.FINETUNE,
        match=Match.TAG, status=CandidateStatus.SKIPPED if skipped else CandidateStatus.OK,
        downloads=version, tags=("transformers",),
    )


def write_candidates(db_path: str, writer: int, count: int, batch: int) -> None:
    store = Store(Path(db_path))
    repo_ids = [f"w{writer}/model-{i:04d}" for i in range(count)]
    for start in range(0, count, batch):
        store.save_candidates([make_candidate(r) for r in repo_ids[start:start + batch]], SCORERS)


def write_forever(db_path: str, batch: int) -> None:
    """Writes batches until killed."""
    store = Store(Path(db_path))
    n = 0
    while True:
        store.save_candidates([make_candidate(f"forever/m-{n + i:06d}") for i in range(batch)], SCORERS)
        n += batch


def claim_until_empty(db_path: str) -> list[int]:
    store = Store(Path(db_path))
    worker = f"pid-{os.getpid()}"
    claimed = []
    while (job := store.queue.claim_job(worker)) is not None:
        claimed.append(job.id)
        store.queue.finish_job(job.id, [Score(repo_id=job.repo_id, revision=job.revision, scorer=job.scorer,
                                        metric="noop", value=float(job.id), config_hash="h")])
    return claimed
