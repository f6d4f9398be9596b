"""Personal rankings in the store: a request (named by a random token) with its job, and the user's rows apart.

The rows (``personal_rows``, one entry per content hash, shared by requests of the same data) are kept while a
request that needs them is open (its job PENDING or RUNNING) or until their ``keep_until``, never past their
``expires_at`` (a cap for a job that never ends); ``purge`` runs at every create and finish, when a lease expiry
fails a personal job for good, and periodically (``purge_personal``: every idle worker, the app's purge thread), so
nothing outlives what it was kept for by more than that period. A request and its job disappear at the request's
``expires_at``; reads never return a request or rows past their ``expires_at``, purged or not.
"""

from __future__ import annotations

import hashlib
import json
import logging
import secrets
from datetime import datetime, timedelta

from data.errors import StoreError
from data.personal_record import PersonalRanking, RankingFormatError
from data.records import PERSONAL_JOB, JobStatus, PersonalRequest
from data.store.db import Database
from data.store.rows import dt, ts, utcnow

logger = logging.getLogger(__name__)

_OPEN = (JobStatus.PENDING.value, JobStatus.RUNNING.value)
_COLUMNS = ("r.id, r.job_id, r.base_id, r.data_hash, r.source, r.summary, r.top_k, r.models, r.progress, "
            "r.result, r.created_at, r.expires_at, j.status, j.error")


def _request_of(row) -> PersonalRequest:
    result, error = _result(row["result"]), row["error"]
    if isinstance(result, str):  # a stored ranking this app cannot read: no table, the reason as the error
        result, error = None, result
    return PersonalRequest(
        id=row["id"], job_id=row["job_id"], base_id=row["base_id"], data_hash=row["data_hash"], source=row["source"],
        summary=json.loads(row["summary"]), top_k=row["top_k"],
        models=tuple(json.loads(row["models"])), status=JobStatus(row["status"]), error=error,
        progress=tuple(json.loads(row["progress"])), result=result,
        created_at=dt(row["created_at"]), expires_at=dt(row["expires_at"]))


def _result(text: str | None) -> PersonalRanking | str | None:
    """The stored ranking, or the sentence saying why it cannot be read (the log keeps the detail)."""
    if not text:
        return None
    try:
        return PersonalRanking.from_json(json.loads(text))
    except (RankingFormatError, ValueError) as e:
        logger.warning("a stored personal ranking cannot be read: %s", e)
        return "This ranking was stored in a layout this version of the app cannot read; rank again."


