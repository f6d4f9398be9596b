"""The intertraining gain and its 95% interval, under the two seed designs the scores come in. Pure numpy.

- **paired** (the project's own runs): candidate seed s and base seed s share the head initialisation and
  the data order (scoring/finetune.py), so a gain is measured per seed: d_s = mean over the suite of
  (c_{s,t} − b_{s,t}). The mean gain is the mean over targets of each target's mean paired difference (an
  identical candidate gains exactly 0); its interval is Student's t on the d_s of the seeds the candidate
  and the base both ran on every suite target, with n_s − 1 degrees of freedom — none below 2 such seeds.
  Base seeds without a candidate partner do not enter that candidate's gain. A failed run's rerun at
  s + 1000 (data.metrics.RERUN_STRIDE) is paired on its own seed and counted in seed slot s.
- **independent** (IBM's published runs: one candidate run against 20 base seeds, not coupled): gain =
  mean score − the base's mean; the variance adds the base's σ²_t/K_t and the candidate's own σ²/n (its
  sample variance with ≥ 2 runs on a target, else the base's σ²_t as one run's noise), and the interval
  is Student's t with Welch–Satterthwaite degrees of freedom.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from data.metrics import RERUN_STRIDE
from ranking.stats import t_quantiles

SeedDesign = Literal["paired", "independent"]


@dataclass(frozen=True, slots=True)
class Gains:
    per_target: np.ndarray  # models x targets: the gain on each target (NaN: not measured)
    mean: np.ndarray  # mean gain over the suite (NaN: a suite target missing)
    low: np.ndarray
    high: np.ndarray
    n_seeds: np.ndarray  # paired: seeds complete on the suite; independent: the fewest runs on a suite target


def paired(cand: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray], base: tuple[np.ndarray, np.ndarray,
           np.ndarray], n_models: int, n_targets: int, in_suite: list[int], seen: np.ndarray | None = None) -> Gains:
    """``cand``: (model, target column, seed, value) per candidate run; ``base``: (target column, seed, value)
    per base run; ``in_suite``: the target column of each suite target (-1: no candidate has it); ``seen``:
    models x target columns, True where the model was trained on the target (left out of its mean gain)."""
    model, column, seed, value = cand
    diff = value - _base_run(base, column, seed, n_targets)
    ok = np.isfinite(diff)
    per_target = _cell_mean(model[ok], column[ok], diff[ok], n_models, n_targets)
    counted = _counted(seen, in_suite, n_models)
    mean = _masked_mean(_take(per_target, in_suite), counted)
    if seen is not None:
        ok &= ~seen[model, column]
    d, n = _seed_means(model[ok], column[ok], seed[ok], diff[ok], n_models, in_suite, counted.sum(axis=1))
    low, high = _t_interval(mean, d, n)
    return Gains(per_target=per_target, mean=mean, low=low, high=high, n_seeds=n)


def independent(cand_mean: np.ndarray, cand_var: np.ndarray, cand_n: np.ndarray, base_mean: np.ndarray,
                base_var: np.ndarray, base_n: np.ndarray, in_suite: list[int], seen: np.ndarray | None = None
                ) -> Gains:
    """``cand_*``: models x targets cells; ``base_*``: per target column (NaN/0 where the base has none);
    ``seen`` as for ``paired``."""
    per_target = cand_mean - base_mean[None, :]
    n_models = len(cand_mean)
    nothing = np.full(n_models, np.nan)
    if not in_suite or min(in_suite) < 0:
        return Gains(per_target, nothing, nothing, nothing.copy(), np.zeros(n_models))
    cols = np.asarray(in_suite)
    counted = _counted(seen, in_suite, n_models)
    mean = _masked_mean(per_target[:, cols], counted)
    n_t = counted.sum(axis=1, keepdims=True)
    bv, bn = base_var[cols], base_n[cols]
    cn = cand_n[:, cols]
    fewest = np.where(counted, cn, np.inf).min(axis=1)
    if (bn < 2).any() or not np.isfinite(bv).all():
        return Gains(per_target, mean, nothing, nothing.copy(), np.where(np.isfinite(fewest), fewest, 0))
    cv = np.where(cn >= 2, cand_var[:, cols], bv[None, :])
    cv_df = np.where(cn >= 2, cn - 1, bn[None, :] - 1)  # degrees of freedom of each variance estimate
    with np.errstate(invalid="ignore", divide="ignore"):
        parts_c = np.where(counted, cv / cn, 0.0) / n_t**2
        parts_b = np.where(counted, bv[None, :] / bn[None, :], 0.0) / n_t**2
        var = (parts_c + parts_b).sum(axis=1)
        df = var**2 / ((parts_c**2 / cv_df) + (parts_b**2 / (bn[None, :] - 1))).sum(axis=1)
        half = t_quantiles(df) * np.sqrt(var)
    return Gains(per_target, mean, mean - half, mean + half, np.where(np.isfinite(fewest), fewest, 0))


def _counted(seen: np.ndarray | None, in_suite: list[int], n_models: int) -> np.ndarray:
    """models x suite targets: True where the target enters the model's mean gain (not trained on)."""
    if seen is None:
        return np.ones((n_models, len(in_suite)), dtype=bool)
    return ~np.column_stack([seen[:, c] if c >= 0 else np.zeros(n_models, bool) for c in in_suite]) \
        if in_suite else np.ones((n_models, 0), dtype=bool)


