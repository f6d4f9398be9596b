"""The only way a scorer is built: ``build(name, settings, ...)`` from its registration. Imports no torch.

Scorers are registered in data/metrics.py (``register(ScorerSpec(...))``: where the class lives, imported here
lazily; its stage role, ``prefilter``: a cheap stage 1 whose results choose who gets the full runs, ``full``: a
score shown on the leaderboard, ``personal``: an estimator on a user's own rows, run by a personal ranking's job,
never queued per model; the metrics it writes, with their direction, display and payload; one line for help
texts). The class declares in its class line its ``name``, its ``config_type`` (a frozen dataclass in
scoring/config.py) and the ``Settings`` fields it reads (``settings_fields``), and builds itself:
``from_settings(settings, config=None, local_root=None)``. Adding a scorer is one module plus one ``register`` call;
nothing else branches on scorer names (tests/unit/test_imports.py checks). Modelled on lm-evaluation-harness
``lm_eval/api/registry.py`` (a name registered twice raises) and mteb's ``TaskMetadata`` (a task's metadata declared
once, read by everything else).
"""

from __future__ import annotations

import importlib
from pathlib import Path

from data.metrics import SCORERS, ScorerSpec, Stage, register, scorer_spec, unregister
from data.settings import Settings

__all__ = ["SCORERS", "ScorerSpec", "Stage", "build", "gain_scorer", "is_prefilter", "personal", "prefilter",
           "queued", "register", "scorer_class", "spec", "unknown", "unregister"]


def spec(name: str) -> ScorerSpec:
    """The registration of ``name``; KeyError naming the close matches (or every known name)."""
    return scorer_spec(name)


def scorer_class(name: str) -> type:
    """The class registered under ``name`` (imported now); it must declare the same name."""
    module, _, attr = spec(name).target.partition(":")
    cls = getattr(importlib.import_module(module), attr)
    if getattr(cls, "name", None) != name:
        raise TypeError(f"{spec(name).target} declares name {getattr(cls, 'name', None)!r}, registered as {name!r}")
    return cls


def build(name: str, settings: Settings, *, config=None, options=None, local_root: Path | None = None):
    """A scorer ready to ``score``: ``config`` as given, else the class's config for these settings and
    command-line ``options`` (scoring.base.ScoreOptions)."""
    return scorer_class(name).from_settings(settings, config=config, options=options, local_root=local_root)


def is_prefilter(name: str) -> bool:
    """Stage 1: after one of its jobs, the two-stage policy may queue full runs (service/stages.py)."""
    return spec(name).stage == "prefilter"


def prefilter() -> str:
    """Stage 1 of the two-stage policy: the first scorer registered as a prefilter."""
    return next(name for name, s in SCORERS.items() if s.stage == "prefilter")


def gain_scorer() -> str:
    """Stage 2: the scorer whose per-target scores the leaderboard's gains are made of (a "target" metric)."""
    return next(name for name, s in SCORERS.items() if any(m.board == "target" for m in s.metrics))


def queued() -> list[str]:
    """The scorers a job per model runs (stages prefilter and full): what a worker takes by default."""
    return [name for name, s in SCORERS.items() if s.stage != "personal"]


def personal() -> list[str]:
    """The estimators a personal ranking runs on the user's rows, in registration order."""
    return [name for name, s in SCORERS.items() if s.stage == "personal"]


def unknown(names) -> list[str]:
    """The names in ``names`` that no scorer is registered under."""
    return [n for n in names if n not in SCORERS]
