"""Correlations with bootstrap confidence intervals: how well one score predicts another.

Spearman is the Pearson correlation of average ranks (ties averaged); the interval is a percentile
bootstrap over resampled pairs with a seeded generator. Used by the Insights tab and the scoring reports.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

_BOOT_CELLS = 1_000_000  # values per bootstrap chunk (bounds memory: chunk × n)


@dataclass(frozen=True, slots=True)
class Correlation:
    """A correlation coefficient with its percentile-bootstrap interval over ``n`` complete pairs.

    ``rho`` is NaN when n < 3 or one side is constant; ``low``/``high`` are NaN when no bootstrap
    resample gives a defined coefficient (or ``n_boot`` was 0).
    """

    rho: float
    low: float
    high: float
    n: int
    method: str  # "spearman" | "pearson"
    level: float = 0.95


def spearman_with_ci(x, y, *, n_boot: int = 2000, seed: int = 0, level: float = 0.95) -> Correlation:
    """Spearman's ρ of paired values (Pearson of average ranks, ties averaged) with a bootstrap CI.

    Pairs where either value is missing or infinite are dropped. The interval is the percentile
    bootstrap at ``level``: ``n_boot`` resamples of the pairs with replacement from
    ``numpy.random.default_rng(seed)``, ranked inside each resample; resamples whose ranks are constant
    on either side (ρ undefined) are dropped. Deterministic for a given seed.
    """
    return _correlate(x, y, ranked=True, n_boot=n_boot, seed=seed, level=level)


def pearson_with_ci(x, y, *, n_boot: int = 2000, seed: int = 0, level: float = 0.95) -> Correlation:
    """Pearson's r of paired values with a percentile-bootstrap CI; same rules as ``spearman_with_ci``."""
    return _correlate(x, y, ranked=False, n_boot=n_boot, seed=seed, level=level)


def validity_lines(rows: pd.DataFrame, column: str, label: str, *, against: str = "mean_gain",
                   against_label: str = "mean gain") -> list[str]:
    """Spearman and Pearson (bootstrap 95% CIs) of ``column`` against ``against`` over the rows having both,
    one line each, whatever their sign: how well a score predicts the gain (the Insights tab, CLI reports)."""
    if column not in rows or against not in rows:
        return [f"{label} vs {against_label}: no such scores yet"]
    x, y = rows[column], rows[against]
    return [correlation_text(spearman_with_ci(x, y), label, against_label),
            correlation_text(pearson_with_ci(x, y), label, against_label)]


