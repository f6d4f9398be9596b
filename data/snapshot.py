"""The bundled snapshot: a study's bases, candidates and scores in one small committed JSON file.

``python -m scoring study`` ends with ``write_snapshot``; ``python app.py`` (and ``python -m data
seed-snapshot``) call ``seed_store``, which adds to a store only what it lacks, so a deployment's own data
always wins and seeding twice adds nothing. The file has one record per line (readable git diffs)::

    {"bases":[ ...one BaseModel per line... ], "candidates":[...], "configs":{config_hash: config_json},
     "format":1, "meta":{...}, "scores":[...]}

Enums are stored by value, datetimes as ISO 8601, tuples as lists. A score's ``config_json`` is stored once
per ``config_hash`` under ``configs`` (a score keeps its own only when it differs from that one).
"""

from __future__ import annotations

import dataclasses
import functools
import json
import logging
import os
import types
import typing
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from pathlib import Path

from data.errors import SnapshotError
from data.records import BaseModel, Candidate, Score
from data.settings import DEFAULT_SNAPSHOT
from data.store import Store

logger = logging.getLogger(__name__)

__all__ = ["DEFAULT_SNAPSHOT", "SNAPSHOT_FORMAT", "SeedReport", "Snapshot", "read_snapshot", "seed_store",
           "write_snapshot"]

SNAPSHOT_FORMAT = 1
MAX_SNAPSHOT_BYTES = 5_000_000  # the committed file should stay below this
RECORD_TYPES = {"bases": BaseModel, "candidates": Candidate, "scores": Score}


