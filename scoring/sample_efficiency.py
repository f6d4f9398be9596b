"""Sample efficiency under LoRA (Fukuchi, Hataya, Matsui 2026, "caulking"): accuracy vs number of labels.

A better pretrained model should need fewer target labels when only a small inserted piece is trained.
Per target and n in ``n_labels``: LoRA (peft, task_type SEQ_CLS so the classification head is trained and
saved) on n labelled examples, several seeds; then a fitted error(n) ≈ a + b·n^(−γ) per model, the labels
the candidate needs to reach the base's accuracy at the largest n, and the labels it saves against the
base at that accuracy.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import ClassVar

import numpy as np

from data.payloads import LabelsSaved, LoraRun, PowerLawFit
from data.records import Score
from data.targets import suite
from scoring.base import RegisteredScorer, ScoringContext, ScoringJob, check_finite
from scoring.config import SampleEfficiencyConfig

# peft's defaults are query/value for BERT-like models; DistilBERT and DeBERTa-v2 name them differently
LORA_TARGETS = {"bert": ("query", "value"), "roberta": ("query", "value"), "xlm-roberta": ("query", "value"),
                "electra": ("query", "value"), "deberta-v2": ("query_proj", "value_proj"),
                "distilbert": ("q_lin", "v_lin")}


@dataclass(frozen=True, slots=True)
class PowerLaw:
    """error(n) ≈ a + b·n^(−gamma)."""

    a: float
    b: float
    gamma: float

    def error(self, n: float) -> float:
        return self.a + self.b * n ** -self.gamma

    def labels_for(self, accuracy: float) -> float:
        """Labels needed to reach ``accuracy``; inf when the curve never gets there."""
        gap = (1 - accuracy) - self.a
        if gap <= 0 or self.b <= 0:
            return math.inf
        return (self.b / gap) ** (1 / self.gamma)


def fit_power_law(ns, errors) -> PowerLaw:
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
    return PowerLaw(a=a, b=b, gamma=gamma)


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


def lora_accuracy(model_dir: Path, target, n: int, cfg: SampleEfficiencyConfig, *, seed: int, device: str) -> float:
    from scoring.finetune import train_classifier

    ft = replace(cfg.finetune, seed=seed, max_train_examples=n)
    model, tokenizer = lora_classifier(model_dir, target.num_labels, cfg, seed=seed)
    return train_classifier(model, tokenizer, target, ft, device=device).test_score


class SampleEfficiencyScorer(RegisteredScorer):
    name: ClassVar[str] = "sample_efficiency"
    config_type: ClassVar[type] = SampleEfficiencyConfig

    def score(self, job: ScoringJob, ctx: ScoringContext) -> list[Score]:
        from scoring.target_data import load_target

        targets = [load_target(spec, seed=0, local_root=self.local_root)
                   for spec in suite(self.cfg.targets, local_root=self.local_root)]
        proto = self.protocol(sorted([t.name, t.revision] for t in targets))
        cfg_json, cfg_hash = proto.json, proto.hash
        scores: list[Score] = []
        for target in targets:
            curves = {}
            for repo_id, revision, model_dir in ((job.base_id, job.base_revision, job.base_dir),
                                                 (job.repo_id, job.revision, job.model_dir)):
                points = []
                for n in self.cfg.n_labels:
                    for seed in range(self.cfg.seeds):
                        started = time.perf_counter()
                        acc = lora_accuracy(model_dir, target, n, self.cfg, seed=seed, device=ctx.device)
                        points.append((n, acc))
                        scores.append(Score(
                            repo_id=repo_id, revision=revision, scorer=self.name, metric="lora_accuracy",
                            target=f"{target.name}@{n}", seed=seed, value=acc, config_hash=cfg_hash,
                            config_json=cfg_json, duration_s=time.perf_counter() - started, base_id=job.base_id,
                            extra=LoraRun(n_labels=n, dataset_revision=target.revision).to_json()))
                curves[repo_id] = points
            scores.append(self._saved(job, target.name, curves, cfg_hash, cfg_json))
        return check_finite(scores, f"sample efficiency of {job.repo_id}")

    def _saved(self, job: ScoringJob, target: str, curves: dict, cfg_hash: str, cfg_json: str) -> Score:
        """Labels saved = base labels − candidate labels to reach the base's mean accuracy at the largest n."""
        fits = {repo: fit_power_law([n for n, _ in pts], [1 - a for _, a in pts]) for repo, pts in curves.items()}
        top = max(self.cfg.n_labels)
        reference = float(np.mean([a for n, a in curves[job.base_id] if n == top]))
        base_n, cand_n = fits[job.base_id].labels_for(reference), fits[job.repo_id].labels_for(reference)
        base_n = base_n if math.isfinite(base_n) else float(top)
        saved = base_n - cand_n if math.isfinite(cand_n) else -float(top)  # never reached: no saving
        return Score(repo_id=job.repo_id, revision=job.revision, scorer=self.name, metric="labels_saved",
                     target=target, seed=0, value=saved, config_hash=cfg_hash, config_json=cfg_json,
                     base_id=job.base_id,
                     extra=LabelsSaved(reference_accuracy=reference, base_labels=base_n, candidate_labels=cand_n,
                                       fits={r: PowerLawFit(f.a, f.b, f.gamma) for r, f in fits.items()}).to_json())
