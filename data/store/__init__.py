"""The store: the only package with SQL. SQLite in WAL mode, schema versioned by ``PRAGMA user_version``.

Every public method opens its own short-lived connection (Gradio handlers, crawler threads and worker
processes all use the store at once), writes inside ``BEGIN IMMEDIATE`` transactions, and returns
records from ``data.records``, never rows.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Sequence
from datetime import datetime

from data.records import AppliedBundle, BaseModel, Candidate, CandidateStatus, JobStatus, Score
from data.store.db import Database
from data.store.jobs import JobQueue, insert_jobs
from data.store.personal import PersonalRequests
from data.store.rate import RateEvents
from data.store.rows import base_of, candidate_of, candidate_params, insert_scores, score_of, ts, utcnow
from data.store.schema import CANDIDATE_COLUMNS, MIGRATIONS, SCORE_COLUMNS, SCORE_FRAME_COLUMNS, ScoreRow

logger = logging.getLogger(__name__)

__all__ = ["MIGRATIONS", "SCORE_FRAME_COLUMNS", "ScoreRow", "Store", "utcnow"]


def _score_row(cursor, row: tuple) -> ScoreRow:
    return ScoreRow._make(row)


class Store(Database):
    """SQLite-backed store of bases, candidates and scores (the file and its connection policy: ``Database``), and
    over the same database three narrower objects: ``queue`` (the job queue), ``requests`` (personal rankings) and
    ``rate`` (the submission rate limit's events)."""

    def __init__(self, db_path, *, busy_timeout_s: float = 60.0):
        super().__init__(db_path, busy_timeout_s=busy_timeout_s)
        self.queue = JobQueue(self)
        self.requests = PersonalRequests(self)
        self.rate = RateEvents(self)

    def upsert_base(self, base: BaseModel) -> None:
        now = ts(utcnow())
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
            return [base_of(row) for row in conn.execute("SELECT * FROM bases ORDER BY repo_id")]

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
                    f"""INSERT INTO candidates ({CANDIDATE_COLUMNS})
                        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                        ON CONFLICT(base_id, repo_id) DO UPDATE SET sha=excluded.sha, kind=excluded.kind,
                            match=excluded.match, status=excluded.status, skip_reason=excluded.skip_reason,
                            downloads=excluded.downloads, likes=excluded.likes, license=excluded.license,
                            tags=excluded.tags, pipeline_tag=excluded.pipeline_tag,
                            last_modified=excluded.last_modified, num_params=excluded.num_params,
                            has_safetensors=excluded.has_safetensors, updated_at=excluded.updated_at""",
                    candidate_params(c, now),
                )
                is_changed = old is None or old["sha"] != c.sha
                if old is not None and old["sha"] != c.sha:
                    conn.execute(
                        "UPDATE jobs SET status = ?, error = ?, finished_at = ? "
                        "WHERE repo_id = ? AND revision = ? AND status = ?",
                        (JobStatus.CANCELLED.value, f"superseded by revision {c.sha}", ts(now),
                         c.repo_id, old["sha"], JobStatus.PENDING.value),
                    )
                if is_changed and c.status is CandidateStatus.OK:
                    created += insert_jobs(conn, c.repo_id, c.sha, scorers, c.base_id, now)
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
                f"SELECT {CANDIDATE_COLUMNS} FROM candidates {where} ORDER BY base_id, repo_id", params
            )
            return [candidate_of(row) for row in rows]

    def get_candidate(self, repo_id: str, base_id: str | None = None) -> Candidate | None:
        sql = f"SELECT {CANDIDATE_COLUMNS} FROM candidates WHERE repo_id = ?"
        params: list = [repo_id]
        if base_id is not None:
            sql += " AND base_id = ?"
            params.append(base_id)
        with self._connect() as conn:
            row = conn.execute(sql + " ORDER BY status = 'ok' DESC LIMIT 1", params).fetchone()
            return candidate_of(row) if row else None

    # ------------------------------------------------------------------- scores
    def add_scores(self, scores: Sequence[Score]) -> None:
        with self._write() as conn:
            insert_scores(conn, scores, utcnow())

    def add_missing(self, bases: Sequence[BaseModel], candidates: Sequence[Candidate],
                    scores: Sequence[Score]) -> tuple[int, int, int]:
        """Insert the bases, candidates and scores the store lacks, in one transaction, as they are (timestamps
        included); returns how many of each were added. Never updates or deletes a stored row (a base, a
        candidate or a score with the same key stays as stored) and creates no jobs: for seeding from a snapshot."""
        with self._write() as conn:
            return self._add_missing(conn, bases, candidates, scores)

    def apply_bundle(self, name: str, version: str, bases: Sequence[BaseModel], candidates: Sequence[Candidate],
                     scores: Sequence[Score]) -> tuple[int, int, int] | None:
        """``add_missing`` once per bundled version: None (and nothing written) when ``(name, version)`` has been
        applied to this store before; else the counts, recorded with the version in the same transaction."""
        with self._write() as conn:
            if conn.execute("SELECT 1 FROM bundles_applied WHERE name = ? AND version = ?",
                            (name, version)).fetchone():
                return None
            counts = self._add_missing(conn, bases, candidates, scores)
            total = len(bases) + len(candidates) + len(scores)
            conn.execute("INSERT INTO bundles_applied (name, version, applied_at, added, skipped) "
                         "VALUES (?, ?, ?, ?, ?)", (name, version, ts(utcnow()), sum(counts), total - sum(counts)))
            return counts

    def applied_bundles(self) -> list[AppliedBundle]:
        """Every bundled version that has seeded this store, oldest first."""
        with self._connect() as conn:
            rows = conn.execute("SELECT name, version, applied_at, added, skipped FROM bundles_applied "
                                "ORDER BY applied_at, name")
            return [AppliedBundle(name=r["name"], version=r["version"], added=r["added"], skipped=r["skipped"],
                                  applied_at=datetime.fromisoformat(r["applied_at"])) for r in rows]

    def is_bundle_applied(self, name: str, version: str) -> bool:
        with self._connect() as conn:
            return conn.execute("SELECT 1 FROM bundles_applied WHERE name = ? AND version = ?",
                                (name, version)).fetchone() is not None

    def _add_missing(self, conn, bases: Sequence[BaseModel], candidates: Sequence[Candidate],
                     scores: Sequence[Score]) -> tuple[int, int, int]:
        now = utcnow()
        n_bases = conn.executemany(
            """INSERT OR IGNORE INTO bases (repo_id, sha, aliases, model_type, hidden_size, num_hidden_layers,
                   num_attention_heads, vocab_size, num_params, added_at, updated_at)
               VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
            [(b.repo_id, b.sha, json.dumps(list(b.aliases)), b.signature.model_type, b.signature.hidden_size,
              b.signature.num_hidden_layers, b.signature.num_attention_heads, b.signature.vocab_size,
              b.num_params, ts(now), ts(now)) for b in bases],
        ).rowcount
        n_candidates = conn.executemany(
            f"INSERT OR IGNORE INTO candidates ({CANDIDATE_COLUMNS}) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [candidate_params(c, c.updated_at or now) for c in candidates],
        ).rowcount
        n_scores = insert_scores(conn, scores, now, on_conflict="IGNORE")
        return max(n_bases, 0), max(n_candidates, 0), max(n_scores, 0)

    def scores(self, *, repo_id: str | None = None, source: str | None = None, scorer: str | None = None,
               base_id: str | None = None) -> list[Score]:
        clauses, params = [], []
        for column, value in (("repo_id", repo_id), ("source", source), ("scorer", scorer), ("base_id", base_id)):
            if value is not None:
                clauses.append(f"{column} = ?")
                params.append(value)
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        with self._connect() as conn:
            rows = conn.execute(f"SELECT {SCORE_COLUMNS} FROM scores {where} ORDER BY id", params)
            return [score_of(row) for row in rows]


    def has_score(self, repo_id: str, revision: str, scorer: str, metric: str, target: str, seed: int,
                  config_hash: str, source: str = "project") -> bool:
        """Is this exact score already stored? (Scorers skip runs they would only repeat.)"""
        return self.score_status(repo_id, revision, scorer, metric, target, seed, config_hash, source) is not None

    def score_status(self, repo_id: str, revision: str, scorer: str, metric: str, target: str, seed: int,
                     config_hash: str, source: str = "project") -> str | None:
        """The status of this exact stored score ("ok", "failed"); None when it is not stored."""
        with self._connect() as conn:
            row = conn.execute(
                "SELECT status FROM scores WHERE source = ? AND repo_id = ? AND revision = ? AND scorer = ? "
                "AND metric = ? AND target = ? AND seed = ? AND config_hash = ? LIMIT 1",
                (source, repo_id, revision, scorer, metric, target, seed, config_hash),
            ).fetchone()
        return None if row is None else row["status"]

    def stored_score(self, repo_id: str, revision: str, scorer: str, metric: str, target: str, seed: int,
                     config_hash: str, source: str = "project") -> Score | None:
        """This exact stored score, None when it is not stored."""
        with self._connect() as conn:
            row = conn.execute(
                f"SELECT {SCORE_COLUMNS} FROM scores WHERE source = ? AND repo_id = ? AND revision = ? AND "
                "scorer = ? AND metric = ? AND target = ? AND seed = ? AND config_hash = ? LIMIT 1",
                (source, repo_id, revision, scorer, metric, target, seed, config_hash),
            ).fetchone()
        return None if row is None else score_of(row)

    def score_rows(self, *, base_id: str, source: str) -> list[ScoreRow]:
        """The scores of one leaderboard as named records (``ScoreRow``: what a leaderboard is built from)."""
        with self._connect() as conn:
            conn.row_factory = _score_row  # tuples made named: several times faster than sqlite3.Row
            return conn.execute(
                f"SELECT {', '.join(SCORE_FRAME_COLUMNS)} FROM scores WHERE base_id = ? AND source = ?",
                (base_id, source),
            ).fetchall()

    def replace_source(self, source: str, scores: Sequence[Score]) -> int:
        """Swap every score of ``source`` for ``scores`` in one transaction; returns how many were written."""
        now = utcnow()
        with self._write() as conn:
            conn.execute("DELETE FROM scores WHERE source = ?", (source,))
            insert_scores(conn, scores, now)
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
