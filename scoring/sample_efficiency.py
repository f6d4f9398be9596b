"""Sample efficiency under LoRA (Fukuchi, Hataya, Matsui 2026, "caulking"): accuracy vs number of labels.

A better pretrained model should need fewer target labels when only a small inserted piece is trained.
Per target and n in ``n_labels``: LoRA (peft, task_type SEQ_CLS so the classification head is trained and
saved) on n labelled examples, several seeds. Labels, not compute, vary along the curve: every run takes
exactly ``cfg.steps`` optimizer steps of ``finetune.batch_size`` examples whatever its n, drawn from
back-to-back seeded shuffles of the n examples (``repeated_epoch_steps``: n = 32 sees each example many
times, n = 2048 fewer), without early stopping; the weights tested are the best on the eval split.

Then a fitted error(n) ≈ a + b·n^(−γ) per model and ``labels_saved``, read from the fitted curves inside
the measured range only (``read_labels_saved``): the reference is the base's fitted accuracy at the largest
n, n_max (the base needs n_max labels for it), and the candidate's labels are where its fitted curve reaches
that accuracy. Inside [n_min, n_max] the score is n_max − candidate labels, exact. Outside, no number is
extrapolated: the score is the bound the measurements support, flagged in its payload (``in_range`` False,
``out_of_range`` "below" or "above", a ``reason``): a candidate already past the reference at n_min saves
more than n_max − n_min (stored as that lower bound, which still ranks above every in-range saving), one
still short of it at n_max saves less than 0 (stored as the upper bound 0, ranking below them). Each point's
seed spread (mean, sample std, number of seeds) travels with its ``lora_accuracy`` score and, per model and
n, with ``labels_saved`` (``LabelsSaved.curves``).
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from data.errors import ScoringError
from data.payloads import CurvePoint, LabelsSaved, LoraRun, PowerLawFit
from data.records import Score
from data.targets import suite
from scoring.base import RegisteredScorer, ScoringContext, ScoringJob, check_finite
from scoring.config import SampleEfficiencyConfig

# peft's defaults are query/value for BERT-like models; DistilBERT and DeBERTa-v2 name them differently
LORA_TARGETS = {"bert": ("query", "value"), "roberta": ("query", "value"), "xlm-roberta": ("query", "value"),
                "electra": ("query", "value"), "deberta-v2": ("query_proj", "value_proj"),
                "distilbert": ("q_lin", "v_lin")}

# a labels_saved outside the measured range is a bound, not a measurement: stored with this status, so the
# leaderboard never shows it as a number (the study report reads its bound and reason from the payload)
OUT_OF_RANGE = "out_of_range"


def fit_power_law(ns, errors) -> PowerLawFit:
    """Least-squares fit of a + b·n^(−γ) with 0 ≤ a ≤ min(error) (an error floor can be neither negative nor
    above the data) and b ≥ 0 (error does not grow with labels): for each γ on a grid (then refined around
    the best) a and b are the bounded linear least-squares solution; the γ with the smallest error wins."""
    n, e = np.asarray(ns, dtype=float), np.asarray(errors, dtype=float)
    if len(n) < 3:
        raise ValueError("a power law with three parameters needs at least three points")
    a_max = max(float(e.min()), 0.0)

    def sse(a: float, b: float, x: np.ndarray) -> float:
        return float(((a + b * x - e) ** 2).sum())

    def solve(gamma: float) -> tuple[float, float, float]:
        x = n ** -gamma
        (a, b), *_ = np.linalg.lstsq(np.stack([np.ones_like(x), x], axis=1), e, rcond=None)
        if 0 <= a <= a_max and b >= 0:
            return sse(a, b, x), float(a), float(b)
        # the constrained optimum of a convex quadratic lies on the boundary: try each edge's best point
        options = []
        for a_edge in (0.0, a_max):
            b_edge = max(float(x @ (e - a_edge) / (x @ x)), 0.0)
            options.append((sse(a_edge, b_edge, x), a_edge, b_edge))
        a_flat = min(max(float(e.mean()), 0.0), a_max)
        options.append((sse(a_flat, 0.0, x), a_flat, 0.0))
        return min(options)

    grid = np.geomspace(1e-3, 4.0, 400)
    best = min(grid, key=lambda g: solve(g)[0])
    lo, hi = best / 1.05, best * 1.05
    for _ in range(60):  # golden-section refinement
        m1, m2 = lo + (hi - lo) * 0.382, lo + (hi - lo) * 0.618
        lo, hi = (lo, m2) if solve(m1)[0] < solve(m2)[0] else (m1, hi)
    gamma = (lo + hi) / 2
    _, a, b = solve(gamma)
    return PowerLawFit(a=a, b=b, gamma=gamma)


def lora_classifier(model_dir: Path, num_labels: int, cfg: SampleEfficiencyConfig, *, seed: int):
    """The checkpoint as a sequence classifier (fresh seeded head) with LoRA adapters; (peft model, tokenizer)."""
    from peft import LoraConfig, TaskType, get_peft_model

    from scoring.finetune import load_classifier

    model, tokenizer = load_classifier(model_dir, num_labels, seed=seed)
    targets = LORA_TARGETS.get(model.config.model_type)
    if targets is None:
        from data.errors import ScoringError

        raise ScoringError(f"no LoRA target modules known for model type {model.config.model_type!r}")
    lora = LoraConfig(task_type=TaskType.SEQ_CLS, r=cfg.rank, lora_alpha=cfg.alpha, lora_dropout=cfg.lora_dropout,
                      target_modules=list(targets), modules_to_save=_new_modules(model, model_dir) or None)
    return get_peft_model(model, lora), tokenizer


def _new_modules(model, model_dir: Path) -> list[str]:
    """Modules of the base model that the checkpoint does not have (initialised at load, e.g. BERT's pooler
    under an MLM checkpoint): they must be trained-and-saved with the adapter or a reload redraws them."""
    from safetensors import safe_open

    saved = set()
    for path in Path(model_dir).glob("*.safetensors"):
        with safe_open(path, "pt") as f:
            saved.update(k.split(".", 1)[1] if k.startswith(model.base_model_prefix + ".") else k for k in f.keys())
    encoder = getattr(model, model.base_model_prefix)
    return [name for name, module in encoder.named_children()
            if any(True for _ in module.parameters()) and not any(f"{name}.{p}" in saved
                                                                  for p, _ in module.named_parameters())]


def repeated_epoch_steps(train, cfg, generator) -> Iterator[list]:
    """Optimizer steps of exactly ``cfg.batch_size`` examples each, without end, from back-to-back seeded
    permutations of the train split: epochs repeat with no boundary (a step may span two of them, or several
    when n < batch_size, so an example can then appear twice in one step). Any n thus gives the same steps of
    the same size. Within a step the examples are sorted by length before splitting into micro-batches."""
    import torch

    from scoring.finetune import collate

    n = len(train.labels)
    pending = torch.empty(0, dtype=torch.int64)
    while True:
        while len(pending) < cfg.batch_size:
            pending = torch.cat([pending, torch.randperm(n, generator=generator)])
        step, pending = pending[:cfg.batch_size], pending[cfg.batch_size:]
        step = step[torch.argsort(train.lengths[step], stable=True)]
        yield [collate(train, indices) for indices in step.split(cfg.micro_batch_size)]


def lora_run(model_dir: Path, target, n: int, cfg: SampleEfficiencyConfig, *, seed: int, device: str):
    """One LoRA run on n labels: exactly ``cfg.steps`` steps (no early stopping); its ``FinetuneResult``."""
    from scoring.finetune import train_classifier

    ft = replace(cfg.finetune, seed=seed, max_train_examples=n, max_steps=cfg.steps,
                 patience_examples=cfg.steps * cfg.finetune.batch_size + 1)  # more than a run sees: never stops
    model, tokenizer = lora_classifier(model_dir, target.num_labels, cfg, seed=seed)
    result = train_classifier(model, tokenizer, target, ft, device=device, step_stream=repeated_epoch_steps)
    if result.train_examples != n:
        raise ScoringError(f"target {target.name}: {result.train_examples} train examples, fewer than n = {n}")
    if result.steps != cfg.steps:
        raise ScoringError(f"target {target.name}, n = {n}: {result.steps} steps instead of {cfg.steps}")
    return result


def lora_accuracy(model_dir: Path, target, n: int, cfg: SampleEfficiencyConfig, *, seed: int, device: str) -> float:
    return lora_run(model_dir, target, n, cfg, seed=seed, device=device).test_score


def seed_spread(values) -> tuple[float, float | None, int]:
    """(mean, sample standard deviation with ddof 1 or None for a single value, count) of one point's seeds."""
    v = np.asarray(values, dtype=float)
    return float(v.mean()), float(v.std(ddof=1)) if len(v) > 1 else None, len(v)