class PersonalRequests:
    """Personal rankings (``store.requests``), over the store's database and its connection policy."""

    def __init__(self, db: Database):
        self._db = db

    def create_personal(self, *, base_id: str, data_hash: str, rows_json: str, source: str, summary: dict,
                        top_k: int, ttl_s: float, rows_max_s: float, models: tuple[dict, ...] = ()
                        ) -> PersonalRequest:
        """A new request, its PENDING job and (unless held already) its rows, in one transaction. ``models``: the
        models named (``service.personal_models.NamedModel.to_json``), () for the base and its top K."""
        now, token = utcnow(), secrets.token_hex(16)
        with self._db._write() as conn:
            purge(conn, now)
            # the job's revision is a hash of the token: the public job list never shows the token itself
            cur = conn.execute("INSERT INTO jobs (repo_id, revision, scorer, base_id, status, created_at) "
                               "VALUES (?, ?, ?, ?, ?, ?)",
                               (base_id, hashlib.sha1(token.encode()).hexdigest(), PERSONAL_JOB, base_id,
                                JobStatus.PENDING.value, ts(now)))
            conn.execute("INSERT INTO personal_rows (data_hash, rows, keep_until, expires_at) VALUES (?, ?, ?, ?) "
                         "ON CONFLICT(data_hash) DO UPDATE SET expires_at = MAX(expires_at, excluded.expires_at)",
                         (data_hash, rows_json, ts(now), ts(now + timedelta(seconds=rows_max_s))))
            conn.execute("INSERT INTO personal_requests (id, job_id, base_id, data_hash, source, summary, top_k, "
                         "models, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                         (token, cur.lastrowid, base_id, data_hash, source, json.dumps(summary), top_k,
                          json.dumps(list(models)), ts(now), ts(now + timedelta(seconds=ttl_s))))
        found = self.personal(token)
        assert found is not None  # written just now
        return found

    def personal(self, request_id: str) -> PersonalRequest | None:
        """The request named by this token; None when unknown or expired."""
        return self._personal_where("r.id = ?", request_id)

    def personal_of_job(self, job_id: int) -> PersonalRequest | None:
        return self._personal_where("r.job_id = ?", job_id)

    def _personal_where(self, clause: str, value) -> PersonalRequest | None:
        with self._db._connect() as conn:
            row = conn.execute(f"SELECT {_COLUMNS} FROM personal_requests r JOIN jobs j ON j.id = r.job_id "
                               f"WHERE {clause} AND r.expires_at > ?", (value, ts(utcnow()))).fetchone()
        return _request_of(row) if row else None

    def personal_rows(self, data_hash: str) -> str | None:
        """The rows' JSON while they are kept, else None."""
        with self._db._connect() as conn:
            row = conn.execute("SELECT rows FROM personal_rows WHERE data_hash = ? AND expires_at > ?",
                               (data_hash, ts(utcnow()))).fetchone()
        return row["rows"] if row else None

    def personal_row_sets(self) -> int:
        """How many users' row sets the store holds now (0 once every job that needed them has ended)."""
        with self._db._connect() as conn:
            return conn.execute("SELECT COUNT(*) FROM personal_rows").fetchone()[0]

    def set_personal_progress(self, request_id: str, progress: list[dict]) -> None:
        with self._db._write(bump_version=False) as conn:
            conn.execute("UPDATE personal_requests SET progress = ? WHERE id = ?", (json.dumps(progress), request_id))

    def finish_personal(self, job_id: int, worker: str, result: PersonalRanking, keep_rows_s: float = 0.0) -> None:
        """The ranking and DONE in one transaction (StoreError, nothing written, unless the job is RUNNING for
        ``worker``); the rows then go unless another open request needs them or ``keep_rows_s`` keeps them."""
        now = utcnow()
        with self._db._write() as conn:
            done = conn.execute("UPDATE jobs SET status = ?, finished_at = ?, error = NULL, lease_until = NULL "
                                "WHERE id = ? AND status = ? AND worker = ?",
                                (JobStatus.DONE.value, ts(now), job_id, JobStatus.RUNNING.value, worker))
            if done.rowcount != 1:
                raise StoreError(f"job {job_id} is not RUNNING for {worker}: its ranking cannot be written")
            conn.execute("UPDATE personal_requests SET result = ? WHERE job_id = ?",
                         (json.dumps(result.to_json(), allow_nan=False), job_id))
            release_rows(conn, job_id, now + timedelta(seconds=keep_rows_s))
            purge(conn, now)

    def release_personal_rows(self, job_id: int) -> None:
        """A job that failed for good: its rows go now (unless another open request needs them)."""
        now = utcnow()
        with self._db._write(bump_version=False) as conn:
            release_rows(conn, job_id, now)
            purge(conn, now)

    def purge_personal(self) -> int:
        """Delete what is past its time now; returns how many row sets went."""
        with self._db._write(bump_version=False) as conn:
            return purge(conn, utcnow())

    def personal_data_hashes(self) -> set[str]:
        """The data hashes whose rows the store keeps now (their cached features may stay)."""
        with self._db._connect() as conn:
            rows = conn.execute("SELECT data_hash FROM personal_rows WHERE expires_at > ?", (ts(utcnow()),))
            return {row["data_hash"] for row in rows}


def release_rows(conn, job_id: int, keep_until: datetime) -> None:
    """The job's rows are no longer needed by it after ``keep_until`` (``purge`` deletes them then)."""
    conn.execute("UPDATE personal_rows SET keep_until = MIN(expires_at, ?) WHERE data_hash = "
                 "(SELECT data_hash FROM personal_requests WHERE job_id = ?)", (ts(keep_until), job_id))


def purge(conn, now: datetime) -> int:
    """Drop expired requests (and their jobs), and rows no open request needs past their keep time; returns how
    many row sets went."""
    expired = [r[0] for r in conn.execute("SELECT job_id FROM personal_requests WHERE expires_at <= ?", (ts(now),))]
    conn.execute("DELETE FROM personal_requests WHERE expires_at <= ?", (ts(now),))
    conn.executemany("DELETE FROM jobs WHERE id = ? AND scorer = ?", [(j, PERSONAL_JOB) for j in expired])
    marks = ",".join("?" * len(_OPEN))
    return conn.execute(f"""DELETE FROM personal_rows WHERE expires_at <= ? OR (keep_until <= ? AND NOT EXISTS (
                                SELECT 1 FROM personal_requests r JOIN jobs j ON j.id = r.job_id
                                WHERE r.data_hash = personal_rows.data_hash AND j.status IN ({marks})))""",
                        (ts(now), ts(now), *_OPEN)).rowcount
