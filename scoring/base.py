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
from data.settings import Settings
from scoring.config import Protocol as ScoreProtocol
from scoring.config import protocol


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
# score_status(the same key) -> "ok" / "failed" when stored, None when not
ScoreStatus = Callable[[str, str, str, str, str, int, str], "str | None"]
# stored_score(the same key) -> the stored Score, None when not stored (or not known to the context)
StoredScore = Callable[[str, str, str, str, str, int, str], "Score | None"]


@dataclass(frozen=True, slots=True, kw_only=True)
class ScoringContext:
    device: str = "cpu"
    verbose: bool = False
    cache_dir: Path | None = None
    run_workers: int = 1  # fine-tuning runs side by side in child processes (scoring/run_pool.py); 1: in this one
    has_score: HasScore = lambda *args: False  # noqa: E731 (a default that knows nothing)
    score_status: ScoreStatus = lambda *args: None  # noqa: E731
    stored_score: StoredScore = lambda *args: None  # noqa: E731 (the stored Score of a key, or None)

    @classmethod
    def for_store(cls, store, **options) -> ScoringContext:
        """A context whose ``has_score`` and ``score_status`` read ``store`` (a data.store.Store)."""
        return cls(has_score=store.has_score, score_status=store.score_status, stored_score=store.stored_score,
                   **options)

    @classmethod
    def for_known(cls, known: dict, **options) -> ScoringContext:
        """A context answering from ``known``: score key -> status (a Ray task cannot read the store)."""
        return cls(has_score=lambda *key: key in known, score_status=lambda *key: known.get(key), **options)


class Scorer(Protocol):
    name: ClassVar[str]

    def score(self, job: ScoringJob, ctx: ScoringContext) -> list[Score]: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class ScoreOptions:
    """Choices given on a command line (``python -m scoring score``); None keeps the default. Each scorer
    reads the ones that concern it in ``config_for``."""

    suite: str | None = None
    profile: str | None = None
    seeds: int | None = None
    base_seeds: int | None = None
    probe_target: str | None = None
    lrs: tuple[float, ...] | None = None  # intertraining: the base's learning-rate sweep per target


class RegisteredScorer:
    """What every registered scorer declares (scoring/registry.py) and how it is built.

    ``config_type`` is its frozen config dataclass (scoring/config.py); ``settings_fields`` the ``Settings``
    fields its default config reads (``config_for``); ``protocol(data)`` the one protocol hash of its scores."""

    name: ClassVar[str]
    config_type: ClassVar[type]
    settings_fields: ClassVar[tuple[str, ...]] = ()

    def __init_subclass__(cls, *, name: str | None = None, config_type: type | None = None,
                          settings_fields: tuple[str, ...] | None = None, **kwargs):
        """A scorer declares itself in its class line: ``class KnnScorer(RegisteredScorer, name="knn", ...)``."""
        super().__init_subclass__(**kwargs)
        declared = {"name": name, "config_type": config_type, "settings_fields": settings_fields}
        for attribute, value in declared.items():
            if value is not None:
                setattr(cls, attribute, value)

    def __init__(self, cfg=None, *, local_root: Path | None = None):
        if cfg is not None and not isinstance(cfg, self.config_type):
            raise TypeError(f"{self.name} takes a {self.config_type.__name__}, got {type(cfg).__name__}")
        self.cfg = self.config_type() if cfg is None else cfg
        self.local_root = local_root

    @classmethod
    def config_for(cls, settings: Settings, options: ScoreOptions | None = None):
        """The config this scorer runs under for these settings and command-line options."""
        return cls.config_type()

    @classmethod
    def from_settings(cls, settings: Settings, *, config=None, options: ScoreOptions | None = None,
                      local_root: Path | None = None):
        return cls(config if config is not None else cls.config_for(settings, options), local_root=local_root)

    def protocol(self, data) -> ScoreProtocol:
        """Protocol of a score of this scorer on ``data`` (names and revisions of what it read)."""
        return protocol(self.name, self.cfg, data)


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
