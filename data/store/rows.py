"""Rows of the store's tables to and from the records of ``data.records``; timestamps as ISO strings in UTC."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import fields
from datetime import UTC, datetime

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

DATES = frozenset({"created_at", "started_at", "finished_at", "lease_until", "last_modified", "first_seen",
                   "updated_at", "expires_at"})


def utcnow() -> datetime:
    return datetime.now(UTC)


def ts(value: datetime | None) -> str | None:
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat(timespec="microseconds")


def dt(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def base_of(row: sqlite3.Row) -> BaseModel:
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


def candidate_params(c: Candidate, now: datetime) -> tuple:
    return (
        c.base_id, c.repo_id, c.sha, c.kind.value, c.match.value, c.status.value,
        c.skip_reason.value if c.skip_reason else None, c.downloads, c.likes, c.license,
        json.dumps(list(c.tags)), c.pipeline_tag, ts(c.last_modified), c.num_params,
        int(c.has_safetensors), ts(c.first_seen or now), ts(now),
    )


def record_of(cls, row: sqlite3.Row, **convert):
    """A record of ``cls`` from the row's columns of the same names: a timestamp column (``DATES``) through ``dt``,
    a column in ``convert`` through its function, any other as stored."""
    columns = set(row.keys())
    values = {}
    for f in fields(cls):
        if f.name in columns:
            read = convert.get(f.name) or (dt if f.name in DATES else None)
            values[f.name] = read(row[f.name]) if read else row[f.name]
    return cls(**values)


def candidate_of(row: sqlite3.Row) -> Candidate:
    return record_of(Candidate, row, kind=Kind, match=Match, status=CandidateStatus, tags=_tuple,
                     skip_reason=lambda v: SkipReason(v) if v else None, has_safetensors=bool)


def job_of(row: sqlite3.Row) -> Job:
    return record_of(Job, row, status=JobStatus)


def score_of(row: sqlite3.Row) -> Score:
    return record_of(Score, row, extra=json.loads)


def _tuple(text: str) -> tuple:
    return tuple(json.loads(text))


def insert_scores(conn, scores, now: datetime, *, on_conflict: str = "REPLACE") -> int:
    """Write ``scores`` in the caller's transaction (REPLACE: a rerun's score replaces the stored one)."""
    from data.store.schema import SCORE_COLUMNS

    return conn.executemany(
        f"INSERT OR {on_conflict} INTO scores ({SCORE_COLUMNS}) VALUES ({', '.join('?' * 15)})",
        [(s.repo_id, s.revision, s.scorer, s.metric, s.target, s.seed, float(s.value), s.config_hash, s.config_json,
          s.source, s.duration_s, json.dumps(s.extra, sort_keys=True), ts(s.created_at or now), s.base_id, s.status)
         for s in scores],
    ).rowcount
