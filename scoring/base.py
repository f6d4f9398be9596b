"""What every scorer gets and returns: local snapshot dirs in, Score records out. No network, no store."""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Protocol

from data.errors import ScoringError
from data.records import Score


@dataclass(frozen=True, slots=True, kw_only=True)
class ScoringJob:
    """A candidate and its base, each as a repo id, the commit sha scored, and a local directory."""

    repo_id: str
    revision: str
    model_dir: Path
    base_id: str
    base_revision: str
    base_dir: Path


# has_score(repo_id, revision, scorer, metric, target, seed, config_hash) -> already stored?
HasScore = Callable[[str, str, str, str, str, int, str], bool]


@dataclass(frozen=True, slots=True, kw_only=True)
class ScoringContext:
    device: str = "cpu"
    verbose: bool = False
    cache_dir: Path | None = None
    has_score: HasScore = lambda *args: False  # noqa: E731 (a default that knows nothing)


class Scorer(Protocol):
    name: ClassVar[str]

    def score(self, job: ScoringJob, ctx: ScoringContext) -> list[Score]: ...


def check_finite(scores: list[Score], where: str) -> list[Score]:
    """Scores go to the store only when every value is a finite number."""
    for s in scores:
        if not math.isfinite(s.value):
            raise ScoringError(f"{where}: {s.metric} of {s.repo_id} on {s.target or 'all'} (seed {s.seed}) "
                               f"is {s.value}")
    return scores


def directory_revision(model_dir: Path) -> str:
    """A 40-hex content hash of a local checkpoint (config and weights), standing in for a commit sha."""
    digest = hashlib.sha1()
    for path in sorted(Path(model_dir).glob("*")):
        if path.is_file() and path.suffix in (".json", ".safetensors", ".txt", ".model"):
            digest.update(path.name.encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()
