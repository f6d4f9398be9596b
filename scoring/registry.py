"""Scorer name -> where its class lives and which metrics it writes. Imports no torch.

To add a scorer: one module, one line here, its tests. Nothing else branches on scorer names.
"""

from __future__ import annotations

import difflib
import importlib
from dataclasses import dataclass
from types import MappingProxyType

from data.metrics import METRICS


@dataclass(frozen=True, slots=True)
class ScorerSpec:
    target: str  # "module:Class"
    metrics: tuple[str, ...]  # keys of data.metrics.METRICS it stores
    description: str


SCORERS: MappingProxyType[str, ScorerSpec] = MappingProxyType({
    "intertraining": ScorerSpec("scoring.intertraining:IntertrainingScorer", ("target_score",),
                                "fine-tune on every target of the suite; gains against the base's seeds"),
    "free_energy": ScorerSpec("scoring.free_energy:FreeEnergyScorer",
                              ("free_energy", "llc_mean", "llc_std", "init_loss"),
                              "SGLD free energy of the encoder under the base's masked-LM head; no target data"),
    "sample_efficiency": ScorerSpec("scoring.sample_efficiency:SampleEfficiencyScorer",
                                    ("lora_accuracy", "labels_saved"),
                                    "LoRA accuracy vs number of labels; labels saved against the base"),
    "linear_probe": ScorerSpec("scoring.linear_probe:LinearProbeScorer", ("probe_accuracy",),
                               "stage 1: logistic regression on frozen features of the probe target"),
})


def get_scorer(name: str):
    """The scorer class registered under ``name`` (imported lazily)."""
    try:
        spec = SCORERS[name]
    except KeyError:
        close = difflib.get_close_matches(name, list(SCORERS), n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else f"; known: {', '.join(SCORERS)}"
        raise KeyError(f"unknown scorer {name!r}{hint}") from None
    module, _, attr = spec.target.partition(":")
    return getattr(importlib.import_module(module), attr)


def check_registry() -> None:
    """Invariants: every metric is declared in data.metrics."""
    for name, spec in SCORERS.items():
        for metric in spec.metrics:
            if metric not in METRICS:
                raise AssertionError(f"scorer {name} writes undeclared metric {metric!r}")