@dataclass(frozen=True, slots=True)
class SavedReading:
    """``labels_saved`` read from two fitted curves inside [n_min, n_max] (see ``read_labels_saved``)."""

    value: float  # exact when in range; else the bound ``out_of_range`` names
    reference_accuracy: float  # the base's fitted accuracy at n_max
    base_labels: float  # n_max
    candidate_labels: float | None  # None when out of range
    in_range: bool
    out_of_range: str  # "", "below" or "above"
    reason: str


def read_labels_saved(base: PowerLawFit, candidate: PowerLawFit, n_min: int, n_max: int) -> SavedReading:
    """The labels the candidate saves against the base at the base's fitted accuracy at ``n_max``, never
    extrapolated. Fitted errors fall with n (b ≥ 0), so the candidate's curve reaches the reference inside
    [n_min, n_max] exactly when its error at n_min is at least the reference error and at n_max at most; then
    saved = n_max − n. Otherwise the value is a bound: "below" (the candidate is past the reference at n_min:
    saved > n_max − n_min, stored as n_max − n_min) or "above" (short of it at n_max: saved < 0, stored as 0)."""
    target_error = base.error(n_max)
    reference = 1 - target_error
    at_min, at_max = candidate.error(n_min), candidate.error(n_max)
    if at_min < target_error:
        return SavedReading(float(n_max - n_min), reference, float(n_max), None, False, "below",
                            f"the candidate's fitted accuracy at n = {n_min} ({1 - at_min:.4f}) is already above "
                            f"the base's at n = {n_max} ({reference:.4f}): it needs fewer than {n_min} labels, "
                            f"so it saves more than {n_max - n_min}")
    if at_max > target_error:
        return SavedReading(0.0, reference, float(n_max), None, False, "above",
                            f"the candidate's fitted accuracy at n = {n_max} ({1 - at_max:.4f}) is below the "
                            f"base's ({reference:.4f}): it needs more than {n_max} labels (beyond the measured "
                            "range), so it saves less than 0")
    needed = candidate.labels_for(reference)
    needed = float(min(max(needed, n_min), n_max)) if math.isfinite(needed) else float(n_min)  # flat curve: any n
    return SavedReading(n_max - needed, reference, float(n_max), needed, True, "", "")


