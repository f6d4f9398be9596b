"""The store: the only module with SQL. SQLite in WAL mode, schema versioned by ``PRAGMA user_version``.

Every public method opens its own short-lived connection (Gradio handlers, crawler threads and worker
processes all use the store at once), writes inside ``BEGIN IMMEDIATE`` transactions, and returns
records from ``data.records``, never rows.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

from data.errors import StoreError
from data.records import (
    ArchSignature,
    BaseModel,
    Candidate,
    CandidateStatus,
    Job,
    JobStatus,
    Kind,
    Match,
    Score,
    SkipReason,
)

logger = logging.getLogger(__name__)

MIGRATIONS: tuple[str, ...] = (
    # 1: bases, candidates, jobs, scores
    """
    CREATE TABLE bases (
        repo_id TEXT PRIMARY KEY,
        sha TEXT NOT NULL,
        aliases TEXT NOT NULL DEFAULT '[]',
        model_type TEXT NOT NULL,
        hidden_size INTEGER,
        num_hidden_layers INTEGER,
        num_attention_heads INTEGER,
        vocab_size INTEGER,
        num_params INTEGER,
        added_at TEXT NOT NULL,
        updated_at TEXT NOT NULL
    );
    CREATE TABLE candidates (
        base_id TEXT NOT NULL REFERENCES bases(repo_id),
        repo_id TEXT NOT NULL,
        sha TEXT NOT NULL,
        kind TEXT NOT NULL,
        match TEXT NOT NULL,
        status TEXT NOT NULL,
        skip_reason TEXT,
        downloads INTEGER NOT NULL DEFAULT 0,
        likes INTEGER NOT NULL DEFAULT 0,
        license TEXT,
        tags TEXT NOT NULL DEFAULT '[]',
        pipeline_tag TEXT,
        last_modified TEXT,
        num_params INTEGER,
        has_safetensors INTEGER NOT NULL DEFAULT 0,
        first_seen TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        PRIMARY KEY (base_id, repo_id)
    );
    CREATE INDEX candidates_status ON candidates(base_id, status);
    CREATE TABLE jobs (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        repo_id TEXT NOT NULL,
        revision TEXT NOT NULL,
        scorer TEXT NOT NULL,
        base_id TEXT,
        status TEXT NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        error TEXT,
        created_at TEXT NOT NULL,
        started_at TEXT,
        finished_at TEXT,
        lease_until TEXT,
        worker TEXT,
        UNIQUE (repo_id, revision, scorer)
    );
    CREATE INDEX jobs_status ON jobs(status, id);
    CREATE TABLE scores (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        repo_id TEXT NOT NULL,
        revision TEXT NOT NULL,
        scorer TEXT NOT NULL,
        metric TEXT NOT NULL,
        target TEXT NOT NULL DEFAULT '',
        seed INTEGER NOT NULL DEFAULT -1,
        value REAL NOT NULL,
        config_hash TEXT NOT NULL,
        config_json TEXT NOT NULL DEFAULT '{}',
        source TEXT NOT NULL,
        duration_s REAL,
        extra TEXT NOT NULL DEFAULT '{}',
        created_at TEXT NOT NULL,
        UNIQUE (source, repo_id, revision, scorer, metric, target, seed, config_hash)
    );
    CREATE INDEX scores_model ON scores(repo_id, revision);
    """,
    # 2: every score names the base whose leaderboard it belongs to (published rows have no crawled candidate)
    """
    ALTER TABLE scores ADD COLUMN base_id TEXT NOT NULL DEFAULT '';
    CREATE INDEX scores_base ON scores(base_id, source);
    """,
    # 3: a change counter, bumped by every write of candidates, jobs or scores (a cheap cache key)
    """
    CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
    INSERT INTO meta (key, value) VALUES ('data_version', 0);
    """,
)

_CANDIDATE_COLUMNS = (
    "base_id, repo_id, sha, kind, match, status, skip_reason, downloads, likes, license, tags, "
    "pipeline_tag, last_modified, num_params, has_safetensors, first_seen, updated_at"
)
_JOB_COLUMNS = (
    "id, repo_id, revision, scorer, base_id, status, attempts, error, created_at, started_at, "
    "finished_at, lease_until, worker"
)
_SCORE_COLUMNS = (
    "repo_id, revision, scorer, metric, target, seed, value, config_hash, config_json, source, "
    "duration_s, extra, created_at, base_id"
)
SCORE_FRAME_COLUMNS = ("repo_id", "revision", "scorer", "metric", "target", "seed", "value", "config_hash")


def utcnow() -> datetime:
    return datetime.now(UTC)


def _ts(value: datetime | None) -> str | None:
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat(timespec="microseconds")


def _dt(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


class Store:
    """SQLite-backed store of bases, candidates, jobs and scores."""

    def __init__(self, db_path: Path | str, *, busy_timeout_s: float = 60.0):
        self.db_path = Path(db_path)
        self.busy_timeout_s = busy_timeout_s
        self.migrate()

    # ----------------------------------------------------------------- plumbing
    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        try:
            conn = sqlite3.connect(self.db_path, timeout=self.busy_timeout_s, isolation_level=None)
        except sqlite3.Error as e:
            raise StoreError(f"cannot open the store at {self.db_path}: {e}") from e
        try:
            conn.row_factory = sqlite3.Row
            conn.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout_s * 1000)}")
            conn.execute("PRAGMA foreign_keys = ON")
            yield conn
        finally:
            conn.close()

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction: all of it lands, or none of it does. Bumps the data version."""
        with self._connect() as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
                conn.execute("UPDATE meta SET value = value + 1 WHERE key = 'data_version'")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    def migrate(self) -> int:
        """Bring the schema to the latest version; returns that version."""
        if self.db_path.parent and not self.db_path.parent.exists():
            self.db_path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as conn:
            try:
                conn.execute("PRAGMA journal_mode = WAL")
                conn.execute("BEGIN IMMEDIATE")
                version = conn.execute("PRAGMA user_version").fetchone()[0]
                if version > len(MIGRATIONS):
                    conn.execute("ROLLBACK")
                    raise StoreError(
                        f"{self.db_path} has schema version {version}, newer than this code knows "
                        f"({len(MIGRATIONS)}): upgrade the project"
                    )
                for number, sql in enumerate(MIGRATIONS[version:], start=version + 1):
                    for statement in sql.split(";"):
                        if statement.strip():
                            conn.execute(statement)
                    conn.execute(f"PRAGMA user_version = {number}")
                    logger.info("%s: migrated schema to version %d", self.db_path, number)
                conn.execute("COMMIT")
            except sqlite3.DatabaseError as e:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise StoreError(f"{self.db_path} is not a usable leaderboard store: {e}") from e
        return len(MIGRATIONS)

    def schema_version(self) -> int:
        with self._connect() as conn:
            return conn.execute("PRAGMA user_version").fetchone()[0]

    def integrity_check(self) -> str:
        with self._connect() as conn:
            return conn.execute("PRAGMA integrity_check").fetchone()[0]

    # -------------------------------------------------------------------- bases
    def upsert_base(self, base: BaseModel) -> None:
        now = _ts(utcnow())
        sig = base.signature
        with self._write() as conn:
            conn.execute(
                """INSERT INTO bases (repo_id, sha, aliases, model_type, hidden_size, num_hidden_layers,
                       num_attention_heads, vocab_size, num_params, added_at, updated_at)
                   VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                   ON CONFLICT(repo_id) DO UPDATE SET sha=excluded.sha, aliases=excluded.aliases,
                       model_type=excluded.model_type, hidden_size=excluded.hidden_size,
                       num_hidden_layers=excluded.num_hidden_layers,
                       num_attention_heads=excluded.num_attention_heads, vocab_size=excluded.vocab_size,
                       num_params=excluded.num_params, updated_at=excluded.updated_at""",
                (base.repo_id, base.sha, json.dumps(list(base.aliases)), sig.model_type, sig.hidden_size,
                 sig.num_hidden_layers, sig.num_attention_heads, sig.vocab_size, base.num_params, now, now),
            )

    def bases(self) -> list[BaseModel]:
        with self._connect() as conn:
            return [_base(row) for row in conn.execute("SELECT * FROM bases ORDER BY repo_id")]

    def get_base(self, repo_id_or_alias: str) -> BaseModel | None:
        """The base with that id, or whose aliases include it."""
        for base in self.bases():
            if repo_id_or_alias == base.repo_id or repo_id_or_alias in base.aliases:
                return base
        return None

    # --------------------------------------------------------------- candidates
    def known_verdicts(self, base_id: str) -> dict[str, tuple[str, str | None]]:
        """repo_id -> (stored sha, skip reason) of every model the crawler has recorded for this base."""
        with self._connect() as conn:
            rows = conn.execute("SELECT repo_id, sha, skip_reason FROM candidates WHERE base_id = ?", (base_id,))
            return {row["repo_id"]: (row["sha"], row["skip_reason"]) for row in rows}

    def save_candidates(self, candidates: Sequence[Candidate], scorers: Sequence[str] = ()) -> int:
        """Insert or update candidates in one transaction; returns how many jobs were created.

        A candidate that is new, or whose sha changed, and whose status is OK gets a PENDING job per
        scorer; PENDING jobs for a replaced sha are CANCELLED. ``first_seen`` survives updates.
        """
        now = utcnow()
        created = 0
        with self._write() as conn:
            for c in candidates:
                old = conn.execute(
                    "SELECT sha FROM candidates WHERE base_id = ? AND repo_id = ?", (c.base_id, c.repo_id)
                ).fetchone()
                conn.execute(
                    f"""INSERT INTO candidates ({_CANDIDATE_COLUMNS})
                        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                        ON CONFLICT(base_id, repo_id) DO UPDATE SET sha=excluded.sha, kind=excluded.kind,
                            match=excluded.match, status=excluded.status, skip_reason=excluded.skip_reason,
                            downloads=excluded.downloads, likes=excluded.likes, license=excluded.license,
                            tags=excluded.tags, pipeline_tag=excluded.pipeline_tag,
                            last_modified=excluded.last_modified, num_params=excluded.num_params,
                            has_safetensors=excluded.has_safetensors, updated_at=excluded.updated_at""",
                    _candidate_params(c, now),
                )
                is_changed = old is None or old["sha"] != c.sha
                if old is not None and old["sha"] != c.sha:
                    conn.execute(
                        "UPDATE jobs SET status = ?, error = ?, finished_at = ? "
                        "WHERE repo_id = ? AND revision = ? AND status = ?",
                        (JobStatus.CANCELLED.value, f"superseded by revision {c.sha}", _ts(now),
                         c.repo_id, old["sha"], JobStatus.PENDING.value),
                    )
                if is_changed and c.status is CandidateStatus.OK:
                    created += self._insert_jobs(conn, c.repo_id, c.sha, scorers, c.base_id, now)
        return created

    def refresh_listing_metadata(self, base_id: str, rows: Iterable[tuple[str, int, int]]) -> None:
        """Update downloads and likes of unchanged models from a listing: (repo_id, downloads, likes)."""
        with self._write() as conn:
            conn.executemany(
                "UPDATE candidates SET downloads = ?, likes = ? WHERE base_id = ? AND repo_id = ? "
                "AND (downloads != ? OR likes != ?)",
                [(d, lk, base_id, repo_id, d, lk) for repo_id, d, lk in rows],
            )

    def candidates(
        self, base_id: str | None = None, status: CandidateStatus | None = None
    ) -> list[Candidate]:
        clauses, params = [], []
        if base_id is not None:
            clauses.append("base_id = ?")
            params.append(base_id)
        if status is not None:
            clauses.append("status = ?")
            params.append(status.value)
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        with self._connect() as conn:
            rows = conn.execute(
                f"SELECT {_CANDIDATE_COLUMNS} FROM candidates {where} ORDER BY base_id, repo_id", params
            )
            return [_candidate(row) for row in rows]

    def get_candidate(self, repo_id: str, base_id: str | None = None) -> Candidate | None:
        sql = f"SELECT {_CANDIDATE_COLUMNS} FROM candidates WHERE repo_id = ?"
        params: list = [repo_id]
        if base_id is not None:
            sql += " AND base_id = ?"
            params.append(base_id)
        with self._connect() as conn:
            row = conn.execute(sql + " ORDER BY status = 'ok' DESC LIMIT 1", params).fetchone()
            return _candidate(row) if row else None

    # --------------------------------------------------------------------- jobs
    @staticmethod
    def _insert_jobs(conn, repo_id: str, revision: str, scorers: Sequence[str], base_id, now) -> int:
        created = 0
        for scorer in scorers:
            cur = conn.execute(
                "INSERT OR IGNORE INTO jobs (repo_id, revision, scorer, base_id, status, created_at) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (repo_id, revision, scorer, base_id, JobStatus.PENDING.value, _ts(now)),
            )
            created += cur.rowcount
        return created

    def enqueue(self, repo_id: str, revision: str, scorers: Sequence[str], base_id: str | None = None
                ) -> list[Job]:
        """Create PENDING jobs (idempotent: an existing job for the same model, sha and scorer is returned)."""
        with self._write() as conn:
            self._insert_jobs(conn, repo_id, revision, scorers, base_id, utcnow())
            marks = ",".join("?" * len(scorers))
            rows = conn.execute(
                f"SELECT {_JOB_COLUMNS} FROM jobs WHERE repo_id = ? AND revision = ? AND scorer IN ({marks}) "
                "ORDER BY id",
                (repo_id, revision, *scorers),
            ).fetchall()
        return [_job(row) for row in rows]

    def jobs(self, status: JobStatus | None = None, repo_id: str | None = None) -> list[Job]:
        clauses, params = [], []
        if status is not None:
            clauses.append("status = ?")
            params.append(status.value)
        if repo_id is not None:
            clauses.append("repo_id = ?")
            params.append(repo_id)
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        with self._connect() as conn:
            return [_job(r) for r in conn.execute(f"SELECT {_JOB_COLUMNS} FROM jobs {where} ORDER BY id", params)]

    def claim_job(self, worker: str, scorers: Sequence[str] | None = None, lease_s: float = 600.0
                  ) -> Job | None:
        """Atomically move the oldest PENDING job (of the given scorers) to RUNNING for this worker."""
        now = utcnow()
        sql = f"SELECT {_JOB_COLUMNS} FROM jobs WHERE status = ?"
        params: list = [JobStatus.PENDING.value]
        if scorers:
            sql += f" AND scorer IN ({','.join('?' * len(scorers))})"
            params.extend(scorers)
        with self._write() as conn:
            row = conn.execute(sql + " ORDER BY id LIMIT 1", params).fetchone()
            if row is None:
                return None
            cur = conn.execute(
                "UPDATE jobs SET status = ?, started_at = ?, lease_until = ?, worker = ?, "
                "attempts = attempts + 1 WHERE id = ? AND status = ?",
                (JobStatus.RUNNING.value, _ts(now), _ts(now + timedelta(seconds=lease_s)), worker,
                 row["id"], JobStatus.PENDING.value),
            )
            if cur.rowcount != 1:
                return None
            claimed = conn.execute(f"SELECT {_JOB_COLUMNS} FROM jobs WHERE id = ?", (row["id"],)).fetchone()
        return _job(claimed)

    def finish_job(self, job_id: int, scores: Sequence[Score]) -> None:
        """Write all of a job's scores and mark it DONE, in one transaction."""
        now = utcnow()
        with self._write() as conn:
            cur = conn.execute(
                "UPDATE jobs SET status = ?, finished_at = ?, error = NULL, lease_until = NULL "
                "WHERE id = ? AND status = ?",
                (JobStatus.DONE.value, _ts(now), job_id, JobStatus.RUNNING.value),
            )
            if cur.rowcount != 1:
                raise StoreError(f"job {job_id} is not RUNNING: it cannot be finished")
            self._insert_scores(conn, scores, now)

    def fail_job(self, job_id: int, error: str) -> None:
        with self._write() as conn:
            conn.execute(
                "UPDATE jobs SET status = ?, finished_at = ?, error = ?, lease_until = NULL WHERE id = ?",
                (JobStatus.FAILED.value, _ts(utcnow()), error, job_id),
            )

    # ------------------------------------------------------------------- scores
    @staticmethod
    def _insert_scores(conn, scores: Sequence[Score], now: datetime) -> None:
        conn.executemany(
            f"INSERT OR REPLACE INTO scores ({_SCORE_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (s.repo_id, s.revision, s.scorer, s.metric, s.target, s.seed, float(s.value), s.config_hash,
                 s.config_json, s.source, s.duration_s, json.dumps(s.extra, sort_keys=True),
                 _ts(s.created_at or now), s.base_id)
                for s in scores
            ],
        )

    def add_scores(self, scores: Sequence[Score]) -> None:
        with self._write() as conn:
            self._insert_scores(conn, scores, utcnow())

    def scores(self, *, repo_id: str | None = None, source: str | None = None, scorer: str | None = None,
               base_id: str | None = None) -> list[Score]:
        clauses, params = [], []
        for column, value in (("repo_id", repo_id), ("source", source), ("scorer", scorer), ("base_id", base_id)):
            if value is not None:
                clauses.append(f"{column} = ?")
                params.append(value)
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        with self._connect() as conn:
            rows = conn.execute(f"SELECT {_SCORE_COLUMNS} FROM scores {where} ORDER BY id", params)
            return [_score(row) for row in rows]


    def has_score(self, repo_id: str, revision: str, scorer: str, metric: str, target: str, seed: int,
                  config_hash: str, source: str = "project") -> bool:
        """Is this exact score already stored? (Scorers skip runs they would only repeat.)"""
        with self._connect() as conn:
            return conn.execute(
                "SELECT 1 FROM scores WHERE source = ? AND repo_id = ? AND revision = ? AND scorer = ? AND metric = ? "
                "AND target = ? AND seed = ? AND config_hash = ? LIMIT 1",
                (source, repo_id, revision, scorer, metric, target, seed, config_hash),
            ).fetchone() is not None

    def score_rows(self, *, base_id: str, source: str) -> list[tuple]:
        """The scores of one leaderboard as plain tuples in SCORE_FRAME_COLUMNS order (for ranking's frames)."""
        with self._connect() as conn:
            conn.row_factory = None  # plain tuples: several times faster for millions of rows
            return conn.execute(
                f"SELECT {', '.join(SCORE_FRAME_COLUMNS)} FROM scores WHERE base_id = ? AND source = ?",
                (base_id, source),
            ).fetchall()

    def replace_source(self, source: str, scores: Sequence[Score]) -> int:
        """Swap every score of ``source`` for ``scores`` in one transaction; returns how many were written."""
        now = utcnow()
        with self._write() as conn:
            conn.execute("DELETE FROM scores WHERE source = ?", (source,))
            self._insert_scores(conn, scores, now)
        return len(scores)

    def score_summary(self) -> list[tuple[str, str, int]]:
        """(base_id, source, number of scored models) for every leaderboard the store can build."""
        with self._connect() as conn:
            rows = conn.execute(
                "SELECT base_id, source, COUNT(DISTINCT repo_id || '@' || revision) FROM scores "
                "GROUP BY base_id, source ORDER BY base_id, source"
            )
            return [tuple(r) for r in rows]

    def data_version(self) -> int:
        """A number that changes with every write of candidates, jobs or scores: a cache key for views."""
        with self._connect() as conn:
            return conn.execute("SELECT value FROM meta WHERE key = 'data_version'").fetchone()[0]

