"""Seeding a store from the data bundled in the project, once per bundled version.

Two bundles ship with the project: the offline study's snapshot (``data/snapshot/study.json``) and IBM's
published 2023 results (``data/published_2023/``). ``python app.py`` calls ``seed_bundles`` after opening its
store. Each bundle is applied at most once per version (the sha256 of its bytes), recorded in the store's
``bundles_applied`` table in the same transaction as its rows: a row a deployment deleted is not re-added at
the next start, and a new bundled version adds only what the store lacks. The store's own data always wins
(nothing stored is updated or deleted) and no jobs are created.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from data.errors import LeaderboardError
from data.records import BaseModel, Candidate, Score
from data.settings import DEFAULT_SNAPSHOT, Settings
from data.store import Store

logger = logging.getLogger(__name__)

STUDY = "study-snapshot"
PUBLISHED = "published-2023"

Records = tuple[Sequence[BaseModel], Sequence[Candidate], Sequence[Score]]


@dataclass(frozen=True, slots=True, kw_only=True)
class BundleSeed:
    """What seeding one bundle did: ``added`` is None when this version had been applied before."""

    name: str
    path: Path
    version: str
    added: tuple[int, int, int] | None  # bases, candidates, scores
    total: tuple[int, int, int] | None  # in the bundle (None when it was not read)
    duration_s: float

    def summary(self) -> str:
        where = f"{self.name} {self.path} (version {self.version[:12]})"
        if self.added is None:
            return f"{where}: already applied to this store; nothing added"
        (b, c, s), (tb, tc, ts) = self.added, self.total
        return (f"{where}: bases +{b} ({tb - b} already stored), candidates +{c} ({tc - c} already stored), "
                f"scores +{s} ({ts - s} already stored) in {self.duration_s:.2f}s")


def bundle_version(path: Path) -> str:
    """sha256 over a file's bytes, or over every file under a directory (relative names and bytes, sorted)."""
    path = Path(path)
    digest = hashlib.sha256()
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    for file in files:
        digest.update(file.relative_to(path).as_posix().encode() + b"\0" if file != path else b"")
        digest.update(file.read_bytes())
    return digest.hexdigest()


def apply_bundle(store: Store, name: str, path: Path, read: Callable[[Path], Records]) -> BundleSeed:
    """Seed ``store`` from one bundle unless this version has been applied; raises LeaderboardError (from
    ``read``) on a bad bundle, and then nothing is written."""
    started = time.perf_counter()
    version = bundle_version(path)
    if store.is_bundle_applied(name, version):
        return BundleSeed(name=name, path=Path(path), version=version, added=None, total=None,
                          duration_s=time.perf_counter() - started)
    bases, candidates, scores = read(Path(path))
    added = store.apply_bundle(name, version, bases, candidates, scores)
    total = (len(bases), len(candidates), len(scores))
    return BundleSeed(name=name, path=Path(path), version=version, added=added, total=total,
                      duration_s=time.perf_counter() - started)


def read_study(path: Path) -> Records:
    from data.snapshot import read_snapshot

    snapshot = read_snapshot(path)
    return snapshot.bases, snapshot.candidates, snapshot.scores


def read_published_bundle(path: Path) -> Records:
    from data.published import read_published

    return (), (), read_published(path).scores


def seed_bundles(store: Store, settings: Settings) -> list[BundleSeed]:
    """What ``python app.py`` does after opening its store: apply each bundle its settings name. A bundle turned
    off (``none``), missing or bad is logged (a bad one as an error) and skipped; the store is used as it is."""
    if store.read_only:
        logger.info("the store is read-only: no bundle is seeded")
        return []
    seeds = []
    for name, path, read in ((PUBLISHED, settings.published_path, read_published_bundle),
                             (STUDY, settings.snapshot_path, read_study)):
        if path is None:
            logger.info("seeding from the %s bundle is off", name)
            continue
        if not Path(path).exists():
            logger.info("no %s bundle at %s: the store is used as it is", name, path)
            continue
        try:
            seed = apply_bundle(store, name, path, read)
        except (LeaderboardError, OSError) as e:
            logger.error("the %s bundle was not loaded, the store is used as it is: %s", name, e)
            continue
        logger.info("%s", seed.summary())
        seeds.append(seed)
    return seeds


PERSONAL_VALIDATION = DEFAULT_SNAPSHOT.with_name("personal_validation.json")


def read_personal_validation(path: Path = PERSONAL_VALIDATION) -> dict | None:
    """The bundled "does personalising help?" figures (``python -m scoring personal-study``): the base they were
    measured on and their rows, a null figure as NaN; None when the file is absent or unreadable (logged)."""
    import json
    import math

    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        rows = [{k: math.nan if v is None else v for k, v in row.items()} for row in doc["rows"]]
        return {"base_id": str(doc["base_id"]), "rows": rows, "generated": str(doc.get("generated", ""))}
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
        logger.warning("personal validation %s not read: %s", path, e)
        return None