class SampleEfficiencyScorer(RegisteredScorer, name="sample_efficiency", config_type=SampleEfficiencyConfig):
    def score(self, job: ScoringJob, ctx: ScoringContext) -> list[Score]:
        from scoring.target_data import load_target

        targets = [load_target(spec, seed=0, local_root=self.local_root)
                   for spec in suite(self.cfg.targets, local_root=self.local_root)]
        proto = self.protocol(sorted([t.name, t.revision] for t in targets))
        cfg_json, cfg_hash = proto.json, proto.hash
        scores: list[Score] = []
        for target in targets:
            curves: dict[str, list[tuple[int, list[float]]]] = {}
            for repo_id, revision, model_dir in ((job.base_id, job.base_revision, job.base_dir),
                                                 (job.repo_id, job.revision, job.model_dir)):
                curves[repo_id] = []
                for n in self.cfg.n_labels:
                    runs = []
                    for seed in range(self.cfg.seeds):
                        started = time.perf_counter()
                        result = lora_run(model_dir, target, n, self.cfg, seed=seed, device=ctx.device)
                        runs.append((seed, result, time.perf_counter() - started))
                    accuracies = [r.test_score for _, r, _ in runs]
                    mean, std, count = seed_spread(accuracies)
                    curves[repo_id].append((n, accuracies))
                    scores += [Score(
                        repo_id=repo_id, revision=revision, scorer=self.name, metric="lora_accuracy",
                        target=f"{target.name}@{n}", seed=seed, value=r.test_score, config_hash=cfg_hash,
                        config_json=cfg_json, duration_s=duration, base_id=job.base_id,
                        extra=LoraRun(n_labels=n, dataset_revision=target.revision, steps=r.steps,
                                      batch_size=self.cfg.finetune.batch_size, train_examples=r.train_examples,
                                      best_step=r.best_step, seeds=count, seed_mean=mean,
                                      seed_std=std).to_json()) for seed, r, duration in runs]
            scores.append(self._saved(job, target.name, curves, cfg_hash, cfg_json))
        return check_finite(scores, f"sample efficiency of {job.repo_id}")

    def _saved(self, job: ScoringJob, target: str, curves: dict, cfg_hash: str, cfg_json: str) -> Score:
        """Labels saved at the base's fitted accuracy at the largest n, inside the measured range only."""
        fits = {repo: fit_power_law([n for n, accs in pts for _ in accs], [1 - a for _, accs in pts for a in accs])
                for repo, pts in curves.items()}
        n_min, n_max = min(self.cfg.n_labels), max(self.cfg.n_labels)
        reading = read_labels_saved(fits[job.base_id], fits[job.repo_id], n_min, n_max)
        base_at_max = [a for n, accs in curves[job.base_id] if n == n_max for a in accs]
        points = {repo: tuple(CurvePoint(n, *seed_spread(accs)) for n, accs in pts) for repo, pts in curves.items()}
        return Score(repo_id=job.repo_id, revision=job.revision, scorer=self.name, metric="labels_saved",
                     target=target, seed=0, value=reading.value, config_hash=cfg_hash, config_json=cfg_json,
                     base_id=job.base_id, status="ok" if reading.in_range else OUT_OF_RANGE,
                     extra=LabelsSaved(reference_accuracy=reading.reference_accuracy, base_labels=reading.base_labels,
                                       candidate_labels=reading.candidate_labels,
                                       fits=dict(fits),
                                       in_range=reading.in_range, out_of_range=reading.out_of_range,
                                       reason=reading.reason, n_min=n_min, n_max=n_max,
                                       base_accuracy=float(np.mean(base_at_max)), steps=self.cfg.steps,
                                       curves=points).to_json())
