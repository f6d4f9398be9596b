"""IntertrainingScorer: fine-tune the candidate and its base on every target of a suite.

Stores one ``target_score`` per (model, target, seed); the ranking turns them into gains against the
base's mean over seeds. Base runs are shared by every candidate: runs already in the store (same base
sha, target, seed and protocol hash) are not redone.
"""

from __future__ import annotations

import hashlib
import logging
import time
from dataclasses import replace
from pathlib import Path
from typing import ClassVar

from data.records import Score
from data.targets import suite
from scoring.base import ScoringContext, ScoringJob, check_finite
from scoring.config import IntertrainingConfig, protocol_json
from scoring.finetune import finetune
from scoring.target_data import load_target

logger = logging.getLogger(__name__)


class IntertrainingScorer:
    name: ClassVar[str] = "intertraining"

    def __init__(self, cfg: IntertrainingConfig | None = None, *, local_root: Path | None = None):
        self.cfg = cfg or IntertrainingConfig()
        self.local_root = local_root

    def score(self, job: ScoringJob, ctx: ScoringContext) -> list[Score]:
        ft = self.cfg.finetune
        targets = [load_target(spec, max_train=ft.max_train_examples, max_eval=ft.max_eval_examples, seed=0,
                               local_root=self.local_root)
                   for spec in suite(self.cfg.suite, local_root=self.local_root)]
        cjson = protocol_json(ft, [(t.name, t.revision) for t in targets])
        chash = hashlib.sha256(cjson.encode()).hexdigest()
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
                    extra={"dataset_revision": target.revision, "eval_score": result.eval_score,
                           "best_step": result.best_step, "train_examples": result.train_examples,
                           **({"dropout_rates": result.dropout_rates} if result.dropout_rates else {})},
                ))
        return check_finite(scores, f"intertraining of {job.repo_id}")
