"""Does personalising help? For each study target t, Spearman across models (bootstrap 95% CI) between each
personal estimator computed on t's training rows and the measured gain on t, beside the general rank's baseline
(each model's mean gain over the *other* targets) and the personal ranking's combined rank. Pure functions.

Input: one frame per target with columns ``repo_id``, ``gain`` (on t, points; the base at 0), ``general`` (mean
gain over the other targets), and one column per estimator metric.
"""

from __future__ import annotations

import math

import pandas as pd

from data.metrics import SCORERS
from data.personal_record import Estimate, RankedModel
from ranking.personal import combined_ranks
from ranking.stats import spearman_with_ci

# the personal estimators as registered (data/metrics.py, stage "personal"): name -> the metric it writes
ESTIMATORS = {s.name: s.metrics[0].key for s in SCORERS.values() if s.stage == "personal"}
PREDICTORS = (
    ("general", "general rank: mean gain on the other targets (the baseline)"),
    ("cv_probe_accuracy", "cross-validated linear probe on t's rows"),
    ("cv_knn_accuracy", "cross-validated kNN on t's rows"),
    ("logme", "LogME on t's rows"),
    ("combined", "combined rank (the three and the general rank, one vote each)"),
)


def with_combined(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` and a ``combined`` column: minus the combined rank of the personal ranking's rule, so that higher
    is better as for every other predictor."""
    entries = [RankedModel(repo_id=r.repo_id, revision=None, role="candidate", mean_gain=r.general,
                           general_rank=i + 1, estimates={
                               name: Estimate(metric=metric, value=getattr(r, metric),
                                              status="ok" if math.isfinite(getattr(r, metric)) else "failed")
                               for name, metric in ESTIMATORS.items()})
               for i, r in enumerate(frame.itertuples())]
    ranks = combined_ranks(entries, list(ESTIMATORS))
    return frame.assign(combined=[-r if r is not None else math.nan for r in ranks])


def validation_rows(frames: dict[str, pd.DataFrame], *, n_boot: int = 2000, seed: int = 0) -> list[dict]:
    """One row per (target, predictor): Spearman with the gain on the target, its CI and the models counted."""
    rows = []
    for target, frame in frames.items():
        frame = with_combined(frame)
        for key, label in PREDICTORS:
            c = spearman_with_ci(frame[key], frame["gain"], n_boot=n_boot, seed=seed)
            rows.append({"target": target, "predictor": key, "label": label, "rho": c.rho, "low": c.low,
                         "high": c.high, "n": c.n})
    return rows


def validation_markdown(rows: list[dict]) -> list[str]:
    """The table (Markdown; the project's own labels and target names only)."""
    out = ["| target | predictor | Spearman ρ with the gain on the target | 95% CI | models |", "|---" * 5 + "|"]
    for r in rows:
        out.append(f"| {r['target']} | {r['label']} | {_fmt(r['rho'])} | [{_fmt(r['low'])}, {_fmt(r['high'])}] | "
                   f"{r['n']} |")
    return out


def _fmt(value: float | None) -> str:
    if value is None or not math.isfinite(value):
        return "n/a"
    return f"{value:+.2f}".replace("-", "−")
