"""A finished personal ranking as one typed, versioned record: written by the worker (service/personal.py, ordered by
ranking/personal.py), stored as JSON in ``personal_requests.result``, read back into these types by the store, and
shown by the page and the CLI. ``RANKING_VERSION`` names the layout (a document written before it was versioned has
this same layout, version 1); a stored document of another version, or one that does not fit these fields, is refused
in one sentence (``RankingFormatError``) rather than half read."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields

from data.errors import LeaderboardError

RANKING_VERSION = 1


class RankingFormatError(LeaderboardError):
    """A stored ranking that is not a ranking of this layout."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Estimate:
    """One estimator's value on a model with its diagnostics ("ok", or the check it failed and why)."""

    metric: str
    value: float | None
    status: str
    error: str = ""
    diagnostics: Mapping = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.status == "ok" and self.value is not None


@dataclass(frozen=True, slots=True, kw_only=True)
class RankedModel:
    """One model of the ranking: who it is, its estimates (or why it has none) and where it placed."""

    repo_id: str
    revision: str | None
    role: str  # "base" or "candidate"
    general_rank: int | None  # its rank on the general leaderboard (None: the base, or not ranked there)
    mean_gain: float | None  # on the general leaderboard
    source: str = "hub"  # "hub" or "local"
    estimates: Mapping[str, Estimate] = field(default_factory=dict)  # estimator name -> estimate
    error: str = ""  # why it could not be fetched or read (then no estimates)
    feature_seconds: float = 0.0
    seconds: float = 0.0
    general_position: int | None = None  # its place among the ranked models with a general gain
    combined_rank: int | None = None
    ranks: Mapping[str, int | None] = field(default_factory=dict)  # estimator name -> rank

    @property
    def gain(self) -> float | None:
        """The general mean gain when it is a number."""
        return float(self.mean_gain) if self.mean_gain is not None and math.isfinite(self.mean_gain) else None


@dataclass(frozen=True, slots=True, kw_only=True)
class PersonalRanking:
    base_id: str
    source: str
    summary: Mapping
    estimators: Mapping[str, str]  # estimator name -> the metric it writes, in column order
    protocols: Mapping[str, str]  # estimator name -> its protocol hash
    rule: str
    models: tuple[RankedModel, ...]
    version: int = RANKING_VERSION

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, doc: Mapping) -> PersonalRanking:
        """The record of a stored document; RankingFormatError when it is another version or does not fit."""
        if not isinstance(doc, Mapping) or doc.get("version", 1) != RANKING_VERSION:
            found = doc.get("version") if isinstance(doc, Mapping) else type(doc).__name__
            raise RankingFormatError(f"a stored personal ranking of layout {found!r} (this app reads layout "
                                     f"{RANKING_VERSION})")
        try:
            models = tuple(_model(m) for m in doc["models"])
            return cls(**{**_known(cls, doc), "models": models})
        except (KeyError, TypeError) as e:
            raise RankingFormatError(f"a stored personal ranking does not fit its layout ({e})") from None


def _known(cls, doc: Mapping) -> dict:
    names = {f.name for f in fields(cls)}
    return {k: v for k, v in doc.items() if k in names}


def _model(doc: Mapping) -> RankedModel:
    estimates = {name: Estimate(**_known(Estimate, e)) for name, e in (doc.get("estimates") or {}).items()}
    return RankedModel(**{**_known(RankedModel, doc), "estimates": estimates})
