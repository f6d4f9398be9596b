"""Correlations with bootstrap confidence intervals: how well one score predicts another.

Spearman is the Pearson correlation of average ranks (ties averaged); the interval is a percentile
bootstrap over resampled pairs with a seeded generator. Used by the Insights tab and the scoring reports.

For the few-model study (ranking/validity.py): Spearman's exact permutation p-value (every one of the n!
orderings counted, by dynamic programming over subsets), the partial Spearman given a third score, a paired
bootstrap of any two such statistics over the same resampled models, Kendall's τ-b, and Fisher's F quantile.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Iterator
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
    low, high = percentile_interval(bootstrap(pairs.corr, n, n_boot=n_boot, seed=seed), level)
    return Correlation(rho, low, high, n, method, level)


# A statistic of weighted samples: a (resamples × n) matrix of multiplicities -> one value per resample.
Statistic = Callable[[np.ndarray], np.ndarray]


def bootstrap(stat: Statistic, n: int, *, n_boot: int, seed: int) -> np.ndarray:
    """``stat`` on ``n_boot`` resamples of ``n`` items with replacement (``default_rng(seed)``); NaN where it is
    undefined. Two statistics bootstrapped with the same ``n`` and seed see the same resampled items: paired."""
    parts = [stat(counts) for counts in _boot_counts(n, n_boot, seed)]
    return np.concatenate(parts) if parts else np.empty(0)


def _boot_counts(n: int, n_boot: int, seed: int) -> Iterator[np.ndarray]:
    """Each resample as per-item multiplicities, in chunks of at most ``_BOOT_CELLS`` values."""
    rng = np.random.default_rng(seed)
    chunk = max(1, _BOOT_CELLS // max(n, 1))
    for start in range(0, n_boot, chunk):
        size = min(chunk, n_boot - start)
        idx = rng.integers(0, n, size=(size, n))
        cells = (np.arange(size)[:, None] * n + idx).ravel()
        yield np.bincount(cells, minlength=size * n).reshape(size, n).astype(np.float64)


def percentile_interval(values: np.ndarray, level: float = 0.95) -> tuple[float, float]:
    """The percentile interval of the finite ``values`` at ``level`` (NaN, NaN when there are none)."""
    values = values[np.isfinite(values)]
    if not len(values):
        return math.nan, math.nan
    alpha = (1 - level) / 2
    low, high = np.quantile(values, [alpha, 1 - alpha])
    return float(low), float(high)


def spearman_statistic(x: np.ndarray, y: np.ndarray) -> Statistic:
    """Spearman's ρ of complete pairs as a ``Statistic`` (ranked inside each resample)."""
    return _Pairs(x, y, ranked=True).corr


def partial_spearman_statistic(x: np.ndarray, y: np.ndarray, z: np.ndarray) -> Statistic:
    """The partial Spearman of x and y given z: the correlation of x's and y's ranks, each residualised on z's
    ranks by least squares, which is (ρ_xy − ρ_xz·ρ_yz) / √((1 − ρ_xz²)(1 − ρ_yz²)); NaN where z's ranks
    explain x's or y's exactly."""
    xy, xz, yz = (spearman_statistic(a, b) for a, b in ((x, y), (x, z), (y, z)))

    def stat(counts: np.ndarray) -> np.ndarray:
        rxy, rxz, ryz = xy(counts), xz(counts), yz(counts)
        with np.errstate(invalid="ignore", divide="ignore"):
            r = (rxy - rxz * ryz) / np.sqrt((1 - rxz ** 2) * (1 - ryz ** 2))
        return np.where(np.isfinite(r), np.clip(r, -1.0, 1.0), np.nan)

    return stat


def point(stat: Statistic, n: int) -> float:
    """A ``Statistic`` on the sample itself (every item once)."""
    return float(stat(np.ones((1, n)))[0])


@dataclass(frozen=True, slots=True)
class Difference:
    """``b − a`` of two statistics on the same items, with its paired percentile-bootstrap interval."""

    delta: float
    low: float
    high: float
    n: int
    level: float = 0.95


def paired_difference(a: Statistic, b: Statistic, n: int, *, n_boot: int = 2000, seed: int = 0,
                      level: float = 0.95) -> Difference:
    """b − a, and its interval from the same ``n_boot`` resamples of the ``n`` items for both statistics."""
    if n < 3:
        return Difference(math.nan, math.nan, math.nan, n, level)
    delta = point(b, n) - point(a, n)
    if not math.isfinite(delta):
        return Difference(delta, math.nan, math.nan, n, level)
    diffs = bootstrap(b, n, n_boot=n_boot, seed=seed) - bootstrap(a, n, n_boot=n_boot, seed=seed)
    return Difference(delta, *percentile_interval(diffs, level), n, level)


