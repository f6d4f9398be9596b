"""The job queue, part of the store: PENDING -> RUNNING -> DONE | FAILED (or CANCELLED when superseded).

A worker claims a job atomically (one ``BEGIN IMMEDIATE`` transaction: two workers never get the same job),
holds it under a lease that it renews by heartbeats, and finishes it by writing all of the job's scores
and DONE in one transaction. A job whose lease runs out (its worker died) goes back to PENDING when the
next claim runs; after ``max_attempts`` attempts it is FAILED with the last error (a personal ranking's job then
releases its rows in the same transaction). Only the worker named on a RUNNING job may heartbeat, finish, fail or
release it, so a worker that lost its lease cannot write. The public list (``public_jobs``, ``queue_stats``) leaves
personal rankings' jobs out; the claim takes them like any other.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from data.errors import StoreError
from data.records import PERSONAL_JOB, Job, JobStatus, Score
from data.store.db import Database
from data.store.personal import purge, release_rows
from data.store.rows import insert_scores, job_of, ts, utcnow
from data.store.schema import JOB_COLUMNS

logger = logging.getLogger(__name__)

_RUNNING, _PENDING = JobStatus.RUNNING.value, JobStatus.PENDING.value
WORKER_ALIVE_S = 60.0  # an idle worker marks itself every MARK_EVERY_S (service/worker.py); this allows misses


@dataclass(frozen=True, slots=True)
class QueueStats:
    pending: int
    running: int
    done: int
    failed: int
    cancelled: int


def insert_jobs(conn, repo_id: str, revision: str, scorers: Sequence[str], base_id, now) -> int:
    """PENDING jobs in the caller's transaction (an existing one is kept); returns how many were created."""
    created = 0
    for scorer in scorers:
        cur = conn.execute(
            "INSERT OR IGNORE INTO jobs (repo_id, revision, scorer, base_id, status, created_at) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (repo_id, revision, scorer, base_id, _PENDING, ts(now)),
        )
        created += cur.rowcount
    return created


