"""The intertraining gain and its 95% interval, under the two seed designs the scores come in. Pure numpy.

- **paired** (the project's own runs): candidate seed s and base seed s share the head initialisation and
  the data order (scoring/finetune.py), so a gain is measured per seed: d_{t,s} = c_{t,s} − b_{t,s}. A target's
  gain d̄_t is the mean of its n_t paired differences, the mean gain the mean of d̄_t over the T counted suite
  targets (an identical candidate gains exactly 0). Its interval (``pooled_interval``) is

      mean gain ± t_{0.975, df} · √(s_p² · Σ_t 1/n_t) / T,   s_p² = Σ_t Σ_s (d_{t,s} − d̄_t)² / df,
      df = Σ_t (n_t − 1),

  Student t with the paired differences' variance pooled within targets; the targets are fixed (the estimand
  is the gain averaged over these targets, in expectation over seeds). No interval below 2 degrees of
  freedom. Every paired seed counts, even one a failed run left incomplete on another target (n_t differ);
  ``n_seeds`` is the number of seeds paired on every counted target. Base seeds without a candidate partner
  do not enter. A failed run never enters; its rerun at s + 1000 (data.metrics.RERUN_STRIDE) is paired with
  the base's run at s + 1000 and fills seed slot s (a slot holding two pairs counts their mean once).
- **independent** (IBM's published runs: one candidate run against 20 base seeds, not coupled): gain =
  mean score − the base's mean; the variance adds the base's σ²_t/K_t and the candidate's own σ²/n (its
  sample variance with ≥ 2 runs on a target, else the base's σ²_t as one run's noise), and the interval
  is Student's t with Welch–Satterthwaite degrees of freedom.

Why pooled within targets (issue 29): a coverage simulation at the study's designs compared it with Student t
over the seeds' suite means and with Welch–Satterthwaite; ranking/gain_interval.md holds the table and the
reasoning (`python -m tests.unit.ranking.test_gains` prints the table; tests/unit/ranking/test_gains.py checks
the deciding rows). In short: at 4 targets × 5 seeds all three cover 93–97% and this one is the shortest; at 4 × 2
only this one always has an interval; it assumes seed noise roughly alike across targets and no seed effect
shared across targets.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from data.metrics import RERUN_STRIDE
from ranking.stats import t_quantiles

SeedDesign = Literal["paired", "independent"]
MIN_DF = 2  # no paired interval below this many degrees of freedom (t_{0.975, 1} = 12.7)
INTERVALS = {  # the interval of each design in one sentence (exports' headers, docs)
    "paired": "mean gain ± t_{0.975, df} · √(s_p² · Σ_t 1/n_t) / T over the T counted targets, s_p² the paired "
              "differences' (candidate run − base run, same seed) variance pooled within targets, df = "
              "Σ_t (n_t − 1); no interval below 2 df",
    "independent": "mean gain ± t_{0.975, df} · √(Σ_t (σ²_t/K_t + σ²_c,t/n_t)) / T, the base's seed variance plus "
                   "the candidate's own, Welch–Satterthwaite df",
}


@dataclass(frozen=True, slots=True)
class Gains:
    per_target: np.ndarray  # models x targets: the gain on each target (NaN: not measured)
    mean: np.ndarray  # mean gain over the suite (NaN: a suite target missing)
    low: np.ndarray
    high: np.ndarray
    n_seeds: np.ndarray  # paired: seeds complete on the counted suite targets; independent: the fewest runs on one
    df: np.ndarray  # the interval's degrees of freedom (NaN: no mean gain, or no variance to estimate)


def paired(cand: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray], base: tuple[np.ndarray, np.ndarray,
           np.ndarray], n_models: int, n_targets: int, in_suite: list[int], seen: np.ndarray | None = None) -> Gains:
    """``cand``: (model, target column, seed, value) per candidate run; ``base``: (target column, seed, value)
    per base run; ``in_suite``: the target column of each suite target (-1: no candidate has it); ``seen``:
    models x target columns, True where the model was trained on the target (left out of its mean gain)."""
    model, column, seed, value = cand
    diff = value - _base_run(base, column, seed, n_targets)
    ok = np.isfinite(diff)
    cells = _slot_cells(model[ok], column[ok], seed[ok] % RERUN_STRIDE, diff[ok], n_targets)
    per_target, squares, count = _target_stats(cells, n_models, n_targets)
    counted = _counted(seen, in_suite, n_models)
    mean, low, high, df = pooled_interval(_take(per_target, in_suite), _take(squares, in_suite),
                                          np.nan_to_num(_take(count, in_suite)), counted)
    n_seeds = _complete_seeds(cells, counted, in_suite, n_models, n_targets)
    return Gains(per_target=per_target, mean=mean, low=low, high=high, n_seeds=n_seeds, df=df)


def pooled_interval(mean_t: np.ndarray, squares_t: np.ndarray, n_t: np.ndarray, counted: np.ndarray
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The mean gain, its 95% interval and the interval's degrees of freedom per row (model), from each target's
    paired differences d_ts (rows x targets: ``mean_t`` d̄_t, ``squares_t`` Σ_s (d_ts − d̄_t)², ``n_t``) over the
    ``counted`` targets, T of them:

        mean = Σ_t d̄_t / T,   df = Σ_t (n_t − 1),   s_p² = Σ_t squares_t / df,
        interval = mean ± t_{0.975, df} · √(s_p² · Σ_t 1/n_t) / T.

    Mean and df are NaN where a counted target has no pair (or none is counted); the interval is NaN below
    MIN_DF degrees of freedom. Returns (mean, low, high, df)."""
    n_counted = counted.sum(axis=1)
    complete = ~(counted & (n_t < 1)).any(axis=1) & (n_counted > 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(counted, mean_t, 0.0).sum(axis=1) / n_counted
        df = np.where(counted, n_t - 1, 0.0).sum(axis=1)
        variance = np.where(counted, squares_t, 0.0).sum(axis=1) / df
        se = np.sqrt(variance * np.where(counted, 1 / n_t, 0.0).sum(axis=1)) / n_counted
    mean, df = np.where(complete, mean, np.nan), np.where(complete, df, np.nan)
    half = np.where(df >= MIN_DF, _t95(df) * se, np.nan)
    return mean, mean - half, mean + half, df


def independent(cand_mean: np.ndarray, cand_var: np.ndarray, cand_n: np.ndarray, base_mean: np.ndarray,
                base_var: np.ndarray, base_n: np.ndarray, in_suite: list[int], seen: np.ndarray | None = None
                ) -> Gains:
    """``cand_*``: models x targets cells; ``base_*``: per target column (NaN/0 where the base has none);
    ``seen`` as for ``paired``."""
    per_target = cand_mean - base_mean[None, :]
    n_models = len(cand_mean)
    nothing = np.full(n_models, np.nan)
    if not in_suite or min(in_suite) < 0:
        return Gains(per_target, nothing, nothing, nothing.copy(), np.zeros(n_models), nothing.copy())
    cols = np.asarray(in_suite)
    counted = _counted(seen, in_suite, n_models)
    mean = _masked_mean(per_target[:, cols], counted)
    n_t = counted.sum(axis=1, keepdims=True)
    bv, bn = base_var[cols], base_n[cols]
    cn = cand_n[:, cols]
    fewest = np.where(counted, cn, np.inf).min(axis=1)
    if (bn < 2).any() or not np.isfinite(bv).all():
        return Gains(per_target, mean, nothing, nothing.copy(), np.where(np.isfinite(fewest), fewest, 0),
                     nothing.copy())
    cv = np.where(cn >= 2, cand_var[:, cols], bv[None, :])
    cv_df = np.where(cn >= 2, cn - 1, bn[None, :] - 1)  # degrees of freedom of each variance estimate
    with np.errstate(invalid="ignore", divide="ignore"):
        parts_c = np.where(counted, cv / cn, 0.0) / n_t**2
        parts_b = np.where(counted, bv[None, :] / bn[None, :], 0.0) / n_t**2
        var = (parts_c + parts_b).sum(axis=1)
        df = var**2 / ((parts_c**2 / cv_df) + (parts_b**2 / (bn[None, :] - 1))).sum(axis=1)
        half = t_quantiles(df) * np.sqrt(var)
    return Gains(per_target, mean, mean - half, mean + half, np.where(np.isfinite(fewest), fewest, 0),
                 np.where(np.isfinite(mean), df, np.nan))


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


def _take(matrix: np.ndarray, cols: list[int]) -> np.ndarray:
    out = np.full((len(matrix), len(cols)), np.nan)
    for j, c in enumerate(cols):
        if c >= 0:
            out[:, j] = matrix[:, c]
    return out


def _slot_cells(model, column, slot, diff, n_targets: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """One paired difference per (model, target column, seed slot): (model, column, slot, d), d the mean of the
    slot's pairs when it holds more than one (a rerun paired beside an earlier pair)."""
    slots, slot_code = np.unique(slot, return_inverse=True)
    key = (model.astype(np.int64) * n_targets + column) * max(len(slots), 1) + slot_code
    keys, cell = np.unique(key, return_inverse=True)
    d = np.bincount(cell, weights=diff, minlength=len(keys)) / np.bincount(cell, minlength=len(keys))
    model_column, code = np.divmod(keys, max(len(slots), 1))
    return model_column // n_targets, model_column % n_targets, slots[code] if len(slots) else code, d


def _target_stats(cells, n_models: int, n_targets: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """models x target columns: the mean d̄_t of the slot cells (NaN: none), Σ_s (d_ts − d̄_t)², and their count."""
    model, column, _, d = cells
    cell = model * n_targets + column
    size = n_models * n_targets
    count = np.bincount(cell, minlength=size).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.bincount(cell, weights=d, minlength=size) / count
    squares = np.bincount(cell, weights=(d - mean[cell]) ** 2, minlength=size)
    shape = (n_models, n_targets)
    return mean.reshape(shape), squares.reshape(shape), count.reshape(shape)


def _complete_seeds(cells, counted: np.ndarray, in_suite: list[int], n_models: int, n_targets: int) -> np.ndarray:
    """Per model, the seed slots with a paired difference on every counted suite target (0 with none counted)."""
    model, column, slot, _ = cells
    position = np.full(n_targets + 1, -1, dtype=np.int64)  # column -> suite position (-1: not in the suite)
    for j, c in enumerate(in_suite):
        if c >= 0:
            position[c] = j
    need = counted.sum(axis=1)
    at = position[column]
    use = (at >= 0) & counted[model, np.maximum(at, 0)] if len(in_suite) else np.zeros(len(model), bool)
    slots, slot_code = np.unique(slot[use], return_inverse=True)
    width = max(len(slots), 1)
    per_slot = np.bincount(model[use] * width + slot_code, minlength=n_models * width).reshape(n_models, width)
    complete = (per_slot == need[:, None]) & (need[:, None] > 0)
    return complete.sum(axis=1).astype(np.float64)


def _t95(df: np.ndarray) -> np.ndarray:
    """t_{0.975, df} per value, computed once per distinct df (NaN below 1)."""
    values, index = np.unique(df, return_inverse=True)
    return t_quantiles(values)[index.reshape(np.shape(df))]