# ------------------------------------------------------------------------------- permutation p-values
EXACT_MAX_N = 18  # beyond this the subsets alone (2^n) are too many
EXACT_MAX_CELLS = 8_000_000  # the largest layer of the exact count's table (int64 cells): n = 16 without ties fits
MONTE_CARLO_PERMUTATIONS = 100_000


@dataclass(frozen=True, slots=True)
class PValue:
    """A two-sided permutation p-value: the share of the orderings of y against x whose |ρ| is at least the
    observed one. ``method`` "exact": all n! orderings counted (``n_permutations`` = n!); "monte carlo" or
    "residual permutation": (1 + hits) / (1 + draws) over ``n_permutations`` seeded draws. NaN below 3 pairs."""

    value: float
    method: str
    n_permutations: int
    n: int


def spearman_p(x, y, *, n_mc: int = MONTE_CARLO_PERMUTATIONS, seed: int = 0) -> PValue:
    """Spearman's two-sided permutation p-value over the complete pairs, exact whenever the count's table fits
    (n ≤ 16 without ties), else Monte Carlo over ``n_mc`` seeded permutations. Ties take average ranks; doubled,
    they are integers, so the exact count stays exact with ties (only its table grows)."""
    xs, ys = _complete(x, y)
    n = len(xs)
    if n < 3:
        return PValue(math.nan, "none", 0, n)
    a, b = _integer_ranks(xs, ys)
    if len(np.unique(a)) < 2 or len(np.unique(b)) < 2:
        return PValue(math.nan, "none", 0, n)
    total_a, total_b = int(a.sum()), int(b.sum())
    observed = abs(n * int(a @ b) - total_a * total_b)
    counts, low = _sum_counts(a, b)
    if counts is not None:
        sums = np.arange(low, low + len(counts), dtype=np.int64)
        hits = int(counts[np.abs(n * sums - total_a * total_b) >= observed].sum())
        return PValue(hits / math.factorial(n), "exact", math.factorial(n), n)
    rng = np.random.default_rng(seed)
    hits = sum(int((np.abs(n * (perm @ a) - total_a * total_b) >= observed).sum())
               for perm in _permuted(b, n_mc, rng))
    return PValue((1 + hits) / (1 + n_mc), "monte carlo", n_mc, n)


def partial_spearman_p(x, y, z, *, n_mc: int = 10_000, seed: int = 0) -> PValue:
    """The partial Spearman's p-value (x and y given z): x's rank residuals permuted against y's (ter Braak's
    permutation of residuals), ``n_mc`` seeded draws; complete triples only."""
    keep = np.isfinite(as_float(x)) & np.isfinite(as_float(y)) & np.isfinite(as_float(z))
    n = int(keep.sum())
    if n < 4:
        return PValue(math.nan, "none", 0, n)
    ranks = [_average_ranks(as_float(v)[keep]) for v in (x, y, z)]
    ex, ey = (_residual(r, ranks[2]) for r in ranks[:2])
    if not (ex @ ex > 1e-9 and ey @ ey > 1e-9):
        return PValue(math.nan, "none", 0, n)
    observed = abs(ex @ ey) * (1 - 1e-12)
    rng = np.random.default_rng(seed)
    hits = sum(int((np.abs(perm @ ey) >= observed).sum()) for perm in _permuted(ex, n_mc, rng))
    return PValue((1 + hits) / (1 + n_mc), "residual permutation", n_mc, n)


def _complete(x, y) -> tuple[np.ndarray, np.ndarray]:
    xs, ys = as_float(x), as_float(y)
    keep = np.isfinite(xs) & np.isfinite(ys)
    return xs[keep], ys[keep]


def _average_ranks(values: np.ndarray) -> np.ndarray:
    """1-based ranks, ties given the mean of the ranks they span."""
    _, group, counts = np.unique(values, return_inverse=True, return_counts=True)
    return (np.cumsum(counts) - (counts - 1) / 2)[group]


