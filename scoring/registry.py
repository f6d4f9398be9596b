"""The only way a scorer exists: a registered name, built by ``build(name, settings, ...)``. Imports no torch.

A registration says where the class lives (imported lazily), its stage role (``prefilter``: a cheap stage 1
whose results choose who gets the full runs; ``full``: a score shown on the leaderboard; ``personal``: an
estimator on a user's own rows, run by a personal ranking's job, never queued per model), the metrics it
stores and one line for help texts. The class itself declares its ``name``, its ``config_type`` (a frozen
dataclass in scoring/config.py), the ``Settings`` fields it reads (``settings_fields``) and builds itself:
``from_settings(settings, config=None, local_root=None)``. Adding a scorer is one module plus one
``register`` line here; nothing else branches on scorer names (tests/unit/test_imports.py checks).
Modelled on lm-evaluation-harness ``lm_eval/api/registry.py`` (a name registered twice raises).
"""

from __future__ import annotations

import difflib
import importlib
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Literal

from data.metrics import METRICS
from data.settings import Settings

Stage = Literal["prefilter", "full", "personal"]


@dataclass(frozen=True, slots=True)
class ScorerSpec:
    name: str
    target: str  # "module:Class"
    stage: Stage
    metrics: tuple[str, ...]  # keys of data.metrics.METRICS it stores
    description: str


_SPECS: dict[str, ScorerSpec] = {}
SCORERS: MappingProxyType[str, ScorerSpec] = MappingProxyType(_SPECS)


def register(spec: ScorerSpec) -> ScorerSpec:
    """Add a scorer; a name registered twice, an unknown stage or an undeclared metric raises ValueError."""
    if spec.name in _SPECS:
        raise ValueError(f"scorer {spec.name!r} is registered twice ({_SPECS[spec.name].target} and {spec.target})")
    if spec.stage not in ("prefilter", "full", "personal"):
        raise ValueError(f"scorer {spec.name!r}: stage must be 'prefilter', 'full' or 'personal', got {spec.stage!r}")
    undeclared = [m for m in spec.metrics if m not in METRICS]
    if undeclared:
        raise ValueError(f"scorer {spec.name!r} writes undeclared metrics {undeclared} (declare them in "
                         "data/metrics.py)")
    _SPECS[spec.name] = spec
    return spec


register(ScorerSpec("intertraining", "scoring.intertraining:IntertrainingScorer", "full", ("target_score", "lr_choice"),
                    "fine-tune on every target of the suite; gains against the base's seeds"))
register(ScorerSpec("free_energy", "scoring.free_energy:FreeEnergyScorer", "full",
                    ("free_energy", "llc_mean", "llc_std", "init_loss"),
                    "SGLD free energy of the encoder under the base's masked-LM head; no target data"))
register(ScorerSpec("sample_efficiency", "scoring.sample_efficiency:SampleEfficiencyScorer", "full",
                    ("lora_accuracy", "labels_saved"),
                    "LoRA accuracy vs number of labels; labels saved against the base"))
register(ScorerSpec("knn", "scoring.knn:KnnScorer", "full", ("knn_accuracy", "logme_target"),
                    "kNN accuracy and LogME on frozen features of every target of the suite (reads target data; "
                    "baselines)"))
register(ScorerSpec("linear_probe", "scoring.linear_probe:LinearProbeScorer", "prefilter", ("probe_accuracy",),
                    "stage 1: logistic regression on frozen features of the probe target"))
register(ScorerSpec("cv_probe", "scoring.personal_estimators:CvProbeEstimator", "personal", ("cv_probe_accuracy",),
                    "personal: cross-validated linear-probe accuracy on the user's rows"))
register(ScorerSpec("cv_knn", "scoring.personal_estimators:CvKnnEstimator", "personal", ("cv_knn_accuracy",),
                    "personal: cross-validated kNN accuracy on the user's rows"))
register(ScorerSpec("logme", "scoring.personal_estimators:LogmeEstimator", "personal", ("logme",),
                    "personal: LogME evidence of the user's labels on frozen features"))


def spec(name: str) -> ScorerSpec:
    """The registration of ``name``; KeyError naming the close matches (or every known name)."""
    try:
        return _SPECS[name]
    except KeyError:
        close = difflib.get_close_matches(name, list(_SPECS), n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else f"; known: {', '.join(_SPECS)}"
        raise KeyError(f"unknown scorer {name!r}{hint}") from None


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


def queued() -> list[str]:
    """The scorers a job per model runs (stages prefilter and full): what a worker takes by default."""
    return [name for name, s in _SPECS.items() if s.stage != "personal"]


def personal() -> list[str]:
    """The estimators a personal ranking runs on the user's rows, in registration order."""
    return [name for name, s in _SPECS.items() if s.stage == "personal"]


def unknown(names) -> list[str]:
    """The names in ``names`` that no scorer is registered under."""
    return [n for n in names if n not in _SPECS]
