"""IntertrainingScorer: fine-tune the candidate and its base on every target of a suite.

Stores one ``target_score`` per (model, target, seed); the ranking turns them into gains against the
base's mean over seeds. Base runs are shared by every candidate: runs already in the store (same base
sha, target, seed and protocol hash) are not redone.
"""

from __future__ import annotations

import logging
import time
from dataclasses import replace
from typing import ClassVar

from data.payloads import FinetuneRun
from data.records import Score
from data.settings import Settings
from data.targets import suite
from scoring.base import RegisteredScorer, ScoreOptions, ScoringContext, ScoringJob, check_finite
from scoring.config import IntertrainingConfig, profile
from scoring.finetune import finetune
from scoring.target_data import load_target

logger = logging.getLogger(__name__)


class IntertrainingScorer(RegisteredScorer):
    name: ClassVar[str] = "intertraining"
    config_type: ClassVar[type] = IntertrainingConfig
    settings_fields: ClassVar[tuple[str, ...]] = ("suite",)

    @classmethod
    def config_for(cls, settings: Settings, options: ScoreOptions | None = None) -> IntertrainingConfig:
        o = options or ScoreOptions()
        cfg = IntertrainingConfig(suite=o.suite or settings.suite)
        return replace(cfg, finetune=profile(o.profile) if o.profile else cfg.finetune,
                       candidate_seeds=o.seeds or cfg.candidate_seeds, base_seeds=o.base_seeds or cfg.base_seeds)

    def score(self, job: ScoringJob, ctx: ScoringContext) -> list[Score]:
        ft = self.cfg.finetune
        targets = [load_target(spec, max_train=ft.max_train_examples, max_eval=ft.max_eval_examples, seed=0,
                               local_root=self.local_root)
                   for spec in suite(self.cfg.suite, local_root=self.local_root)]
        proto = self.protocol(sorted([t.name, t.revision] for t in targets))
        cjson, chash = proto.json, proto.hash
        scores: list[Score] = []
        runs = [(job.base_id, job.base_revision, job.base_dir, seed) for seed in range(self.cfg.base_seeds)]
        runs += [(job.repo_id, job.revision, job.model_dir, seed) for seed in range(self.cfg.candidate_seeds)]
        for target in targets:
            for repo_id, revision, model_dir, seed in runs:
                if ctx.has_score(repo_id, revision, self.name, "target_score", target.name, seed, chash):
                    continue
                started = time.perf_counter()
                result = finetune(model_dir, target, replace(ft, seed=seed), device=ctx.device, verbose=ctx.verbose,
                                  cache_dir=ctx.cache_dir, local_root=self.local_root)
                logger.info("%s@%s on %s seed %d: %.4f (%.0fs)", repo_id, revision[:8], target.name, seed,
                            result.test_score, result.duration_s)
                scores.append(Score(
                    repo_id=repo_id, revision=revision, scorer=self.name, metric="target_score",
                    target=target.name, seed=seed, value=result.test_score, config_hash=chash, config_json=cjson,
                    duration_s=time.perf_counter() - started, base_id=job.base_id,
                    extra=FinetuneRun(dataset_revision=target.revision, eval_score=result.eval_score,
                                      best_step=result.best_step, train_examples=result.train_examples,
                                      dropout_rates=result.dropout_rates or None).to_json(),
                ))
        return check_finite(scores, f"intertraining of {job.repo_id}")
