"""IntertrainingScorer: fine-tune the candidate and its base on every target of a suite.

Stores one ``target_score`` per (model, target, seed); the ranking turns them into gains against the
base's mean over seeds. Base runs are shared by every candidate: runs already in the store (same base
sha, target, seed and protocol hash) are not redone.
"""

from __future__ import annotations

import logging
import time
from dataclasses import replace
from pathlib import Path
from typing import ClassVar

from data.metrics import RERUN_STRIDE
from data.payloads import FinetuneRun
from data.records import Score
from data.settings import Settings
from data.targets import suite
from scoring.base import RegisteredScorer, ScoreOptions, ScoringContext, ScoringJob, check_finite
from scoring.config import IntertrainingConfig, profile
from scoring.finetune import finetune
from scoring.run_check import failure_reasons
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
        """Every suite target: the base's seeds and the candidate's, paired by seed. A failed run (any model)
        is stored as failed and its seed slot tried again at seed + RERUN_STRIDE, up to ``max_reruns`` times;
        for the candidate's slots both models run at each seed tried, until both have an ok run on one seed."""
        ft = self.cfg.finetune
        targets = [load_target(spec, max_train=ft.max_train_examples, max_eval=ft.max_eval_examples, seed=0,
                               local_root=self.local_root)
                   for spec in suite(self.cfg.suite, local_root=self.local_root)]
        proto = self.protocol(sorted([t.name, t.revision] for t in targets))
        runner = _Runner(self, job, ctx, proto)
        base = (job.base_id, job.base_revision, job.base_dir)
        cand = (job.repo_id, job.revision, job.model_dir)
        for target in targets:
            for slot in range(max(self.cfg.base_seeds, self.cfg.candidate_seeds)):
                models = [base, cand] if slot < self.cfg.candidate_seeds else [base]
                for attempt in range(self.cfg.max_reruns + 1):
                    ok = [runner.ensure(model, target, slot + RERUN_STRIDE * attempt) for model in models]
                    if all(ok):  # every model of the slot has an ok run on the same seed (each one ran)
                        break
        return check_finite(runner.scores, f"intertraining of {job.repo_id}")


class _Runner:
    """Runs of one job: a stored run is reused (its status read), a missing one fine-tuned, checked and kept."""

    def __init__(self, scorer: IntertrainingScorer, job: ScoringJob, ctx: ScoringContext, proto) -> None:
        self.scorer, self.job, self.ctx, self.proto = scorer, job, ctx, proto
        self.scores: list[Score] = []
        self.status: dict[tuple, str] = {}

    def ensure(self, model: tuple[str, str, Path], target, seed: int) -> bool:
        """Is there an ok run of ``model`` on ``target`` at ``seed``? Fine-tunes it when none is stored."""
        repo_id, revision, _ = model
        key = (repo_id, revision, self.scorer.name, "target_score", target.name, seed, self.proto.hash)
        status = self.status.get(key) or self.ctx.score_status(*key)
        if status is None and self.ctx.has_score(*key):
            status = "ok"  # a context that knows what is stored but not its status
        if status is None:
            status = self._run(model, target, seed)
            self.status[key] = status
        return status == "ok"

    def _run(self, model: tuple[str, str, Path], target, seed: int) -> str:
        repo_id, revision, model_dir = model
        started = time.perf_counter()
        result = finetune(model_dir, target, replace(self.scorer.cfg.finetune, seed=seed), device=self.ctx.device,
                          verbose=self.ctx.verbose, cache_dir=self.ctx.cache_dir, local_root=self.scorer.local_root)
        reasons = failure_reasons(result, target.metric)
        logger.info("%s@%s on %s seed %d: %.4f (%.0fs)%s", repo_id, revision[:8], target.name, seed,
                    result.test_score, result.duration_s, f", failed: {'; '.join(reasons)}" if reasons else "")
        self.scores.append(Score(
            repo_id=repo_id, revision=revision, scorer=self.scorer.name, metric="target_score", target=target.name,
            seed=seed, value=result.test_score, config_hash=self.proto.hash, config_json=self.proto.json,
            duration_s=time.perf_counter() - started, base_id=self.job.base_id, status="failed" if reasons else "ok",
            extra=FinetuneRun(dataset_revision=target.revision, eval_score=result.eval_score,
                              best_step=result.best_step, train_examples=result.train_examples,
                              dropout_rates=result.dropout_rates or None, test_classes=result.test_classes,
                              majority_rate=result.majority_rate, loss_start=result.loss_start,
                              loss_end=result.loss_end, failure=reasons).to_json(),
        ))
        return "failed" if reasons else "ok"