class JobQueue:
    """The job queue (``store.queue``), over the store's database and its connection policy."""

    def __init__(self, db: Database):
        self._db = db

    def enqueue(self, repo_id: str, revision: str, scorers: Sequence[str], base_id: str | None = None
                ) -> list[Job]:
        """Create PENDING jobs (idempotent: an existing job for the same model, sha and scorer is returned)."""
        with self._db._write() as conn:
            insert_jobs(conn, repo_id, revision, scorers, base_id, utcnow())
            marks = ",".join("?" * len(scorers))
            rows = conn.execute(
                f"SELECT {JOB_COLUMNS} FROM jobs WHERE repo_id = ? AND revision = ? AND scorer IN ({marks}) "
                "ORDER BY id",
                (repo_id, revision, *scorers),
            ).fetchall()
        return [job_of(row) for row in rows]

    def jobs(self, status: JobStatus | None = None, repo_id: str | None = None, *, scorer: str | None = None,
             base_id: str | None = None) -> list[Job]:
        clauses, params = [], []
        for column, value in (("status", status.value if status else None), ("repo_id", repo_id),
                              ("scorer", scorer), ("base_id", base_id)):
            if value is not None:
                clauses.append(f"{column} = ?")
                params.append(value)
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        with self._db._connect() as conn:
            return [job_of(r) for r in conn.execute(f"SELECT {JOB_COLUMNS} FROM jobs {where} ORDER BY id", params)]

    def public_jobs(self, limit: int = 200) -> list[Job]:
        """The newest ``limit`` jobs, newest first, without personal rankings' jobs (the app's Jobs view)."""
        with self._db._connect() as conn:
            rows = conn.execute(f"SELECT {JOB_COLUMNS} FROM jobs WHERE scorer != ? ORDER BY id DESC LIMIT ?",
                                (PERSONAL_JOB, limit))
            return [job_of(r) for r in rows]

    def get_job(self, job_id: int) -> Job | None:
        with self._db._connect() as conn:
            row = conn.execute(f"SELECT {JOB_COLUMNS} FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return job_of(row) if row else None

    def queue_stats(self) -> QueueStats:
        """Jobs per status, personal rankings' jobs left out (what the public job list shows)."""
        with self._db._connect() as conn:
            counts = dict(conn.execute("SELECT status, COUNT(*) FROM jobs WHERE scorer != ? GROUP BY status",
                                       (PERSONAL_JOB,)).fetchall())
        return QueueStats(*(counts.get(s.value, 0) for s in (JobStatus.PENDING, JobStatus.RUNNING, JobStatus.DONE,
                                                             JobStatus.FAILED, JobStatus.CANCELLED)))

    def claim_job(self, worker: str, scorers: Sequence[str] | None = None, lease_s: float = 600.0,
                  max_attempts: int = 3, *, exclude: Sequence[str] = ()) -> Job | None:
        """Atomically move the oldest PENDING job (of the given scorers, none of ``exclude``) to RUNNING for this
        worker, after returning every RUNNING job whose lease has expired to PENDING (or FAILED at
        ``max_attempts``)."""
        now = utcnow()
        sql = f"SELECT {JOB_COLUMNS} FROM jobs WHERE status = ?"
        params: list = [_PENDING]
        if scorers:
            sql += f" AND scorer IN ({','.join('?' * len(scorers))})"
            params.extend(scorers)
        if exclude:
            sql += f" AND scorer NOT IN ({','.join('?' * len(exclude))})"
            params.extend(exclude)
        with self._db._write() as conn:
            self._expire_leases(conn, now, max_attempts)
            row = conn.execute(sql + " ORDER BY id LIMIT 1", params).fetchone()
            if row is None:
                return None
            conn.execute(
                "UPDATE jobs SET status = ?, started_at = ?, finished_at = NULL, lease_until = ?, worker = ?, "
                "attempts = attempts + 1 WHERE id = ?",
                (_RUNNING, ts(now), ts(now + timedelta(seconds=lease_s)), worker, row["id"]),
            )
            claimed = conn.execute(f"SELECT {JOB_COLUMNS} FROM jobs WHERE id = ?", (row["id"],)).fetchone()
        return job_of(claimed)

    @staticmethod
    def _expire_leases(conn, now, max_attempts: int) -> None:
        """Every RUNNING job whose lease ran out goes back to PENDING, or FAILED at ``max_attempts`` (a personal
        job's rows are then released and purged here). The stored note names no worker (host and pid)."""
        expired = conn.execute("SELECT id, attempts, worker, error, scorer FROM jobs WHERE status = ? AND "
                               "lease_until < ?", (_RUNNING, ts(now))).fetchall()
        for job_id, attempts, worker, error, scorer in expired:
            logger.warning("job %d: the lease of worker %s expired (attempt %d)", job_id, worker, attempts)
            note = f"lease expired: its worker stopped before finishing (attempt {attempts})"
            if attempts < max_attempts:
                conn.execute("UPDATE jobs SET status = ?, lease_until = NULL, worker = NULL, error = ? WHERE id = ?",
                             (_PENDING, note, job_id))
                continue
            last = f"; last error: {error}" if error else ""
            conn.execute("UPDATE jobs SET status = ?, finished_at = ?, lease_until = NULL, error = ? WHERE id = ?",
                         (JobStatus.FAILED.value, ts(now), f"{note}; gave up after {attempts} attempts{last}"[:4000],
                          job_id))
            if scorer == PERSONAL_JOB:
                release_rows(conn, job_id, now)
                purge(conn, now)

    def heartbeat(self, job_id: int, worker: str, lease_s: float = 600.0) -> bool:
        """Extend the lease; False when the job is no longer this worker's (it expired and was reclaimed)."""
        now = utcnow()
        with self._db._write() as conn:
            cur = conn.execute("UPDATE jobs SET lease_until = ? WHERE id = ? AND status = ? AND worker = ?",
                               (ts(now + timedelta(seconds=lease_s)), job_id, _RUNNING, worker))
        return cur.rowcount == 1

    def finish_job(self, job_id: int, scores: Sequence[Score], worker: str | None = None) -> None:
        """Write all of a job's scores and mark it DONE, in one transaction; refused (StoreError, nothing
        written) unless the job is RUNNING and, when ``worker`` is given, held by that worker."""
        now = utcnow()
        sql = ("UPDATE jobs SET status = ?, finished_at = ?, error = NULL, lease_until = NULL "
               "WHERE id = ? AND status = ?")
        params: list = [JobStatus.DONE.value, ts(now), job_id, _RUNNING]
        if worker is not None:
            sql += " AND worker = ?"
            params.append(worker)
        with self._db._write() as conn:
            if conn.execute(sql, params).rowcount != 1:
                raise StoreError(f"job {job_id} is not RUNNING{f' for {worker}' if worker else ''}: "
                                 "it cannot be finished")
            insert_scores(conn, scores, now)

    def fail_job(self, job_id: int, error: str, *, worker: str | None = None, retry: bool = False,
                 max_attempts: int = 3) -> JobStatus | None:
        """Record ``error``; with ``retry`` and attempts left the job goes back to PENDING, else FAILED.
        Returns the new status, or None when the job was not RUNNING for this worker (nothing changed)."""
        now = utcnow()
        with self._db._write() as conn:
            row = conn.execute("SELECT status, attempts, worker FROM jobs WHERE id = ?", (job_id,)).fetchone()
            if row is None or row["status"] != _RUNNING or (worker is not None and row["worker"] != worker):
                return None
            status = JobStatus.PENDING if retry and row["attempts"] < max_attempts else JobStatus.FAILED
            conn.execute(
                "UPDATE jobs SET status = ?, finished_at = ?, error = ?, lease_until = NULL, "
                "worker = CASE WHEN ? THEN NULL ELSE worker END WHERE id = ?",
                (status.value, ts(now) if status is JobStatus.FAILED else None, error[:4000],
                 status is JobStatus.PENDING, job_id))
        return status

    def release_job(self, job_id: int, worker: str) -> bool:
        """Give a RUNNING job back untouched (a worker stopping cleanly): PENDING, and the attempt not counted."""
        with self._db._write() as conn:
            cur = conn.execute(
                "UPDATE jobs SET status = ?, lease_until = NULL, worker = NULL, started_at = NULL, "
                "attempts = MAX(attempts - 1, 0) WHERE id = ? AND status = ? AND worker = ?",
                (_PENDING, job_id, _RUNNING, worker))
        return cur.rowcount == 1

    def mark_worker_alive(self, now: datetime | None = None) -> None:
        """A worker's sign of life while it waits for work (``worker_alive`` reads it)."""
        stamp = int((now or utcnow()).timestamp())
        with self._db._write() as conn:
            conn.execute("INSERT INTO meta (key, value) VALUES ('worker_seen', ?) "
                         "ON CONFLICT(key) DO UPDATE SET value = excluded.value", (stamp,))

    def worker_alive(self, within_s: float = WORKER_ALIVE_S, now: datetime | None = None) -> bool:
        """True when a worker polled the queue in the last ``within_s`` seconds or holds a job under a live lease."""
        now = now or utcnow()
        with self._db._connect() as conn:
            seen = conn.execute("SELECT value FROM meta WHERE key = 'worker_seen'").fetchone()
            if seen is not None and now.timestamp() - seen[0] <= within_s:
                return True
            return conn.execute("SELECT 1 FROM jobs WHERE status = ? AND lease_until > ? LIMIT 1",
                                (_RUNNING, ts(now))).fetchone() is not None

    def requeue_finished(self, scorer: str) -> int:
        """Every DONE or FAILED job of ``scorer`` back to PENDING with its attempts reset (its scores are kept:
        a new protocol's scores are stored beside them)."""
        with self._db._write() as conn:
            return conn.execute(
                "UPDATE jobs SET status = ?, attempts = 0, finished_at = NULL, worker = NULL, lease_until = NULL "
                "WHERE scorer = ? AND status IN (?, ?)",
                (_PENDING, scorer, JobStatus.DONE.value, JobStatus.FAILED.value)).rowcount

    def requeue_failed(self, scorer: str | None = None) -> int:
        """Give FAILED jobs (of one scorer) a fresh start: PENDING with their attempts reset."""
        with self._db._write() as conn:
            sql, params = "UPDATE jobs SET status = ?, attempts = 0, finished_at = NULL WHERE status = ?", \
                [_PENDING, JobStatus.FAILED.value]
            if scorer:
                sql += " AND scorer = ?"
                params.append(scorer)
            return conn.execute(sql, params).rowcount
