"""Is the free energy measured reliably enough to rank models? Replicates of the free-energy scorer (``Score.seed``
0, 1, 2, ... of each model) give, per quantity (F, λ̂, L_n(w*)), the one-way random-effects intraclass
correlation ICC(1) (Shrout & Fleiss 1979, case 1: each model measured k times by interchangeable runs) with its
F-distribution interval (Shrout & Fleiss; McGraw & Wong 1996, case 1), and the two variance components it is made
of: between models and between replicates of one model.

One-way ANOVA over a models with n_i replicates each (N = Σ n_i): MSB = Σ n_i (ȳ_i − ȳ)² / (a − 1),
MSW = Σ Σ (y_ij − ȳ_i)² / (N − a); k0 = (N − Σ n_i² / N) / (a − 1) (= k when balanced).
ICC(1) = (MSB − MSW) / (MSB + (k0 − 1)·MSW); σ²_between-model = (MSB − MSW) / k0, σ²_between-replicate = MSW.
Interval at level 1 − α: F0 = MSB / MSW on (a − 1, N − a) df, F_L = F0 / F_{1−α/2}(a − 1, N − a),
F_U = F0 · F_{1−α/2}(N − a, a − 1), ICC ∈ ((F_L − 1) / (F_L + k0 − 1), (F_U − 1) / (F_U + k0 − 1)); exact for
balanced normal data (tests: its coverage by simulation), approximate with k0 otherwise.

Replicate r reads the same split-B windows and masks for every model (scoring/free_energy.py), so the replicates
are crossed with the models: a window set that is easier for every model shifts all of a replicate's F by the same
amount, which ICC(1) counts as noise although it changes no ranking. Beside it, the consistency ICC(C,1) of the
two-way model (McGraw & Wong 1996, case 3A; Shrout & Fleiss ICC(3,1)) over the models with every replicate:
MSR = k Σ_i (ȳ_i· − ȳ)² / (n − 1), MSE = Σ Σ (y_ij − ȳ_i· − ȳ_·j + ȳ)² / ((n − 1)(k − 1)),
ICC(C,1) = (MSR − MSE) / (MSR + (k − 1)·MSE), its interval as ICC(1)'s with F0 = MSR / MSE on (n − 1, (n − 1)(k − 1))
df. It measures whether the replicates order the models alike, which is what a ranking needs.

Only models with ≥ 2 replicates enter; unconverged estimates are used and counted, as in the validity table.
Pure: no torch, no store.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from data.records import Score
from ranking.stats import f_quantile

SCORER = "free_energy"
QUANTITIES = (("free_energy", "free energy F"), ("llc_mean", "λ̂"), ("init_loss", "L_n(w*)"))
LAMBDA = "llc_mean"
USED_STATUSES = ("ok", "unconverged")
NOISE_VERDICT = "F is then L_n plus noise"


@dataclass(frozen=True, slots=True)
class Icc:
    """ICC(1) of one quantity over the models with ≥ 2 replicates; NaN where undefined (fewer than 2 such models,
    or no spread at all)."""

    metric: str
    label: str
    icc: float
    low: float
    high: float
    between: float  # σ² between models, (MSB − MSW) / k0: negative when replicates differ more than models
    within: float  # σ² between replicates of one model, MSW
    n_models: int
    n_runs: int
    k0: float
    level: float = 0.95
    consistency: float = math.nan  # ICC(C,1) over the models with every replicate (replicate effects removed)
    consistency_low: float = math.nan
    consistency_high: float = math.nan


@dataclass(frozen=True, slots=True)
class Reliability:
    rows: tuple[Icc, ...]
    models: int  # models with at least one free-energy estimate
    replicated: int  # ... and with ≥ 2
    max_replicates: int  # the most replicates of any model
    passed: int  # replicated runs of F that passed the convergence gate, of ...
    runs: int

    def row(self, metric: str) -> Icc:
        return next(r for r in self.rows if r.metric == metric)


def icc1(groups: Sequence[Sequence[float]], *, level: float = 0.95) -> tuple[float, float, float, float, float, float]:
    """(ICC(1), low, high, σ²_between, σ²_within, k0) of ``groups`` (each model's replicates; groups of < 2 values
    are left out); NaNs when fewer than 2 groups remain."""
    kept = [np.asarray(g, dtype=np.float64) for g in groups if len(g) >= 2]
    a = len(kept)
    if a < 2:
        return (math.nan,) * 6
    sizes = np.array([len(g) for g in kept], dtype=np.float64)
    total = sizes.sum()
    means = np.array([g.mean() for g in kept])
    grand = float((sizes * means).sum() / total)
    msb = float((sizes * (means - grand) ** 2).sum() / (a - 1))
    msw = float(sum(((g - g.mean()) ** 2).sum() for g in kept) / (total - a))
    k0 = float((total - (sizes ** 2).sum() / total) / (a - 1))
    if msb + (k0 - 1) * msw <= 0:
        return math.nan, math.nan, math.nan, 0.0, msw, k0
    icc = (msb - msw) / (msb + (k0 - 1) * msw)
    low, high = _f_interval(msb, msw, a - 1, total - a, k0, level)
    return icc, low, high, (msb - msw) / k0, msw, k0


def icc_consistency(groups: Sequence[Sequence[float]], *, level: float = 0.95) -> tuple[float, float, float]:
    """(ICC(C,1), low, high) over the groups of the most common length ≥ 2 (a complete models × replicates table,
    replicate j of every model read on the same windows); NaNs below 2 such models."""
    lengths = [len(g) for g in groups if len(g) >= 2]
    if not lengths:
        return (math.nan,) * 3
    k = max(set(lengths), key=lambda n: (lengths.count(n), n))
    table = np.array([g for g in groups if len(g) == k], dtype=np.float64)
    n = len(table)
    if n < 2:
        return (math.nan,) * 3
    grand = table.mean()
    msr = float(k * ((table.mean(axis=1) - grand) ** 2).sum() / (n - 1))
    resid = table - table.mean(axis=1, keepdims=True) - table.mean(axis=0, keepdims=True) + grand
    mse = float((resid ** 2).sum() / ((n - 1) * (k - 1)))
    if msr + (k - 1) * mse <= 0:
        return (math.nan,) * 3
    low, high = _f_interval(msr, mse, n - 1, (n - 1) * (k - 1), k, level)
    return (msr - mse) / (msr + (k - 1) * mse), low, high


def _f_interval(msb: float, msw: float, df1: float, df2: float, k0: float, level: float) -> tuple[float, float]:
    if msw == 0:
        return 1.0, 1.0
    f0, q = msb / msw, 1 - (1 - level) / 2
    f_low, f_high = f0 / f_quantile(q, df1, df2), f0 * f_quantile(q, df2, df1)
    return (f_low - 1) / (f_low + k0 - 1), (f_high - 1) / (f_high + k0 - 1)


def replicates(scores: Iterable[Score], metric: str, models: Iterable[str] | None = None) -> dict[str, list[float]]:
    """Each model's replicate values of ``metric`` (free-energy scorer, ok or unconverged), one per seed (several
    stored at one seed are averaged), restricted to ``models`` when given."""
    keep = set(models) if models is not None else None
    by_seed: dict[str, dict[int, list[float]]] = {}
    for s in scores:
        if s.scorer == SCORER and s.metric == metric and s.status in USED_STATUSES and math.isfinite(s.value) and (
                keep is None or s.repo_id in keep):
            by_seed.setdefault(s.repo_id, {}).setdefault(s.seed, []).append(s.value)
    return {repo: [float(np.mean(v)) for _, v in sorted(seeds.items())] for repo, seeds in sorted(by_seed.items())}


def reliability(scores: Iterable[Score], *, models: Iterable[str] | None = None, level: float = 0.95) -> Reliability:
    """ICC(1) of F, λ̂ and L_n(w*) over the replicated models among ``models`` (all when None)."""
    scores = list(scores)
    rows = []
    for metric, label in QUANTITIES:
        groups = replicates(scores, metric, models)
        icc, low, high, between, within, k0 = icc1(list(groups.values()), level=level)
        replicated = [g for g in groups.values() if len(g) >= 2]
        consistency = icc_consistency(list(groups.values()), level=level)
        rows.append(Icc(metric, label, icc, low, high, between, within, len(replicated),
                        sum(map(len, replicated)), k0, level, *consistency))
    f_groups = replicates(scores, "free_energy", models)
    replicated = {r for r, g in f_groups.items() if len(g) >= 2}
    gate = [s.status == "ok" for s in scores if s.scorer == SCORER and s.metric == "free_energy"
            and s.repo_id in replicated and s.status in USED_STATUSES]
    return Reliability(rows=tuple(rows), models=len(f_groups), replicated=len(replicated),
                       max_replicates=max(map(len, f_groups.values()), default=0), passed=sum(gate), runs=len(gate))


def reliability_verdict(r: Reliability) -> str:
    """One sentence: does λ̂ tell the models apart beyond the noise of its own replicates?"""
    lam = r.row(LAMBDA)
    if not (math.isfinite(lam.between) and math.isfinite(lam.within)):
        return (f"Reliability of λ̂ over replicates: not measured ({_replicate_count(r)}; it needs at least 2 "
                "models with ≥ 2 replicates each).")
    if lam.between <= lam.within:
        return (f"λ̂'s between-model variance ({_var(lam.between)}) does not exceed its between-replicate variance "
                f"({_var(lam.within)}): λ̂ does not tell these models apart beyond its own noise, and "
                f"{NOISE_VERDICT}.")
    return (f"λ̂'s between-model variance ({_var(lam.between)}) exceeds its between-replicate variance "
            f"({_var(lam.within)}): λ̂ tells these models apart beyond its own noise (ICC(1) {lam.icc:.2f}).")


def _replicate_count(r: Reliability) -> str:
    if not r.models:
        return "no free-energy estimates"
    if r.max_replicates < 2:
        return f"{r.models} models with 1 free-energy estimate each"
    return f"{r.replicated} of {r.models} models with ≥ 2 replicates"


def reliability_markdown(r: Reliability) -> list[str]:
    """The ICC table and the verdict under it (Markdown)."""
    head = ("**Reliability of the free energy over replicates** (ICC(1): one-way random effects, Shrout & Fleiss "
            "1979; 95% interval from the F distribution, McGraw & Wong 1996 case 1; variances in each quantity's "
            "units²)")
    if not any(row.n_models >= 2 for row in r.rows):
        return [f"{head}: not measured ({_replicate_count(r)}; it needs at least 2 models with ≥ 2 replicates each)."]
    gate = f"{r.passed} of {r.runs} replicated F estimates passed the convergence gate; all are used here."
    out = [f"{head}: {_replicate_count(r)}. {gate}", "",
           ("| quantity | ICC(1) | 95% CI | ICC(C,1), windows shared | 95% CI | between-model variance | "
           "between-replicate variance | models | runs |"),
           "|---" * 9 + "|"]
    for row in r.rows:
        out.append(f"| {row.label} | {_icc(row.icc)} | {_ci(row.low, row.high)} | {_icc(row.consistency)} | "
                   f"{_ci(row.consistency_low, row.consistency_high)} | {_var(row.between)} | {_var(row.within)} | "
                   f"{row.n_models} | {row.n_runs} |")
    return [*out, "", ("ICC(C,1) removes each replicate's shared shift (every model reads replicate r's windows): "
            "it asks whether the replicates order the models alike."), "", reliability_verdict(r)]


def _icc(value: float) -> str:
    return _signed(value) if math.isfinite(value) else "not measured"


def _ci(low: float, high: float) -> str:
    return f"{_signed(low)} … {_signed(high)}" if math.isfinite(low) else "—"


def _signed(value: float) -> str:
    return f"{value:+.2f}".replace("-", "−")


def _var(value: float) -> str:
    return f"{value:.3g}".replace("-", "−") if math.isfinite(value) else "—"
