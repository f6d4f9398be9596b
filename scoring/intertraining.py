"""IntertrainingScorer: fine-tune the candidate and its base on every target of a suite.

Stores one ``target_score`` per (model, target, seed); the ranking turns them into gains against the
base's mean over seeds. Base runs are shared by every candidate: runs already in the store (same base
sha, target, seed and protocol hash) are not redone.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path

from data.metrics import RERUN_STRIDE
from data.payloads import FinetuneRun, LrSweep
from data.records import Score
from data.settings import Settings
from data.targets import suite
from scoring.base import RegisteredScorer, ScoreOptions, ScoringContext, ScoringJob, check_finite
from scoring.config import IntertrainingConfig, profile
from scoring.finetune import FinetuneResult
from scoring.lr_sweep import LrChoice, choose_lr
from scoring.run_check import failure_reasons
from scoring.run_pool import RunCall, run_all
from scoring.target_data import load_target

logger = logging.getLogger(__name__)


class IntertrainingScorer(RegisteredScorer, name="intertraining", config_type=IntertrainingConfig,
                          settings_fields=("suite",)):
    @classmethod
    def config_for(cls, settings: Settings, options: ScoreOptions | None = None) -> IntertrainingConfig:
        o = options or ScoreOptions()
        cfg = IntertrainingConfig(suite=o.suite or settings.suite)
        return replace(cfg, finetune=profile(o.profile) if o.profile else cfg.finetune,
                       candidate_seeds=o.seeds or cfg.candidate_seeds, base_seeds=o.base_seeds or cfg.base_seeds,
                       lrs=cfg.lrs if o.lrs is None else o.lrs)

    def score(self, job: ScoringJob, ctx: ScoringContext) -> list[Score]:
        """Every kept suite target: the base's seeds and the candidate's, paired by seed. A failed run (any model)
        is stored as failed and its seed slot tried again at seed + RERUN_STRIDE, up to ``max_reruns`` times;
        for the candidate's slots both models run at each seed tried, until both have an ok run on one seed.
        With ``lrs`` set, each target's learning rate is first chosen by the base's sweep (scoring/lr_sweep.py,
        stored once per base and target) and a target the sweep drops gets no runs; with ``max_targets`` set,
        targets are swept in the suite's order until that many are kept, and the rest are dropped unswept.
        The runs of each round go to ``ctx.run_workers`` processes at once (scoring/run_pool.py)."""
        ft = self.cfg.finetune
        targets = [load_target(spec, max_train=ft.max_train_examples, max_eval=ft.max_eval_examples, seed=0,
                               local_root=self.local_root)
                   for spec in suite(self.cfg.suite, local_root=self.local_root)]
        proto = self.protocol(sorted([t.name, t.revision] for t in targets))
        runner = _Runner(self, job, ctx, proto)
        base = (job.base_id, job.base_revision, job.base_dir)
        cand = (job.repo_id, job.revision, job.model_dir)
        if self.cfg.lrs:
            rates = runner.learning_rates(base, targets)
        else:
            rates = {t.name: ft.lr for t in targets[:self.cfg.max_targets or len(targets)]}
        pending = [(t, slot, rates[t.name]) for t in targets if rates.get(t.name) is not None
                   for slot in range(max(self.cfg.base_seeds, self.cfg.candidate_seeds))]
        for attempt in range(self.cfg.max_reruns + 1):
            def models(slot):
                return [base, cand] if slot < self.cfg.candidate_seeds else [base]
            runner.ensure_all([(m, t, slot + RERUN_STRIDE * attempt, lr) for t, slot, lr in pending
                               for m in models(slot)])
            pending = [(t, slot, lr) for t, slot, lr in pending  # a slot is done when every model of it is ok
                       if not all(runner.is_ok(m, t, slot + RERUN_STRIDE * attempt) for m in models(slot))]
            if not pending:
                break
        return check_finite(runner.scores, f"intertraining of {job.repo_id}")


class _Runner:
    """Runs of one job: a stored run is reused (its status read), a missing one fine-tuned, checked and kept."""

    def __init__(self, scorer: IntertrainingScorer, job: ScoringJob, ctx: ScoringContext, proto) -> None:
        self.scorer, self.job, self.ctx, self.proto = scorer, job, ctx, proto
        self.scores: list[Score] = []
        self.status: dict[tuple, str] = {}

    def key(self, model: tuple[str, str, Path], metric: str, target, seed: int) -> tuple:
        repo_id, revision, _ = model
        return (repo_id, revision, self.scorer.name, metric, target.name, seed, self.proto.hash)

    def stored_status(self, model, target, seed: int) -> str | None:
        key = self.key(model, "target_score", target, seed)
        status = self.status.get(key) or self.ctx.score_status(*key)
        if status is None and self.ctx.has_score(*key):
            status = "ok"  # a context that knows what is stored but not its status
        return status

    def is_ok(self, model, target, seed: int) -> bool:
        return self.stored_status(model, target, seed) == "ok"

    def ensure_all(self, wanted: list[tuple]) -> None:
        """Fine-tune every (model, target, seed, lr) of ``wanted`` that has no stored run (each key once), side by
        side, and keep each run."""
        missing: dict[tuple, tuple] = {}
        for model, target, seed, lr in wanted:
            if self.stored_status(model, target, seed) is None:
                missing.setdefault(self.key(model, "target_score", target, seed), (model, target, seed, lr))
        calls = list(missing.values())
        for (model, target, seed, lr), outcome in zip(calls, self.run_all(calls), strict=True):
            self.status[self.key(model, "target_score", target, seed)] = self.record(model, target, seed, lr,
                                                                                   *outcome)

    def learning_rates(self, base: tuple[str, str, Path], targets: list) -> dict[str, float | None]:
        """Each target's rate from the base's sweep (None: dropped), read when stored, else swept and stored: the
        base's runs at the chosen rate are kept as its runs of the target. Targets are swept in suite order, in
        rounds of as many as are still needed to keep ``max_targets``; the rest are stored as dropped unswept."""
        rates: dict[str, float | None] = {}
        for target in targets:
            stored = self.ctx.stored_score(*self.key(base, "lr_choice", target, 0))
            if stored is not None:
                rates[target.name] = stored.value if stored.status == "ok" else None
        cap = self.scorer.cfg.max_targets or len(targets)
        while todo := [t for t in targets if t.name not in rates][:cap - sum(r is not None for r in rates.values())]:
            rates |= self.sweep(base, todo)
        for target in targets:
            if target.name not in rates:
                rates[target.name] = self.drop_unswept(base, target, cap)
        return rates

    def sweep(self, base: tuple[str, str, Path], targets: list) -> dict[str, float | None]:
        cfg = self.scorer.cfg
        calls = [(base, t, seed, lr) for t in targets for lr in cfg.lrs for seed in range(cfg.base_seeds)]
        outcomes = {(t.name, lr, seed): out for (_, t, seed, lr), out in zip(calls, self.run_all(calls), strict=True)}
        rates = {}
        for target in targets:
            choice = choose_lr(lambda lr, seed, name=target.name: outcomes[(name, lr, seed)], cfg.lrs,
                               cfg.base_seeds, target.metric, cfg.min_base_margin)
            logger.info("%s on %s: %s", base[0], target.name, f"lr {choice.lr:g}" if choice.kept else choice.reason)
            if choice.kept:
                for seed, (result, reasons) in enumerate(choice.runs):
                    self.status[self.key(base, "target_score", target, seed)] = self.record(
                        base, target, seed, choice.lr, result, reasons)
            self.scores.append(self._score(base, "lr_choice", target, 0, choice.lr or 0.0, 0.0,
                                           "ok" if choice.kept else "dropped",
                                           _sweep_payload(choice, target, cfg.base_seeds)))
            rates[target.name] = choice.lr
        return rates

    def drop_unswept(self, base, target, cap: int) -> None:
        reason = f"not swept: max_targets = {cap} were already kept, earlier in the suite's order"
        self.scores.append(self._score(base, "lr_choice", target, 0, 0.0, 0.0, "dropped", LrSweep(
            lrs=self.scorer.cfg.lrs, seeds=self.scorer.cfg.base_seeds, reason=reason,
            dataset_revision=target.revision).to_json()))
        return None

    def run_all(self, calls: list[tuple]) -> list[tuple[FinetuneResult, tuple]]:
        """Fine-tune each (model, target, seed, lr), ``ctx.run_workers`` at a time; (result, failure reasons)."""
        ft = self.scorer.cfg.finetune
        results = run_all([RunCall(model[2], target, replace(ft, seed=seed, lr=lr), self.ctx.device,
                                   self.ctx.cache_dir, self.scorer.local_root)
                           for model, target, seed, lr in calls], self.ctx.run_workers)
        out = []
        for (model, target, seed, lr), result in zip(calls, results, strict=True):
            reasons = failure_reasons(result, target.metric)
            logger.info("%s@%s on %s seed %d lr %g: %.4f (%.0fs)%s", model[0], model[1][:8], target.name, seed, lr,
                        result.test_score, result.duration_s, f", failed: {'; '.join(reasons)}" if reasons else "")
            out.append((result, reasons))
        return out

    def record(self, model, target, seed: int, lr: float, result: FinetuneResult, reasons: tuple) -> str:
        """Keep the run as a target_score of ``model``; its status."""
        status = "failed" if reasons else "ok"
        self.scores.append(self._score(model, "target_score", target, seed, result.test_score, result.duration_s,
                                       status, FinetuneRun(
            dataset_revision=target.revision, eval_score=result.eval_score, best_step=result.best_step,
            train_examples=result.train_examples, dropout_rates=result.dropout_rates or None,
            test_classes=result.test_classes, majority_rate=result.majority_rate, loss_start=result.loss_start,
            loss_end=result.loss_end, failure=reasons, lr=lr, steps=result.steps).to_json()))
        return status

    def _score(self, model, metric: str, target, seed: int, value: float, duration_s: float, status: str,
               extra: dict) -> Score:
        repo_id, revision, _ = model
        return Score(repo_id=repo_id, revision=revision, scorer=self.scorer.name, metric=metric, target=target.name,
                     seed=seed, value=value, config_hash=self.proto.hash, config_json=self.proto.json,
                     duration_s=duration_s, base_id=self.job.base_id, status=status, extra=extra)


def _sweep_payload(choice: LrChoice, target, seeds: int) -> dict:
    return LrSweep(lrs=choice.lrs, eval_means=choice.eval_means, test_means=choice.test_means, failed=choice.failed,
                   seeds=seeds, majority_rate=choice.majority_rate, reason=choice.reason,
                   dataset_revision=target.revision).to_json()
