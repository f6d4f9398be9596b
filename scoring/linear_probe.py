"""LinearProbeScorer: stage 1, the cheap prefilter — probe accuracy on the suite's NLI target."""

from __future__ import annotations

import time

from data.payloads import ProbeRun
from data.records import Score
from data.settings import Settings
from data.targets import suite
from scoring.base import RegisteredScorer, ScoreOptions, ScoringContext, ScoringJob, check_finite
from scoring.config import LinearProbeConfig
from scoring.probe import probe
from scoring.target_data import load_target

# The probe target when none is given: MNLI as on the model-recycling site; offline, the local NLI set.
DEFAULT_PROBE_TARGETS = {"published": "mnli"}
LOCAL_PROBE_TARGET = "sick"


class LinearProbeScorer(RegisteredScorer, name="linear_probe", config_type=LinearProbeConfig,
                        settings_fields=("suite",)):
    @classmethod
    def config_for(cls, settings: Settings, options: ScoreOptions | None = None) -> LinearProbeConfig:
        o = options or ScoreOptions()
        return LinearProbeConfig(suite=o.suite or settings.suite, target=o.probe_target or "")

    @property
    def target_name(self) -> str:
        return self.cfg.target or DEFAULT_PROBE_TARGETS.get(self.cfg.suite, LOCAL_PROBE_TARGET)

    def score(self, job: ScoringJob, ctx: ScoringContext) -> list[Score]:
        [spec] = suite(self.target_name, local_root=self.local_root)
        target = load_target(spec, seed=self.cfg.probe.seed, local_root=self.local_root)
        proto = self.protocol([target.name, target.revision])
        started = time.perf_counter()
        result = probe(job.model_dir, target, self.cfg.probe, device=ctx.device, cache_dir=ctx.cache_dir,
                       model_key=f"{job.repo_id}@{job.revision}")
        score = Score(
            repo_id=job.repo_id, revision=job.revision, scorer=self.name, metric="probe_accuracy",
            target=target.name, seed=self.cfg.probe.seed, value=result.accuracy,
            config_hash=proto.hash, config_json=proto.json,
            duration_s=time.perf_counter() - started, base_id=job.base_id,
            extra=ProbeRun(dataset_revision=target.revision, train_accuracy=result.train_accuracy,
                           feature_seconds=result.feature_seconds, fit_seconds=result.fit_seconds).to_json(),
        )
        return check_finite([score], f"linear probe of {job.repo_id}")
