"""LinearProbeScorer: stage 1, the cheap prefilter — probe accuracy on the suite's NLI target."""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import ClassVar

from data.records import Score
from data.targets import suite
from scoring.base import ScoringContext, ScoringJob, check_finite
from scoring.config import PROBE, ProbeConfig
from scoring.probe import probe
from scoring.target_data import load_target

# The probe target when none is given: MNLI as on the model-recycling site; offline, the local NLI set.
DEFAULT_PROBE_TARGETS = {"published": "mnli"}
LOCAL_PROBE_TARGET = "sick"


@dataclass(frozen=True, slots=True, kw_only=True)
class LinearProbeConfig:
    probe: ProbeConfig = field(default_factory=lambda: PROBE)
    target: str = ""  # "" = the suite's default
    suite: str = "quick"


class LinearProbeScorer:
    name: ClassVar[str] = "linear_probe"

    def __init__(self, cfg: LinearProbeConfig | None = None, *, local_root: Path | None = None):
        self.cfg = cfg or LinearProbeConfig()
        self.local_root = local_root

    @property
    def target_name(self) -> str:
        return self.cfg.target or DEFAULT_PROBE_TARGETS.get(self.cfg.suite, LOCAL_PROBE_TARGET)

    def score(self, job: ScoringJob, ctx: ScoringContext) -> list[Score]:
        [spec] = suite(self.target_name, local_root=self.local_root)
        target = load_target(spec, seed=self.cfg.probe.seed, local_root=self.local_root)
        cfg_json = json.dumps({"probe": asdict(self.cfg.probe), "target": target.name}, sort_keys=True,
                              separators=(",", ":"))
        started = time.perf_counter()
        result = probe(job.model_dir, target, self.cfg.probe, device=ctx.device, cache_dir=ctx.cache_dir,
                       model_key=f"{job.repo_id}@{job.revision}")
        score = Score(
            repo_id=job.repo_id, revision=job.revision, scorer=self.name, metric="probe_accuracy",
            target=target.name, seed=self.cfg.probe.seed, value=result.accuracy,
            config_hash=hashlib.sha256(cfg_json.encode()).hexdigest(), config_json=cfg_json,
            duration_s=time.perf_counter() - started, base_id=job.base_id,
            extra={"dataset_revision": target.revision, "train_accuracy": result.train_accuracy,
                   "feature_seconds": result.feature_seconds, "fit_seconds": result.fit_seconds},
        )
        return check_finite([score], f"linear probe of {job.repo_id}")