def _integer_ranks(xs: np.ndarray, ys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Average ranks as int64, a side's doubled when it has a half rank (ρ is unchanged by scaling a side)."""
    return tuple(np.round(r * (1 if np.all(r == np.round(r)) else 2)).astype(np.int64)
                 for r in (_average_ranks(xs), _average_ranks(ys)))


def _residual(values: np.ndarray, on: np.ndarray) -> np.ndarray:
    """``values`` minus their least-squares fit on ``on`` with an intercept."""
    design = np.column_stack([np.ones_like(on), on])
    coef, *_ = np.linalg.lstsq(design, values, rcond=None)
    return values - design @ coef


def _permuted(values: np.ndarray, draws: int, rng: np.random.Generator, chunk: int = 20_000) -> Iterator[np.ndarray]:
    """``draws`` random orderings of ``values``, as rows, in chunks."""
    for start in range(0, draws, chunk):
        yield rng.permuted(np.tile(values, (min(chunk, draws - start), 1)), axis=1)


def _sum_counts(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray | None, int]:
    """How many of the n! orderings π give each value of S = Σ_k a[k]·b[π(k)]: ``counts[s − low]``. Dynamic
    programming over the subsets of b's items already placed (positions filled in order) and the running sum;
    layer k holds the subsets of size k, each over its range of sums. None when a layer exceeds
    ``EXACT_MAX_CELLS``."""
    n = len(a)
    if n > EXACT_MAX_N:
        return None, 0
    a = np.sort(a)  # S's distribution over all orderings does not depend on the positions' order; ascending
    lows, highs = _sum_bounds(a, b)  # weights first keep the early layers' ranges of sums narrow
    every = np.arange(1 << n, dtype=np.int64)
    sizes = sum((every >> j) & 1 for j in range(n))
    masks = [every[sizes == k] for k in range(n + 1)]
    if max(len(m) * (h - lo + 1) for m, lo, h in zip(masks, lows, highs, strict=True)) > EXACT_MAX_CELLS:
        return None, 0
    index = np.zeros(1 << n, dtype=np.int64)
    for layer in masks:
        index[layer] = np.arange(len(layer))
    table = np.ones((1, 1), dtype=np.int64)
    for k in range(n):
        nxt = np.zeros((len(masks[k + 1]), highs[k + 1] - lows[k + 1] + 1), dtype=np.int64)
        for j in range(n):
            free = (masks[k] >> j) & 1 == 0
            shift = int(a[k] * b[j]) + lows[k] - lows[k + 1]  # source column c lands on column c + shift
            first, last = max(0, -shift), min(table.shape[1], nxt.shape[1] - shift)  # outside: sums out of reach
            nxt[index[masks[k][free] | (1 << j)], first + shift:last + shift] += table[free, first:last]
        table = nxt
    return table[0], lows[n]


def _sum_bounds(a: np.ndarray, b: np.ndarray) -> tuple[list[int], list[int]]:
    """The least and greatest partial sum after k positions (rearrangement inequality; a, b > 0)."""
    lows, highs = [0], [0]
    sb = np.sort(b)
    for k in range(1, len(a) + 1):
        sa = np.sort(a[:k])
        lows.append(int(sa @ sb[:k][::-1]))
        highs.append(int(sa @ sb[len(b) - k:]))
    return lows, highs


def kendall_tau_b(x, y, *, chunk: int = 2048) -> tuple[float, int]:
    """Kendall's τ-b of the complete pairs, and their number: (concordant − discordant) over
    √((pairs − ties in x)(pairs − ties in y)); NaN below 2 pairs or when one side is constant. O(n²) in chunks."""
    xs, ys = _complete(x, y)
    n = len(xs)
    if n < 2:
        return math.nan, n
    s = tied_x = tied_y = 0
    for start in range(0, n, chunk):
        i = np.arange(start, min(n, start + chunk))[:, None]
        later = np.arange(n)[None, :] > i
        dx, dy = np.sign(xs[i] - xs[None, :]), np.sign(ys[i] - ys[None, :])
        s += int((dx * dy)[later].sum())
        tied_x += int((later & (dx == 0)).sum())
        tied_y += int((later & (dy == 0)).sum())
    pairs = n * (n - 1) // 2
    denominator = math.sqrt((pairs - tied_x) * (pairs - tied_y))
    return (s / denominator if denominator else math.nan), n


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


def f_quantile(p: float, df1: float, df2: float) -> float:
    """Fisher's F quantile at probability ``p`` in (0, 1): bisection on ``f_sf`` (agrees with scipy's to 1e-6)."""
    if not 0 < p < 1:
        raise ValueError(f"an F quantile needs p in (0, 1), got {p}")
    return _f_quantile_rounded(float(p), round(float(df1), 6), round(float(df2), 6))


@functools.lru_cache(maxsize=4096)
def _f_quantile_rounded(p: float, df1: float, df2: float) -> float:
    upper = 1 - p
    lo, hi = 0.0, 1.0
    while f_sf(hi, df1, df2) > upper:
        lo, hi = hi, hi * 2
    for _ in range(100):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if f_sf(mid, df1, df2) > upper else (lo, mid)
        if hi - lo <= 1e-12 * hi:
            break
    return (lo + hi) / 2


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
