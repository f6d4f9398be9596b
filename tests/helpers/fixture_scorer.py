"""A scorer that exists only for a test, added as a new scorer is: this one module and one registration (``SPEC``,
registered by tests/integration/test_scorer_declared_once.py). It reads a model's encoder layer count from its
config.json: a known answer for every checkpoint."""

from __future__ import annotations

import json
from dataclasses import dataclass

from data.metrics import MetricSpec, ScorerSpec
from data.records import Score
from scoring.base import RegisteredScorer


@dataclass(frozen=True)
class LayerCountConfig:
    field_name: str = "num_hidden_layers"


class LayerCountScorer(RegisteredScorer):
    name = "layer_count"
    config_type = LayerCountConfig

    def score(self, job, ctx) -> list[Score]:
        config = json.loads((job.model_dir / "config.json").read_text())
        proto = self.protocol([])
        return [Score(repo_id=job.repo_id, revision=job.revision, scorer=self.name, metric="layer_count",
                      value=float(config[self.cfg.field_name]), config_hash=proto.hash, config_json=proto.json,
                      base_id=job.base_id)]


SPEC = ScorerSpec("layer_count", "tests.helpers.fixture_scorer:LayerCountScorer", "full", (
    MetricSpec(key="layer_count", label="layers", page_label="encoder layers", higher_is_better=False, unit="layers",
               fmt="int", board="summary", description="The encoder's layer count, read from its config.json."),),
    "a test's scorer: the encoder's layer count")
