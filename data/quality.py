"""Data-quality flags for imported results: cells whose scores sit in a neighbouring target's column.

IBM's 2023 files hold rows whose scores are shifted between columns: ibm/ColD-Fusion-itr11-seed3 has 94.7% on the
5-class sst_5bins (where the base has 56.7%; 94% is what models reach on sst2, the next column) and 66.2% on sst2
(where the base has 94.1%; 66% is what they reach on amazon_reviews_multi, the column after). The rule, stated
before it was counted on the bundled boards:

- For each target, over the board's models with a score on it: the median and a robust scale, 1.4826 × the
  median absolute deviation, floored at ``MIN_SCALE`` (one point).
- A cell is **misplaced by s** (s = ±1, ±2 columns in the file's order) when it lies more than ``OWN_Z`` robust
  scales from its own target's median and within ``FIT_Z`` scales of the median of the target s columns away.
- A row's shift is the s that misplaces most of its cells. It is **column-shifted** when at least ``MIN_RUN``
  cells are misplaced by that s, some of them
  above their own target's median and some below; those cells are **suspect**: shown as such and left out of the
  mean gain by default.

One misplaced cell is what a legitimately odd result looks like (a collapsed run scores near chance, which may
match some other target's median); a model that fine-tunes badly everywhere is low in every column, and a low
value can fit a neighbour by chance. Scores moved between columns land too high in some and too low in others.
Pure functions of a models × targets table (columns in the file's order, NaN where a model has no score).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

OWN_Z = 4.0  # robust scales from the cell's own target's median: an outlier there
FIT_Z = 2.0  # robust scales from the neighbouring target's median: typical there
MIN_RUN = 5  # misplaced cells with one shift that make a row column-shifted
SHIFTS = (-2, -1, 1, 2)
MIN_SCALE = 0.01  # one point: a target every model scores alike has no scale of its own


@dataclass(frozen=True, slots=True)
class QualityFlags:
    suspect: pd.DataFrame  # models x targets, True where a cell is suspect
    shifts: dict[str, int]  # model id -> the shift its suspect cells share

    @property
    def cells(self) -> int:
        return int(self.suspect.to_numpy().sum())

    @property
    def rows(self) -> int:
        return len(self.shifts)


def target_scales(scores: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """(median, robust scale) of each target column."""
    median = scores.median(axis=0, skipna=True)
    mad = (scores - median).abs().median(axis=0, skipna=True)
    return median.to_numpy(float), np.maximum(1.4826 * mad.fillna(0.0).to_numpy(float), MIN_SCALE)


def suspect_cells(scores: pd.DataFrame) -> QualityFlags:
    """The suspect cells of ``scores`` (index: model ids, columns: targets in the file's order)."""
    values = scores.to_numpy(float)
    median, scale = target_scales(scores)
    z = (values - median) / scale
    misplaced = np.stack([(np.abs(z) > OWN_Z) & (_distance_to_neighbour(values, median, scale, s) <= FIT_Z)
                          for s in SHIFTS])  # (shift, model, target)
    rows = np.arange(values.shape[0])
    best = misplaced.sum(axis=2).argmax(axis=0)  # each row's likeliest shift
    cells = misplaced[best, rows]
    both_ways = (cells & (z > 0)).any(axis=1) & (cells & (z < 0)).any(axis=1)
    shifted = (cells.sum(axis=1) >= MIN_RUN) & both_ways
    suspect = cells & shifted[:, None]
    shifts = {str(scores.index[i]): SHIFTS[best[i]] for i in np.flatnonzero(shifted)}
    return QualityFlags(suspect=pd.DataFrame(suspect, index=scores.index, columns=scores.columns), shifts=shifts)


def _distance_to_neighbour(values: np.ndarray, median: np.ndarray, scale: np.ndarray, s: int) -> np.ndarray:
    """|value − median of the target s columns to the right| in that target's scales (inf past either end)."""
    out = np.full(values.shape, np.inf)
    n = values.shape[1]
    lo, hi = max(0, -s), min(n, n - s)
    if lo < hi:
        out[:, lo:hi] = np.abs(values[:, lo:hi] - median[lo + s:hi + s]) / scale[lo + s:hi + s]
    return out
