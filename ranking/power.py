"""How small a mean gain the study can detect: the minimum detectable gain of the leaderboard's interval. Pure.

A candidate's mean gain is the mean over T targets of each target's mean paired difference over n_t seeds. With
one seed-to-seed SD σ_d of a paired difference (candidate run − base run on the same seed), its standard error is
σ_d · √(Σ_t 1/n_t) / T, and the pooled within-target Student t interval (ranking/gains.py) has
df = Σ_t (n_t − 1). At two-sided level α and power 1 − β the minimum detectable mean gain is

    MDE = (t_{1−α/2, df} + t_{1−β, df}) · σ_d · √(Σ_t 1/n_t) / T

(the usual approximation that ignores the noncentral t's skew). Below 2 degrees of freedom the leaderboard gives
no interval, and there is no MDE (NaN).

Two uses in the study report: by design, σ_d = √2 · σ_base, the pooled within-target SD of the base's own runs
(a paired difference of two independent runs: its variance is twice a run's); as measured, σ_d = the pooled SD of
the candidates' paired differences within each (candidate, target) cell. Values in points (fractions ×100).

The pooled interval assumes a seed moves a candidate's paired differences on different targets independently; a
seed effect shared across targets would make it too narrow (coverage 85% at a correlation of 0.3 in the
simulation of ranking/gains.py). ``seed_effect`` tests that on the study's own runs: within each candidate, a
two-way layout target × seed slot over the slots paired on every one of its targets; the seed mean square
(T · Σ_s (m_s − m̄)² / (S − 1), m_s the slot's mean over targets) against the target × seed residual mean square,
both pooled over candidates: F with Σ (S − 1) and Σ (T − 1)(S − 1) degrees of freedom. Under no shared seed
effect F ≈ 1.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from data.metrics import RERUN_STRIDE
from data.payloads import payload_of
from data.records import Score
from ranking.leaderboard import TARGET_METRIC
from ranking.stats import f_sf, t_quantile

ALPHA, POWER = 0.05, 0.80
MIN_DF = 2  # the leaderboard gives no interval below this many degrees of freedom
DESIGN_SEEDS = (3, 5, 8)  # seeds per (model, target) the design calculation is printed for
GOAL_PTS = 2.5  # the gain a study should detect: intertraining gains are typically a few points
REFERENCE_SEEDS = 5  # the design the report checks against GOAL_PTS


@dataclass(frozen=True, slots=True)
class PooledSd:
    """The SD of values around their own group's mean, pooled over groups: √(Σ within-group SS / df)."""

    sd: float  # NaN without a degree of freedom
    df: int  # Σ (n_g − 1) over the groups
    n_groups: int  # groups with at least one value
    n_values: int


@dataclass(frozen=True, slots=True)
class Mde:
    """The minimum detectable mean gain (points) with ``seeds[t]`` paired seeds on each of the targets."""

    seeds: tuple[int, ...]  # per target
    df: int
    sd: float  # σ_d used, points
    mde: float  # NaN below MIN_DF degrees of freedom

    @property
    def n_targets(self) -> int:
        return len(self.seeds)


@dataclass(frozen=True, slots=True)
class PowerAnalysis:
    """The design calculation (from the base's runs) and the measured one (from the candidates' differences)."""

    targets: tuple[str, ...]  # the kept targets the calculation is over
    base_sd: PooledSd | None  # the base's runs at each kept target's chosen rate (points); None: no runs
    design: tuple[Mde, ...]  # σ_d = √2 · base_sd, DESIGN_SEEDS seeds on every kept target
    paired_sd: PooledSd | None  # the candidates' paired differences (points); None: no pairs
    measured: Mde | None  # σ_d = paired_sd, the study's typical seeds per cell on every kept target
    alpha: float = ALPHA
    power: float = POWER
    goal: float = GOAL_PTS

    @property
    def reference(self) -> Mde | None:
        """The design with REFERENCE_SEEDS seeds, the one compared with the goal."""
        return next((m for m in self.design if set(m.seeds) == {REFERENCE_SEEDS}), None)


def pooled_sd(groups: Iterable[Sequence[float]]) -> PooledSd:
    """Pooled within-group SD; groups of one value add nothing (no degree of freedom)."""
    ss, df, n_groups, n_values = 0.0, 0, 0, 0
    for group in groups:
        values = [float(v) for v in group if math.isfinite(v)]
        if not values:
            continue
        mean = math.fsum(values) / len(values)
        ss += math.fsum((v - mean) ** 2 for v in values)
        df += len(values) - 1
        n_groups += 1
        n_values += len(values)
    return PooledSd(sd=math.sqrt(ss / df) if df else math.nan, df=df, n_groups=n_groups, n_values=n_values)


def minimum_detectable_gain(sd: float, seeds: Sequence[int], *, alpha: float = ALPHA,
                            power: float = POWER) -> Mde:
    """The MDE of the module doc for σ_d = ``sd`` and ``seeds[t]`` seeds on target t."""
    seeds = tuple(int(n) for n in seeds)
    df = sum(n - 1 for n in seeds if n >= 1)
    if df < MIN_DF or not math.isfinite(sd) or any(n < 1 for n in seeds):
        return Mde(seeds=seeds, df=df, sd=sd, mde=math.nan)
    se = sd * math.sqrt(sum(1 / n for n in seeds)) / len(seeds)
    return Mde(seeds=seeds, df=df, sd=sd, mde=(t_quantile(df, 1 - alpha / 2) + t_quantile(df, power)) * se)


