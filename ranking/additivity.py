"""Is the gain matrix additive? Tests beside the additive fit of ranking/study_report.py. Pure numpy.

- ``tukey``: Tukey's one-degree-of-freedom test for non-additivity (Tukey 1949), on the observed cells:
  the additive residuals regressed on a_s·b_t (orthogonalized against the additive design); F(1, n − p − 1).
  It needs no replicates, and detects the interaction a per-target scale would produce.
- ``replicate_interaction``: the interaction mean square of the additive fit against the pure error of the
  seeds (each cell's paired gains over its seeds): F(n − p, Σ(n_cell − 1)); needs ≥ 2 seeds in some cells.
- ``fit_target_scale``: gain[s,t] ≈ μ_t + λ_t·a_s (the intertraining paper's model: a per-target scale of
  one source effect), alternating least squares, a_s standardized; RMSE on its residual degrees of freedom.

Each is computed whenever it has a residual degree of freedom, but reported (ranking/study_markdown.py) only
from ``MIN_RESIDUAL_DF`` on: with a few residual df an F test or an R² says nothing either way.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ranking.stats import f_sf

MIN_RESIDUAL_DF = 10  # fewer residual degrees of freedom than this: the fit or test is reported as not tested


def is_testable(df: float) -> bool:
    """Whether a fit or test with ``df`` residual (or pure-error) degrees of freedom is worth reporting."""
    return df >= MIN_RESIDUAL_DF


@dataclass(frozen=True, slots=True)
class FTest:
    f: float
    df1: float
    df2: float
    p_value: float


@dataclass(frozen=True, slots=True)
class ScaleFit:
    r2: float
    rmse: float  # on residual degrees of freedom, points
    n_cells: int
    n_params: int

    @property
    def residual_df(self) -> int:
        return self.n_cells - self.n_params


def tukey(y: np.ndarray, design: np.ndarray, a: np.ndarray, b: np.ndarray, rows: np.ndarray,
          cols: np.ndarray) -> FTest | None:
    """``y`` observed cells, ``design`` the additive design, ``a``/``b`` its fitted source/target effects
    (centred), ``rows``/``cols`` each cell's source and target index; None without a residual df."""
    hat = design @ np.linalg.pinv(design)
    residual = y - hat @ y
    z = (a - a.mean())[rows] * (b - b.mean())[cols]
    z = z - hat @ z
    df2 = len(y) - np.linalg.matrix_rank(design) - 1
    if df2 < 1 or float(z @ z) < 1e-12:
        return None
    ss_n = float(residual @ z) ** 2 / float(z @ z)
    rest = float(residual @ residual) - ss_n
    f = ss_n / (rest / df2) if rest > 0 else np.inf
    return FTest(f=float(f), df1=1.0, df2=float(df2), p_value=f_sf(float(f), 1, df2) if np.isfinite(f) else 0.0)


def replicate_interaction(sse_means: float, df_interaction: int, replicates: list[np.ndarray]) -> FTest | None:
    """``sse_means``: the additive fit's SSE on cell means, each cell weighted by its seed count (pass the
    weighted SSE); ``replicates``: each fitted cell's per-seed paired gains. None without pure-error df."""
    df_pure = sum(len(r) - 1 for r in replicates)
    if df_pure < 1 or df_interaction < 1:
        return None
    pure = sum(float(((r - r.mean()) ** 2).sum()) for r in replicates) / df_pure
    if pure <= 0:
        return None
    f = (sse_means / df_interaction) / pure
    return FTest(f=float(f), df1=float(df_interaction), df2=float(df_pure),
                 p_value=f_sf(float(f), df_interaction, df_pure))


def fit_target_scale(y: np.ndarray, rows: np.ndarray, cols: np.ndarray, n_sources: int, n_targets: int,
                     *, iterations: int = 200) -> ScaleFit | None:
    """Least squares of μ_t + λ_t·a_s on the observed cells; None without residual degrees of freedom."""
    n_params = 2 * n_targets + n_sources - 2
    if len(y) <= n_params:
        return None
    a = np.zeros(n_sources)
    for s in range(n_sources):  # start from each source's mean
        a[s] = y[rows == s].mean() if (rows == s).any() else 0.0
    a = _standardize(a)
    mu, lam = np.zeros(n_targets), np.ones(n_targets)
    for _ in range(iterations):
        _fit_targets(y, rows, cols, a, mu, lam)
        for s in range(n_sources):
            at = rows == s
            weight = float((lam[cols[at]] ** 2).sum())
            a[s] = float((lam[cols[at]] * (y[at] - mu[cols[at]])).sum()) / weight if weight > 0 else 0.0
        a = _standardize(a)
    _fit_targets(y, rows, cols, a, mu, lam)
    fitted = mu[cols] + lam[cols] * a[rows]
    sse, sst = float(((y - fitted) ** 2).sum()), float(((y - y.mean()) ** 2).sum())
    return ScaleFit(r2=1 - sse / sst if sst > 0 else float("nan"), rmse=float(np.sqrt(sse / (len(y) - n_params))),
                    n_cells=len(y), n_params=n_params)


def _fit_targets(y, rows, cols, a, mu, lam) -> None:
    """μ_t and λ_t (in place) by least squares of each target's cells on the current a_s."""
    for t in range(len(mu)):
        at = cols == t
        x = np.column_stack([np.ones(at.sum()), a[rows[at]]])
        mu[t], lam[t] = np.linalg.lstsq(x, y[at], rcond=None)[0]


def _standardize(a: np.ndarray) -> np.ndarray:
    sd = a.std()
    return (a - a.mean()) / sd if sd > 0 else a - a.mean()
