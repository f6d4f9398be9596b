"""The two-stage policy of the model-recycling site, as one synchronous driver over a base's candidates.

Stage 1 (``probe``): the linear probe for every crawled candidate of the base (and the base itself).
Stage 2 (``full``): intertraining only for the top-K candidates by probe accuracy.
``probe_gain_correlation`` reports how well stage 1 predicts stage 2 (IBM found Spearman 0.50).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from data.records import CandidateStatus, JobStatus, ModelRef
from data.store import Store
from scoring import registry
from scoring.base import ScoringContext, ScoringJob

logger = logging.getLogger(__name__)

Snapshot = Callable[[ModelRef], Path]


def model_job(store: Store, base_id: str, repo_id: str, revision: str, snapshot: Snapshot) -> ScoringJob:
    """A scorer's job for ``repo_id@revision`` against the stored base, both checkpoints fetched by ``snapshot``."""
    base = store.get_base(base_id)
    return ScoringJob(repo_id=repo_id, revision=revision, model_dir=snapshot(ModelRef(repo_id, revision)),
                      base_id=base.repo_id, base_revision=base.sha, base_dir=snapshot(ModelRef(base.repo_id, base.sha)))


def probe_candidates(store: Store, base_id: str, scorer, snapshot: Snapshot, ctx: ScoringContext) -> int:
    """Stage 1: probe every OK candidate (and the base) that has no probe score at its current sha."""
    base = store.get_base(base_id)
    if base is None:
        raise KeyError(f"{base_id} has not been crawled; run: python -m data crawl --base {base_id}")
    todo = [(base.repo_id, base.sha)] + [(c.repo_id, c.sha) for c in store.candidates(base.repo_id, CandidateStatus.OK)]
    done = 0
    for repo_id, sha in todo:
        if any(s.revision == sha for s in store.scores(repo_id=repo_id, scorer=scorer.name)):
            continue
        store.add_scores(scorer.score(model_job(store, base.repo_id, repo_id, sha, snapshot), ctx))
        done += 1
    logger.info("stage 1 for %s: probed %d models", base.repo_id, done)
    return done


def top_by_probe(store: Store, base_id: str, k: int) -> list[tuple[str, str]]:
    """(repo_id, sha) of the K OK candidates with the best probe accuracy at their current sha."""
    base = store.get_base(base_id)
    ranked = []
    for c in store.candidates(base.repo_id, CandidateStatus.OK):
        probes = [s.value for s in store.scores(repo_id=c.repo_id, scorer=registry.prefilter()) if s.revision == c.sha]
        if probes:
            ranked.append((-max(probes), c.repo_id, c.sha))
    return [(repo_id, sha) for _, repo_id, sha in sorted(ranked)[:k]]


def score_top_k(store: Store, base_id: str, k: int, scorer, snapshot: Snapshot, ctx: ScoringContext) -> int:
    """Stage 2: the expensive scorer for the top-K candidates by probe; returns how many were scored."""
    chosen = top_by_probe(store, base_id, k)
    for repo_id, sha in chosen:
        store.add_scores(scorer.score(model_job(store, base_id, repo_id, sha, snapshot), ctx))
    logger.info("stage 2 for %s: %s on the top %d by probe", base_id, scorer.name, len(chosen))
    return len(chosen)


def enqueue_stage2(store: Store, base_id: str, k: int, scorers: tuple[str, ...] | None = None) -> int:
    """The queue's two-stage policy: once no probe job of the base is PENDING or RUNNING, queue the expensive
    scorers (default: the gain scorer, scoring/registry.py) for its top-K candidates by probe (idempotent).
    Returns how many jobs were created."""
    if store.get_base(base_id) is None:
        return 0
    scorers = scorers or (registry.gain_scorer(),)
    busy = [j for j in store.queue.jobs(scorer=registry.prefilter(), base_id=base_id)
            if j.status in (JobStatus.PENDING, JobStatus.RUNNING)]
    if busy:
        return 0
    created = 0
    for repo_id, sha in top_by_probe(store, base_id, k):
        before = {j.id for j in store.queue.jobs(repo_id=repo_id) if j.revision == sha}
        created += len({j.id for j in store.queue.enqueue(repo_id, sha, scorers, base_id)} - before)
    if created:
        logger.info("stage 2 for %s: queued %d jobs for the top %d by probe", base_id, created, k)
    return created
