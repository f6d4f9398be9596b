"""Rows of the store's tables to and from the records of ``data.records``; timestamps as ISO strings in UTC."""

from __future__ import annotations

import json
import sqlite3
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


def candidate_of(row: sqlite3.Row) -> Candidate:
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
        last_modified=dt(row["last_modified"]),
        num_params=row["num_params"],
        has_safetensors=bool(row["has_safetensors"]),
        first_seen=dt(row["first_seen"]),
        updated_at=dt(row["updated_at"]),
    )


def job_of(row: sqlite3.Row) -> Job:
    return Job(
        id=row["id"],
        repo_id=row["repo_id"],
        revision=row["revision"],
        scorer=row["scorer"],
        base_id=row["base_id"],
        status=JobStatus(row["status"]),
        attempts=row["attempts"],
        error=row["error"],
        created_at=dt(row["created_at"]),
        started_at=dt(row["started_at"]),
        finished_at=dt(row["finished_at"]),
        lease_until=dt(row["lease_until"]),
        worker=row["worker"],
    )


def score_of(row: sqlite3.Row) -> Score:
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
        created_at=dt(row["created_at"]),
        base_id=row["base_id"],
        status=row["status"],
    )


def insert_scores(conn, scores, now: datetime, *, on_conflict: str = "REPLACE") -> int:
    """Write ``scores`` in the caller's transaction (REPLACE: a rerun's score replaces the stored one)."""
    from data.store.schema import SCORE_COLUMNS

    return conn.executemany(
        f"INSERT OR {on_conflict} INTO scores ({SCORE_COLUMNS}) VALUES ({', '.join('?' * 15)})",
        [(s.repo_id, s.revision, s.scorer, s.metric, s.target, s.seed, float(s.value), s.config_hash, s.config_json,
          s.source, s.duration_s, json.dumps(s.extra, sort_keys=True), ts(s.created_at or now), s.base_id, s.status)
         for s in scores],
    ).rowcount