def _correlate(x, y, *, ranked: bool, n_boot: int, seed: int, level: float) -> Correlation:
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level}")
    if n_boot < 0:
        raise ValueError(f"n_boot must be >= 0, got {n_boot}")
    xs, ys = as_float(x), as_float(y)
    if xs.shape != ys.shape:
        raise ValueError(f"x and y differ in length: {xs.shape[0]} != {ys.shape[0]}")
    keep = np.isfinite(xs) & np.isfinite(ys)
    xs, ys = xs[keep], ys[keep]
    n, method = len(xs), "spearman" if ranked else "pearson"
    if n < 3:
        return Correlation(math.nan, math.nan, math.nan, n, method, level)
    pairs = _Pairs(xs, ys, ranked=ranked)
    rho = float(pairs.corr(np.ones((1, n)))[0])
    low = high = math.nan
    if n_boot:
        rng = np.random.default_rng(seed)
        chunk = max(1, _BOOT_CELLS // n)
        boots = []
        for start in range(0, n_boot, chunk):
            size = min(chunk, n_boot - start)
            idx = rng.integers(0, n, size=(size, n))
            cells = (np.arange(size)[:, None] * n + idx).ravel()
            boots.append(pairs.corr(np.bincount(cells, minlength=size * n).reshape(size, n).astype(np.float64)))
        values = np.concatenate(boots)
        values = values[np.isfinite(values)]
        if len(values):
            alpha = (1 - level) / 2
            low, high = (float(v) for v in np.quantile(values, [alpha, 1 - alpha]))
    return Correlation(rho, low, high, n, method, level)


def as_float(values) -> np.ndarray:
    if isinstance(values, pd.Series | pd.Index):
        return pd.to_numeric(values, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    return np.asarray(values, dtype=np.float64).ravel()


class _Pairs:
    """Complete pairs, correlated under multiplicity weights: one row of ``counts`` per (re)sample.

    A bootstrap resample is the original pairs taken ``counts[b, i]`` times each, so it is ranked from
    per-value counts (items below + (ties + 1) / 2 = the average rank) instead of by sorting each resample.
    """

    def __init__(self, xs: np.ndarray, ys: np.ndarray, *, ranked: bool):
        self.n, self.ranked = len(xs), ranked
        self.x_values, self.x_group = np.unique(xs, return_inverse=True)
        self.y_values, self.y_group = np.unique(ys, return_inverse=True)

    def corr(self, counts: np.ndarray) -> np.ndarray:
        """Pearson r (of average ranks when ranked) per weighted sample; NaN where one side is constant."""
        vx, flat_x = self._values(counts, self.x_values, self.x_group)
        vy, flat_y = self._values(counts, self.y_values, self.y_group)
        dx = vx - (counts * vx).sum(axis=1, keepdims=True) / self.n
        dy = vy - (counts * vy).sum(axis=1, keepdims=True) / self.n
        sxx, syy = (counts * dx * dx).sum(axis=1), (counts * dy * dy).sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            r = (counts * dx * dy).sum(axis=1) / np.sqrt(sxx * syy)
        return np.where(flat_x | flat_y, np.nan, np.clip(r, -1.0, 1.0))

    def _values(self, counts: np.ndarray, values: np.ndarray, group: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Each pair's value (or average rank) within each sample, and whether the sample's values are all equal."""
        m, k = counts.shape[0], len(values)
        cells = (np.arange(m)[:, None] * k + group[None, :]).ravel()
        per_value = np.bincount(cells, weights=counts.ravel(), minlength=m * k).reshape(m, k)
        is_flat = (per_value > 0).sum(axis=1) <= 1
        if not self.ranked:
            return np.broadcast_to(values[group], counts.shape), is_flat
        rank_of_value = np.cumsum(per_value, axis=1) - per_value + (per_value + 1) / 2
        return rank_of_value[:, group], is_flat


def correlation_text(c: Correlation, x_label: str, y_label: str) -> str:
    """One plain-text line, e.g. "free energy vs mean gain: Spearman ρ = -0.42 (95% CI -0.61 to -0.20, n = 57)"."""
    subject = f"{x_label} vs {y_label}"
    if c.n < 3:
        return f"{subject}: not enough models with both scores (n = {c.n})"
    name = "Spearman ρ" if c.method == "spearman" else "Pearson r"
    if math.isnan(c.rho):
        return f"{subject}: {name} undefined, one of the scores is constant (n = {c.n})"
    if math.isnan(c.low) or math.isnan(c.high):
        return f"{subject}: {name} = {c.rho:.2f} (n = {c.n})"
    return f"{subject}: {name} = {c.rho:.2f} ({c.level:.0%} CI {c.low:.2f} to {c.high:.2f}, n = {c.n})"


def t_quantile(df: float, p: float = 0.975) -> float:
    """Student's t quantile at probability ``p`` in [0.5, 1) (default 0.975: a two-sided 95% interval; 0.80: the
    one-sided quantile of a power calculation) for any real df >= 1 (Welch–Satterthwaite gives fractional
    ones): bisection on P(T > x) = I_{df/(df+x²)}(df/2, 1/2) / 2, the regularized incomplete beta by its
    continued fraction (Numerical Recipes 6.4). Agrees with scipy.stats.t.ppf to 1e-6 (tests)."""
    if not df >= 1:
        raise ValueError(f"a t interval needs at least 1 degree of freedom, got {df}")
    if not 0.5 <= p < 1:
        raise ValueError(f"a t quantile here needs p in [0.5, 1), got {p}")
    return _t_quantile_rounded(round(float(df), 3), float(p))


def t_quantiles(df, p: float = 0.975) -> np.ndarray:
    """``t_quantile`` of each df at ``p`` (NaN where df is NaN or below 1)."""
    df = np.asarray(df, dtype=np.float64)
    out = np.full(df.shape, np.nan)
    for i, v in np.ndenumerate(df):
        if v >= 1:
            out[i] = t_quantile(float(v), p)
    return out


@functools.lru_cache(maxsize=4096)
def _t_quantile_rounded(df: float, p: float) -> float:
    upper = 1 - p
    lo, hi = 0.0, 1.0
    while _t_upper(hi, df) > upper:
        hi *= 2
    for _ in range(60):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if _t_upper(mid, df) > upper else (lo, mid)
    return (lo + hi) / 2


def f_sf(f: float, df1: float, df2: float) -> float:
    """P(F > f) for Fisher's F with (df1, df2) degrees of freedom: I_{df2/(df2+df1·f)}(df2/2, df1/2)."""
    if not (df1 > 0 and df2 > 0):
        raise ValueError(f"an F test needs positive degrees of freedom, got {df1}, {df2}")
    if f <= 0:
        return 1.0
    return _betainc(df2 / 2, df1 / 2, df2 / (df2 + df1 * f))


def _t_upper(x: float, df: float) -> float:
    """P(T > x) for x >= 0."""
    return 0.5 * _betainc(df / 2, 0.5, df / (df + x * x))


def _betainc(a: float, b: float, x: float) -> float:
    if x <= 0 or x >= 1:
        return float(x >= 1)
    front = math.exp(math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log(1 - x))
    if x < (a + 1) / (a + b + 2):
        return front * _betacf(a, b, x) / a
    return 1 - front * _betacf(b, a, 1 - x) / b


def _betacf(a: float, b: float, x: float) -> float:
    tiny = 1e-300
    c, d = 1.0, 1 - (a + b) * x / (a + 1)
    d = 1 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 300):
        for num in (m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m)),
                    -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1))):
            d = 1 + num * d
            d = 1 / (d if abs(d) > tiny else tiny)
            c = 1 + num / c
            c = c if abs(c) > tiny else tiny
            h *= d * c
        if abs(d * c - 1) < 1e-15:
            break
    return h