@dataclass(frozen=True, slots=True)
class Snapshot:
    format: int
    meta: dict
    bases: tuple[BaseModel, ...]
    candidates: tuple[Candidate, ...]
    scores: tuple[Score, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class SeedReport:
    path: Path
    bases_added: int
    bases_skipped: int  # already in the store: left as stored
    candidates_added: int
    candidates_skipped: int
    scores_added: int
    scores_skipped: int

    def summary(self) -> str:
        return (f"seeded from {self.path}: bases +{self.bases_added} ({self.bases_skipped} already stored), "
                f"candidates +{self.candidates_added} ({self.candidates_skipped} already stored), "
                f"scores +{self.scores_added} ({self.scores_skipped} already stored)")


def score_key(s: Score) -> tuple:
    """A score's identity in the store (its UNIQUE key)."""
    return (s.source, s.repo_id, s.revision, s.scorer, s.metric, s.target, s.seed, s.config_hash)


# ------------------------------------------------------------------------------------------------------ write
def write_snapshot(store: Store, path: Path, *, base_ids: Sequence[str], meta: Mapping,
                   superseded: Collection[str] = ()) -> Path:
    """Write the bases ``base_ids``, all their candidates (every status) and every score of their
    leaderboards or of the bases themselves, except those of the protocols ``superseded``, to ``path``,
    atomically; returns ``path``."""
    bases = {}
    for base_id in base_ids:
        if (base := store.get_base(base_id)) is None:
            raise SnapshotError(f"cannot write a snapshot of {base_id}: it is not a base in {store.db_path}")
        bases[base.repo_id] = base
    if not bases:
        raise SnapshotError("cannot write a snapshot of no bases: give at least one base id")
    ids = sorted(bases)
    candidates = [c for base_id in ids for c in store.candidates(base_id)]
    scores = {score_key(s): s for base_id in ids
              for s in (*store.scores(base_id=base_id), *store.scores(repo_id=base_id))
              if s.config_hash not in superseded}
    configs: dict[str, str] = {}
    score_rows = []
    for key in sorted(scores):
        row = _encode(scores[key])
        if configs.setdefault(row["config_hash"], row["config_json"]) == row["config_json"]:
            del row["config_json"]
        score_rows.append(row)
    sections = {
        "bases": _lines("[]", [_dumps(_encode(bases[b])) for b in ids]),
        "candidates": _lines("[]", [_dumps(_encode(c)) for c in candidates]),
        "configs": _lines("{}", [f"{_dumps(k)}:{_dumps(v)}" for k, v in sorted(configs.items())]),
        "format": str(SNAPSHOT_FORMAT),
        "meta": json.dumps(dict(meta), sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str),
        "scores": _lines("[]", [_dumps(row) for row in score_rows]),
    }
    text = _lines("{}", [f"{_dumps(k)}:{v}" for k, v in sections.items()]) + "\n"
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    size = path.stat().st_size
    logger.log(logging.WARNING if size > MAX_SNAPSHOT_BYTES else logging.INFO,
               "%s: %d bases, %d candidates, %d scores, %.1f kB (a committed snapshot should stay under %.0f MB)",
               path, len(bases), len(candidates), len(scores), size / 1000, MAX_SNAPSHOT_BYTES / 1e6)
    return path


def _dumps(value) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def _lines(brackets: str, items: list[str]) -> str:
    """A JSON array or object with one item per line."""
    return f"{brackets[0]}\n" + ",\n".join(items) + f"\n{brackets[1]}" if items else brackets


def _encode(value):
    if dataclasses.is_dataclass(value):
        return {f.name: _encode(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, tuple | list):
        return [_encode(v) for v in value]
    return value


# ------------------------------------------------------------------------------------------------------- read
def read_snapshot(path: Path) -> Snapshot:
    """The snapshot at ``path``; raises ``SnapshotError`` naming the problem (and the record and field)."""
    path = Path(path)
    if not path.is_file():
        raise SnapshotError(f"no snapshot file at {path}")
    try:
        data = json.loads(path.read_bytes().decode("utf-8"))
    except (OSError, UnicodeDecodeError) as e:
        raise SnapshotError(f"cannot read the snapshot {path}: {e}") from e
    except json.JSONDecodeError as e:
        raise SnapshotError(f"{path} is not JSON: {e}") from e
    if not isinstance(data, dict):
        raise SnapshotError(f"{path} is not a snapshot: a JSON object was expected, got {type(data).__name__}")
    if "format" not in data:
        raise SnapshotError(f"{path} is not a snapshot: it has no format number")
    number = data["format"]
    if not isinstance(number, int) or isinstance(number, bool) or number != SNAPSHOT_FORMAT:
        raise SnapshotError(f"{path} has snapshot format {data['format']!r}; this code reads format {SNAPSHOT_FORMAT}")
    for key, kind in (("meta", dict), ("configs", dict), *((k, list) for k in RECORD_TYPES)):
        if not isinstance(data.get(key), kind):
            raise SnapshotError(f"{path}: {key!r} must be a JSON {'object' if kind is dict else 'array'}, "
                                f"got {_show(data.get(key))}")
    configs = data["configs"]
    records = {}
    for key, cls in RECORD_TYPES.items():
        records[key] = []
        for i, row in enumerate(data[key]):
            where = f"{path}: {key}[{i}]" + (f" ({row['repo_id']})" if isinstance(row, dict) and "repo_id" in row
                                             else "")
            if key == "scores" and isinstance(row, dict) and "config_json" not in row:
                if row.get("config_hash") not in configs:
                    raise SnapshotError(f"{where}: no config_json, and its config_hash {row.get('config_hash')!r} "
                                        "is not under 'configs'")
                row = {**row, "config_json": configs[row["config_hash"]]}
            records[key].append(_record(cls, row, where))
    base_ids = {b.repo_id for b in records["bases"]}
    for i, c in enumerate(records["candidates"]):
        if c.base_id not in base_ids:
            raise SnapshotError(f"{path}: candidates[{i}] ({c.repo_id}): its base {c.base_id} is not among the "
                                "snapshot's bases")
    return Snapshot(format=data["format"], meta=data["meta"], bases=tuple(records["bases"]),
                    candidates=tuple(records["candidates"]), scores=tuple(records["scores"]))


def _show(value) -> str:
    text = json.dumps(value) if not isinstance(value, str) else repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


@functools.cache
def _fields_of(cls) -> tuple[dict, dict]:
    return typing.get_type_hints(cls), {f.name: f for f in dataclasses.fields(cls)}


def _record(cls, row, where: str):
    if not isinstance(row, dict):
        raise SnapshotError(f"{where}: a JSON object was expected, got {_show(row)}")
    hints, fields = _fields_of(cls)
    unknown = sorted(set(row) - set(fields))
    if unknown:
        raise SnapshotError(f"{where}: unknown field {unknown[0]!r} (a snapshot of a newer version?)")
    values = {}
    for name, f in fields.items():
        if name in row:
            values[name] = _decode(row[name], hints[name], f"{where}: field {name!r}")
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise SnapshotError(f"{where}: missing field {name!r}")
    return cls(**values)


def _decode(value, hint, where: str):
    """``value`` (parsed JSON) as the type ``hint`` of a record field, or SnapshotError."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):  # X | None
        if value is None:
            return None
        (inner,) = [a for a in args if a is not type(None)]
        return _decode(value, inner, where)
    if dataclasses.is_dataclass(hint):
        return _record(hint, value, where)
    if isinstance(hint, type) and issubclass(hint, Enum):
        try:
            return hint(value)
        except (ValueError, TypeError):
            allowed = ", ".join(m.value for m in hint)
            raise SnapshotError(f"{where}: {_show(value)} is not a {hint.__name__} ({allowed})") from None
    if hint is datetime:
        if isinstance(value, str):
            try:
                return datetime.fromisoformat(value)
            except ValueError:
                pass
        raise SnapshotError(f"{where}: {_show(value)} is not an ISO 8601 date and time")
    if origin is tuple:
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            return tuple(value)
        raise SnapshotError(f"{where}: {_show(value)} is not a list of strings")
    if hint is float and isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if hint in (int, str, bool, dict) and isinstance(value, hint) and not (hint is int and isinstance(value, bool)):
        return value
    raise SnapshotError(f"{where}: {_show(value)} is not a {getattr(hint, '__name__', hint)}")


# ------------------------------------------------------------------------------------------------------- seed
def seed_store(store: Store, path: Path) -> SeedReport:
    """Add to ``store`` the snapshot's bases, candidates and scores it lacks (no jobs, nothing overwritten).

    The whole file is read and checked first: a bad snapshot raises ``SnapshotError`` and changes nothing."""
    snapshot = read_snapshot(path)
    n_bases, n_candidates, n_scores = store.add_missing(snapshot.bases, snapshot.candidates, snapshot.scores)
    return SeedReport(path=Path(path), bases_added=n_bases, bases_skipped=len(snapshot.bases) - n_bases,
                      candidates_added=n_candidates, candidates_skipped=len(snapshot.candidates) - n_candidates,
                      scores_added=n_scores, scores_skipped=len(snapshot.scores) - n_scores)