def study_power(scores: Iterable[Score], base_id: str, config_hash: str, chosen_lrs: Mapping[str, float | None]
                ) -> PowerAnalysis | None:
    """Both calculations over the kept targets (``chosen_lrs``: target -> the sweep's rate, None when no sweep
    chose one) from the ok target runs of the protocol ``config_hash``; None without a kept target."""
    if not chosen_lrs:
        return None
    targets = tuple(sorted(chosen_lrs))
    runs = [s for s in scores if s.metric == TARGET_METRIC and s.config_hash == config_hash and s.status == "ok"
            and s.target in chosen_lrs and _at_rate(s, chosen_lrs[s.target])]
    base = [s for s in runs if s.repo_id == base_id]
    by_target: dict[str, list[float]] = {}
    for s in base:
        by_target.setdefault(s.target, []).append(100 * s.value)
    base_sd = pooled_sd(by_target.values()) if by_target else None
    design = tuple(minimum_detectable_gain(math.sqrt(2) * base_sd.sd, [n] * len(targets))
                   for n in DESIGN_SEEDS) if base_sd is not None else ()
    paired = _paired_cells(runs, base_id)
    paired_sd = pooled_sd(paired.values()) if paired else None
    measured = None
    if paired_sd is not None:
        typical = int(statistics.median_low(len(v) for v in paired.values()))
        measured = minimum_detectable_gain(paired_sd.sd, [typical] * len(targets))
    return PowerAnalysis(targets=targets, base_sd=base_sd, design=design, paired_sd=paired_sd, measured=measured)


def _at_rate(s: Score, lr: float | None) -> bool:
    """The run was at ``lr`` (any rate when ``lr`` is None; runs that did not record their rate are taken to be)."""
    if lr is None:
        return True
    recorded = getattr(payload_of(s), "lr", None)
    return recorded is None or math.isclose(recorded, lr, rel_tol=1e-9)


def _paired_cells(runs: list[Score], base_id: str) -> dict[tuple[str, str, str], list[float]]:
    """(candidate, revision, target) -> its paired differences in points (candidate run − base run, same seed)."""
    base = {(s.target, s.seed): s.value for s in runs if s.repo_id == base_id}
    cells: dict[tuple[str, str, str], list[float]] = {}
    for s in runs:
        if s.repo_id != base_id and (s.target, s.seed) in base:
            cells.setdefault((s.repo_id, s.revision, s.target), []).append(100 * (s.value - base[(s.target, s.seed)]))
    return cells


@dataclass(frozen=True, slots=True)
class SeedEffect:
    """The test of a seed effect shared across targets (module doc): F, its degrees of freedom and p."""

    f: float
    df_seed: int
    df_residual: int
    p: float
    n_candidates: int  # candidates with >= 2 complete slots on >= 2 targets


def seed_effect(scores: Iterable[Score], base_id: str, config_hash: str) -> SeedEffect | None:
    """The F test over the ok paired runs of ``config_hash``; None when no candidate has 2 targets × 2 slots."""
    runs = [s for s in scores if s.metric == TARGET_METRIC and s.config_hash == config_hash and s.status == "ok"]
    base = {(s.target, s.seed): s.value for s in runs if s.repo_id == base_id}
    cells: dict[tuple[str, str], dict[str, dict[int, float]]] = {}
    for s in runs:
        if s.repo_id != base_id and (s.target, s.seed) in base:
            slot = cells.setdefault((s.repo_id, s.revision), {}).setdefault(s.target, {})
            slot[s.seed % RERUN_STRIDE] = 100 * (s.value - base[(s.target, s.seed)])
    ss_seed = ss_resid = 0.0
    df_seed = df_resid = n = 0
    for by_target in cells.values():
        slots = sorted(set.intersection(*(set(d) for d in by_target.values())))
        if len(by_target) < 2 or len(slots) < 2:
            continue
        table = [[d[slot] for slot in slots] for d in by_target.values()]  # targets × slots
        seed, resid = _two_way(table)
        ss_seed, ss_resid = ss_seed + seed, ss_resid + resid
        df_seed += len(slots) - 1
        df_resid += (len(table) - 1) * (len(slots) - 1)
        n += 1
    if not n or ss_resid <= 0:
        return None
    f = (ss_seed / df_seed) / (ss_resid / df_resid)
    return SeedEffect(f=f, df_seed=df_seed, df_residual=df_resid, p=f_sf(f, df_seed, df_resid), n_candidates=n)


def _two_way(table: list[list[float]]) -> tuple[float, float]:
    """(seed sum of squares, residual sum of squares) of a targets × slots table with one value per cell."""
    n_t, n_s = len(table), len(table[0])
    grand = math.fsum(map(math.fsum, table)) / (n_t * n_s)
    rows = [math.fsum(r) / n_s for r in table]
    cols = [math.fsum(table[t][s] for t in range(n_t)) / n_t for s in range(n_s)]
    ss_seed = n_t * math.fsum((c - grand) ** 2 for c in cols)
    ss_resid = math.fsum((table[t][s] - rows[t] - cols[s] + grand) ** 2 for t in range(n_t) for s in range(n_s))
    return ss_seed, ss_resid