# ------------------------------------------------------------------ row -> record
def _base(row: sqlite3.Row) -> BaseModel:
    return BaseModel(
        repo_id=row["repo_id"],
        sha=row["sha"],
        aliases=tuple(json.loads(row["aliases"])),
        signature=ArchSignature(
            model_type=row["model_type"],
            hidden_size=row["hidden_size"],
            num_hidden_layers=row["num_hidden_layers"],
            num_attention_heads=row["num_attention_heads"],
            vocab_size=row["vocab_size"],
        ),
        num_params=row["num_params"],
    )


def _candidate_params(c: Candidate, now: datetime) -> tuple:
    return (
        c.base_id, c.repo_id, c.sha, c.kind.value, c.match.value, c.status.value,
        c.skip_reason.value if c.skip_reason else None, c.downloads, c.likes, c.license,
        json.dumps(list(c.tags)), c.pipeline_tag, _ts(c.last_modified), c.num_params,
        int(c.has_safetensors), _ts(c.first_seen or now), _ts(now),
    )


def _candidate(row: sqlite3.Row) -> Candidate:
    return Candidate(
        base_id=row["base_id"],
        repo_id=row["repo_id"],
        sha=row["sha"],
        kind=Kind(row["kind"]),
        match=Match(row["match"]),
        status=CandidateStatus(row["status"]),
        skip_reason=SkipReason(row["skip_reason"]) if row["skip_reason"] else None,
        downloads=row["downloads"],
        likes=row["likes"],
        license=row["license"],
        tags=tuple(json.loads(row["tags"])),
        pipeline_tag=row["pipeline_tag"],
        last_modified=_dt(row["last_modified"]),
        num_params=row["num_params"],
        has_safetensors=bool(row["has_safetensors"]),
        first_seen=_dt(row["first_seen"]),
        updated_at=_dt(row["updated_at"]),
    )


def _job(row: sqlite3.Row) -> Job:
    return Job(
        id=row["id"],
        repo_id=row["repo_id"],
        revision=row["revision"],
        scorer=row["scorer"],
        base_id=row["base_id"],
        status=JobStatus(row["status"]),
        attempts=row["attempts"],
        error=row["error"],
        created_at=_dt(row["created_at"]),
        started_at=_dt(row["started_at"]),
        finished_at=_dt(row["finished_at"]),
        lease_until=_dt(row["lease_until"]),
        worker=row["worker"],
    )


def _score(row: sqlite3.Row) -> Score:
    return Score(
        repo_id=row["repo_id"],
        revision=row["revision"],
        scorer=row["scorer"],
        metric=row["metric"],
        target=row["target"],
        seed=row["seed"],
        value=row["value"],
        config_hash=row["config_hash"],
        config_json=row["config_json"],
        source=row["source"],
        duration_s=row["duration_s"],
        extra=json.loads(row["extra"]),
        created_at=_dt(row["created_at"]),
        base_id=row["base_id"],
    )