def _masked_mean(cells: np.ndarray, counted: np.ndarray) -> np.ndarray:
    """Mean of the counted cells per row; NaN when one of them is missing or none is counted."""
    n = counted.sum(axis=1)
    complete = ~(counted & ~np.isfinite(cells)).any(axis=1) & (n > 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(counted, np.nan_to_num(cells), 0.0).sum(axis=1) / n
    return np.where(complete, mean, np.nan)


def _base_run(base, column, seed, n_targets: int) -> np.ndarray:
    """The base's run at each candidate run's (target, seed): its mean if stored twice; NaN if never."""
    b_column, b_seed, b_value = base
    seeds = np.unique(np.concatenate([b_seed, seed]))
    size = (n_targets + 1) * max(len(seeds), 1)

    def key(col, s):
        return np.where(col >= 0, col, n_targets).astype(np.int64) * len(seeds) + np.searchsorted(seeds, s)

    sums = np.bincount(key(b_column, b_seed), weights=b_value, minlength=size)
    counts = np.bincount(key(b_column, b_seed), minlength=size)
    with np.errstate(invalid="ignore", divide="ignore"):
        runs = np.where(counts > 0, sums / counts, np.nan)
    return runs[key(column, seed)]


def _cell_mean(rows, cols, values, n_rows: int, n_cols: int) -> np.ndarray:
    cell = rows.astype(np.int64) * n_cols + cols
    count = np.bincount(cell, minlength=n_rows * n_cols)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.bincount(cell, weights=values, minlength=n_rows * n_cols) / count
    return mean.reshape(n_rows, n_cols)


def _take(matrix: np.ndarray, cols: list[int]) -> np.ndarray:
    out = np.full((len(matrix), len(cols)), np.nan)
    for j, c in enumerate(cols):
        if c >= 0:
            out[:, j] = matrix[:, c]
    return out


def _seed_means(model, column, seed, diff, n_models: int, in_suite: list[int], need: np.ndarray
                ) -> tuple[np.ndarray, np.ndarray]:
    """(models x seeds) d_s over the model's counted suite targets (``need`` of them), NaN where a seed misses
    one; and the complete seeds per model."""
    suite_cols = np.asarray([c for c in in_suite if c >= 0], dtype=np.int64)
    seeds, seed_code = np.unique(seed % RERUN_STRIDE, return_inverse=True)  # a rerun belongs to its seed slot
    if len(suite_cols) < len(in_suite) or not len(seeds):
        return np.full((n_models, 1), np.nan), np.zeros(n_models)
    use = np.isin(column, suite_cols)
    cell = model[use].astype(np.int64) * len(seeds) + seed_code[use]
    size = n_models * len(seeds)
    count = np.bincount(cell, minlength=size).reshape(n_models, len(seeds))
    sums = np.bincount(cell, weights=diff[use], minlength=size).reshape(n_models, len(seeds))
    with np.errstate(invalid="ignore", divide="ignore"):
        d = np.where((count == need[:, None]) & (need[:, None] > 0), sums / need[:, None], np.nan)
    return d, np.isfinite(d).sum(axis=1).astype(np.float64)


def _t_interval(mean: np.ndarray, d: np.ndarray, n: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """mean ± t_{n−1} · sd(d_s)/√n per model; NaN with fewer than 2 complete seeds."""
    ok = np.isfinite(d)
    with np.errstate(invalid="ignore", divide="ignore"):
        centre = np.where(ok, d, 0.0).sum(axis=1) / n
        sd = np.sqrt(np.where(ok, (d - centre[:, None]) ** 2, 0.0).sum(axis=1) / (n - 1))
        half = t_quantiles(np.maximum(n - 1, 1)) * sd / np.sqrt(n)
    half = np.where(n >= 2, half, np.nan)
    return mean - half, mean + half
