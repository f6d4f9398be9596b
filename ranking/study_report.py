"""The offline study's report: the intertraining paper's claims, computed from one base's stored scores.

Pure functions over the records and frames a ``Store`` yields (read by the caller), and the snapshot's meta;
no torch, no gradio. Gain quantities are in points (score ×100), as the app shows gains; accuracies stay fractions.

- Counts: candidates with a mean gain over the full suite, those beating the base beyond seed noise (the
  leaderboard's ``beats_base``: the 95% interval of the mean gain above 0) and those with mean gain > 0.
- Gain matrix: source × target, the source being a candidate's ``dataset:`` Hub tag(s) (else its repo id).
- Per source: the leaderboard's own mean gain and 95% interval (ranking/gains.py: over the candidate's paired
  seeds), with its seed count and, when the board gives it, its degrees of freedom; one interval in the app,
  the downloads and this report. Only complete rows get a mean (the leaderboard's rule).
- Additive model gain[s,t] ≈ μ + a_s + b_t: ordinary least squares on the observed cells, diagonal
  (source = target) cells left out by default; a_s and b_t are centred to sum to 0. Shuffled gains: the
  same fit on permutations of the fitted cells' values (seeded); p = (1 + #shuffled RMSE ≤ real) / (1 + N).
  RMSE on residual degrees of freedom (cells − parameters). Beside it (ranking/additivity.py): Tukey's
  one-degree-of-freedom test, the lack of fit against the seeds' pure error (≥ 2 seeds per cell), and the
  per-target-scale model μ_t + λ_t·a_s. All are computed; each is reported from 10 residual df on.
- Correlations: ``ranking.stats`` (percentile bootstrap over models, 2,000 resamples, seed 0).
- Guided − standard dropout: intertraining runs of the same model revision, target (dataset revision) and
  seed under two protocols whose fine-tuning configs differ only in ``dropout``; the interval is a 95%
  t-interval over the models' mean differences (over the targets' when only one model has pairs).
- Labels saved: the ``sample_efficiency`` scorer's ``labels_saved`` with its reference accuracy.
- Design: how the targets were chosen (the ranked protocol's suite order, learning-rate sweep, floor and cap)
  and the seeds per cell (configured: the snapshot's meta; stored: the runs). Power: ranking/power.py.
- Sources and contamination: the snapshot's meta (``source_checks``, ``checkpoints``, ``target_overlap``, written
  by ``python -m scoring study``), read into the frozen records below; each is ``None`` when not recorded.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from data.metrics import PROJECT_SOURCE
from data.payloads import LabelsSaved, PayloadError, payload_of, read_protocol
from data.records import Candidate, CandidateStatus, Score
from ranking.additivity import FTest, ScaleFit, fit_target_scale, replicate_interaction, tukey
from ranking.leaderboard import TARGET_METRIC, Leaderboard
from ranking.power import PowerAnalysis, SeedEffect, seed_effect, study_power
from ranking.reliability import reliability
from ranking.stats import Correlation, pearson_with_ci, spearman_with_ci, t_quantile
from ranking.study_runs import RunCounts, TargetProtocol, run_counts, target_protocols
from ranking.validity import Validity, board_gains, predictor_frame, published_baseline, validity

DATASET_TAG = "dataset:"
INTERTRAINING, SAMPLE_EFFICIENCY = "intertraining", "sample_efficiency"

@dataclass(frozen=True, slots=True)
class Estimate:
    """A mean of ``n`` values with its 95% Student t-interval (bounds NaN when n = 1)."""

    mean: float
    low: float
    high: float
    n: int


@dataclass(frozen=True, slots=True, eq=False)
class AdditiveFit:
    """gain[s,t] ≈ mu + a_s + b_t by least squares over ``n_cells`` observed cells (points)."""

    mu: float
    source_effects: pd.Series  # a_s, centred to sum to 0
    target_effects: pd.Series  # b_t, centred to sum to 0
    r2: float
    rmse: float
    n_cells: int
    n_params: int  # rank of the design: 1 + (sources − 1) + (targets − 1) when connected
    diagonal_excluded: bool
    n_diagonal: int  # observed source = target cells (left out of the fit when excluded)
    shuffled_r2: float  # mean over the permutations
    shuffled_rmse: float
    p_value: float
    n_permutations: int
    seed: int
    tukey: FTest | None = None  # Tukey's one-degree-of-freedom test for non-additivity
    replicates: FTest | None = None  # interaction against the seeds' pure error (needs >= 2 seeds per cell)
    scale: ScaleFit | None = None  # the per-target-scale model beside the additive one

    @property
    def residual_df(self) -> int:
        return self.n_cells - self.n_params


@dataclass(frozen=True, slots=True)
class DropoutComparison:
    difference: Estimate  # guided − standard, points: t-interval over the models' mean differences
    n_pairs: int
    grouped_by: str  # "model" (pairs of one model are not independent: their mean is one observation) or "target"
    standard_mean: float  # mean target score ×100 over the paired runs
    guided_mean: float
    n_models: int
    n_targets: int


# ------------------------------------------------------------------------------ the snapshot's meta, typed
@dataclass(frozen=True, slots=True)
class ConfigMeta:
    """What the study was configured to run (``meta["study"]``: the StudyConfig); None where a field is absent."""

    targets: str
    max_targets: int | None
    base_seeds: int | None
    candidate_seeds: int | None
    sources: str


@dataclass(frozen=True, slots=True)
class SourceCheck:
    """One source model's check before it became a candidate (``meta["source_checks"]``)."""

    source: str
    repo_id: str
    metric: str
    test_score: float | None  # its own task's test score (a fraction for accuracy)
    majority_rate: float | None  # its test split's majority-class rate
    status: str  # "ok" | "rejected"
    reason: str  # why it was rejected; empty when ok
    train_rows: int | None  # training rows left after the removal
    removed: tuple[tuple[str, int], ...]  # (target, training rows dropped as overlapping its eval or test split)
    remaining_overlap: int | None  # training rows still overlapping a target after the removal (0 expected)
    sha256: str  # of its model.safetensors; "" when not recorded
    first_attempt: str = ""  # when the fallback recipe made this model: what the first recipe's model scored, and why
    # it failed

    def removed_for(self, target: str) -> int | None:
        return next((n for t, n in self.removed if t == target), None)


@dataclass(frozen=True, slots=True)
class StudyMeta:
    """The parts of a snapshot's meta the report reads; each None when the snapshot does not record it."""

    config: ConfigMeta | None = None
    source_checks: tuple[SourceCheck, ...] | None = None
    checkpoints: tuple[tuple[str, str], ...] | None = None  # (repo id, sha256 of its model.safetensors)
    target_overlap: tuple[tuple[str, int], ...] | None = None  # ("a|b", texts shared by targets a and b)

    def checkpoint_of(self, repo_id: str) -> str:
        return next((h for r, h in self.checkpoints or () if r == repo_id), "")


@dataclass(frozen=True, slots=True)
class Contamination:
    """Source training rows removed because their normalised text is in a target's eval or test split."""

    rows_removed: int
    pairs_with_removals: int  # (source, target) pairs that lost at least one row
    pairs_checked: int
    remaining: int  # rows still overlapping after the removal, over every source
    target_overlap: tuple[tuple[str, int], ...] | None  # between the targets' own texts


@dataclass(frozen=True, slots=True)
class StudyDesign:
    """How the ranked protocol chose its targets, and the seeds per cell (configured and stored)."""

    suite: tuple[str, ...]  # the protocol's targets, in the order they were tried
    suite_name: str  # the protocol's suite spec as written (a named suite or the comma list)
    lrs: tuple[float, ...]  # the base's sweep
    min_base_margin: float | None  # the floor: base mean test score at least this above the majority rate
    max_targets: int | None  # the cap: swept in suite order until this many were kept
    kept: tuple[str, ...]
    dropped: tuple[str, ...]  # swept and dropped (reasons: StudyReport.targets)
    unswept: tuple[str, ...]  # dropped unswept: the cap was reached earlier in the suite's order
    base_runs: tuple[tuple[str, int], ...]  # stored ok runs of the base per kept target
    candidate_runs: tuple[int, int] | None  # fewest and most ok runs in a (candidate, kept target) cell
    config: ConfigMeta | None  # the configured seeds (the snapshot's meta)
    base_checkpoint: str  # sha256 of the base's model.safetensors; "" when not recorded


@dataclass(frozen=True, slots=True, eq=False)
class StudyReport:
    base_id: str
    protocol: str  # the ranked intertraining protocol: config hash prefix and dropout mode
    n_ranked: int  # candidates with a mean gain over the full suite
    n_beat_base: int
    n_positive: int
    n_tagged: int  # matrix rows whose source comes from a dataset: tag
    gain_matrix: pd.DataFrame  # points; index "source", columns targets
    # source, repo_id, mean, low, high (the leaderboard's, points), n_seeds, df (NaN when the board gives none),
    # n_targets (in the mean), beats_base; best first
    sources: pd.DataFrame
    additive: AdditiveFit | None
    probe: Correlation | None
    free_energy_spearman: Correlation | None
    free_energy_pearson: Correlation | None
    dropout: DropoutComparison | None
    label_savings: pd.DataFrame | None
    exclude_diagonal: bool
    targets: tuple[TargetProtocol, ...] = ()  # the lr sweep's choice (or drop) per target
    runs: RunCounts | None = None  # stored and failed target runs of the ranked protocol
    validity: Validity | None = None  # each cheap score against the mean gain (ranking/validity.py)
    include_seen: bool = False  # the board's estimand: True when a mean gain includes the source's own target
    design: StudyDesign | None = None  # None without a ranked protocol
    power: PowerAnalysis | None = None  # None without a kept target
    seed_effect: SeedEffect | None = None  # the pooled interval's assumption tested (ranking/power.py)
    meta: StudyMeta = StudyMeta()
    contamination: Contamination | None = None  # None when the snapshot records no source checks


def read_meta(meta: Mapping | None) -> StudyMeta:
    """The snapshot's meta as typed records; a key that is absent or not of the written shape reads as None."""
    meta = meta if isinstance(meta, Mapping) else {}
    study = meta.get("study")
    config = ConfigMeta(targets=str(study.get("targets", "")), max_targets=_int_or_none(study.get("max_targets")),
                        base_seeds=_int_or_none(study.get("base_seeds")),
                        candidate_seeds=_int_or_none(study.get("candidate_seeds")),
                        sources=str(study.get("sources", ""))) if isinstance(study, Mapping) else None
    checks = meta.get("source_checks")
    source_checks = tuple(_source_check(c) for c in checks if isinstance(c, Mapping)) \
        if isinstance(checks, list) else None
    checkpoints = meta.get("checkpoints")
    overlap = meta.get("target_overlap")
    return StudyMeta(
        config=config, source_checks=source_checks,
        checkpoints=tuple((str(k), str(v)) for k, v in checkpoints.items()) if isinstance(checkpoints, Mapping)
        else None,
        target_overlap=tuple((str(k), _int_or_none(v) or 0) for k, v in overlap.items())
        if isinstance(overlap, Mapping) else None)


def _source_check(c: Mapping) -> SourceCheck:
    removed = c.get("removed")
    return SourceCheck(
        source=str(c.get("source", "")), repo_id=str(c.get("repo_id", "")), metric=str(c.get("metric", "")),
        test_score=_float_or_none(c.get("test_score")), majority_rate=_float_or_none(c.get("majority_rate")),
        status=str(c.get("status", "")), reason=str(c.get("reason") or ""),
        train_rows=_int_or_none(c.get("train_rows")),
        removed=tuple((str(t), _int_or_none(n) or 0) for t, n in removed.items())
        if isinstance(removed, Mapping) else (),
        remaining_overlap=_int_or_none(c.get("remaining_overlap")), sha256=str(c.get("sha256") or ""),
        first_attempt=_first_attempt(c.get("first_attempt")))


def _first_attempt(first) -> str:
    """"the first recipe: 65.2 %, <reason>" for a source made by the fallback recipe; "" otherwise."""
    if not isinstance(first, Mapping):
        return ""
    score = _float_or_none(first.get("test_score"))
    return "the first recipe: " + ", ".join(
        part for part in (f"{100 * score:.1f} %" if score is not None else "", str(first.get("reason") or "")) if part)


def _int_or_none(value) -> int | None:
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value) \
        else None


def _float_or_none(value) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value) \
        else None


def contamination(meta: StudyMeta) -> Contamination | None:
    """Totals of the source checks' removals; None when the snapshot records no source checks."""
    if meta.source_checks is None:
        return None
    removed = [n for c in meta.source_checks for _, n in c.removed]
    return Contamination(rows_removed=sum(removed), pairs_with_removals=sum(n > 0 for n in removed),
                         pairs_checked=len(removed),
                         remaining=sum(c.remaining_overlap or 0 for c in meta.source_checks),
                         target_overlap=meta.target_overlap)


def study_design(scores: Iterable[Score], base_id: str, config_hash: str, targets: tuple[TargetProtocol, ...],
                 suite: tuple[str, ...], meta: StudyMeta) -> StudyDesign | None:
    """The ranked protocol's target choice and seeds (``scores``: the base's intertraining scores, its candidates'
    included; ``suite``: the board's targets, kept when no sweep is stored); None without a ranked protocol."""
    runs = [s for s in scores if s.config_hash == config_hash]
    if not config_hash or not runs:
        return None
    config, data = _protocol_of(runs)
    named = [str(p[0]) for p in data if isinstance(p, list | tuple) and p] if isinstance(data, list) else []
    spec = config.get("suite", "")
    spec = ",".join(map(str, spec)) if isinstance(spec, list) else str(spec)
    listed = [t.strip() for t in spec.split(",") if t.strip()]
    order = listed if listed and set(listed) <= set(named) | {t.target for t in targets} else sorted(named)
    order += sorted({t.target for t in targets} - set(order))
    if targets:
        kept = tuple(t.target for t in targets if t.lr is not None)
        dropped = tuple(t.target for t in targets if t.lr is None and t.is_swept)
        unswept = tuple(t.target for t in targets if t.lr is None and not t.is_swept)
    else:  # no sweep stored: every suite target the board has is a kept target
        kept, dropped, unswept = tuple(suite), (), ()
    rank = {t: i for i, t in enumerate(order)}
    kept, dropped, unswept = (tuple(sorted(g, key=lambda t: (rank.get(t, len(rank)), t))) for g in (kept, dropped,
                                                                                                    unswept))
    ok = [s for s in runs if s.metric == TARGET_METRIC and s.status == "ok" and s.target in kept]
    cells: dict[tuple[str, str, str], int] = {}
    for s in ok:
        if s.repo_id != base_id:
            cells[(s.repo_id, s.revision, s.target)] = cells.get((s.repo_id, s.revision, s.target), 0) + 1
    margin = config.get("min_base_margin")
    return StudyDesign(
        suite=tuple(order), suite_name=spec, lrs=tuple(float(lr) for lr in config.get("lrs") or ()),
        min_base_margin=float(margin) if isinstance(margin, int | float) else None,
        max_targets=_int_or_none(config.get("max_targets")), kept=kept, dropped=dropped, unswept=unswept,
        base_runs=tuple((t, sum(s.repo_id == base_id and s.target == t for s in ok)) for t in kept),
        candidate_runs=(min(cells.values()), max(cells.values())) if cells else None, config=meta.config,
        base_checkpoint=meta.checkpoint_of(base_id))


def _protocol_of(runs: list[Score]) -> tuple[dict, object]:
    """The ranked protocol's config and data (the first readable stored copy)."""
    for s in runs:
        try:
            doc = read_protocol(s.config_json)
        except (PayloadError, TypeError, ValueError):
            continue
        return doc.config, doc.data
    return {}, None


def t_estimate(values) -> Estimate | None:
    v = np.asarray(values, dtype=np.float64).ravel()
    v = v[np.isfinite(v)]
    if not len(v):
        return None
    mean = float(v.mean())
    if len(v) < 2:
        return Estimate(mean, math.nan, math.nan, 1)
    half = t_quantile(len(v) - 1) * float(v.std(ddof=1)) / math.sqrt(len(v))
    return Estimate(mean, mean - half, mean + half, len(v))


def source_labels(candidates: Iterable[Candidate]) -> dict[str, str]:
    """repo_id -> its ``dataset:`` tags joined by "+" (Hub order); candidates without one are left out."""
    labels = {}
    for c in candidates:
        names = [t[len(DATASET_TAG):] for t in c.tags if t.startswith(DATASET_TAG) and len(t) > len(DATASET_TAG)]
        if names:
            labels[c.repo_id] = "+".join(names)
    return labels


def study_rows(rows: pd.DataFrame, labels: Mapping[str, str]) -> pd.DataFrame:
    """Leaderboard rows with any per-target gain, with a unique ``source`` label (repo id when untagged or
    when two candidates share a label), sorted by source."""
    gains = [c for c in rows.columns if c.startswith("gain:")]
    if rows.empty or not gains:
        return rows.iloc[:0].assign(source=pd.Series(dtype=object))
    rows = rows[rows[gains].notna().any(axis=1)]
    source = rows["repo_id"].map(lambda r: labels.get(r, r))
    shared = source.duplicated(keep=False)
    source = source.where(~shared, source + " (" + rows["repo_id"] + ")")
    return rows.assign(source=source).sort_values("source", kind="mergesort").reset_index(drop=True)


def gain_matrix(rows: pd.DataFrame) -> pd.DataFrame:
    """Source × target gains in points from ``study_rows``, targets sorted by name."""
    targets = sorted(c[len("gain:"):] for c in rows.columns if c.startswith("gain:"))
    values = rows[[f"gain:{t}" for t in targets]].to_numpy(dtype=np.float64, na_value=np.nan) * 100
    return pd.DataFrame(values, index=pd.Index(rows["source"], name="source"),
                        columns=pd.Index(targets, name="target"))


def diagonal_mask(matrix: pd.DataFrame) -> np.ndarray:
    targets = [str(t).lower() for t in matrix.columns]
    return np.array([[str(s).lower() == t for t in targets] for s in matrix.index], dtype=bool).reshape(matrix.shape)


def source_table(rows: pd.DataFrame, *, include_seen: bool) -> pd.DataFrame:
    """Per source (``study_rows``): the leaderboard's mean gain and its 95% interval in points, its seed count and
    degrees of freedom (``gain_df``; NaN when the board has no such column), and the targets in its mean (the
    suite's scored targets, less the source's own unless ``include_seen``); best first, incomplete rows last."""
    seen = 0 if include_seen else _column(rows, "n_seen").fillna(0)
    frame = pd.DataFrame({
        "source": rows["source"], "repo_id": rows["repo_id"],
        "mean": _column(rows, "mean_gain").astype(np.float64) * 100,
        "low": _column(rows, "gain_ci_low").astype(np.float64) * 100,
        "high": _column(rows, "gain_ci_high").astype(np.float64) * 100,
        "n_seeds": _column(rows, "n_seeds").fillna(0).astype(np.int64),
        "df": _column(rows, "gain_df").astype(np.float64),
        "n_targets": (_column(rows, "n_targets").fillna(0) - seen).clip(lower=0).astype(np.int64),
        "beats_base": _column(rows, "beats_base").eq(True)})
    return frame.sort_values(["mean", "source"], ascending=[False, True], na_position="last",
                             kind="mergesort").reset_index(drop=True)


def fit_additive(matrix: pd.DataFrame, *, exclude_diagonal: bool = True, n_permutations: int = 1000,
                 seed: int = 0, replicates: Mapping[tuple[str, str], np.ndarray] | None = None) -> AdditiveFit | None:
    """Least squares of the additive model on the observed cells, and of shuffled gains; None without residual
    degrees of freedom (no more cells than parameters)."""
    values = matrix.to_numpy(dtype=np.float64)
    observed, diagonal = np.isfinite(values), diagonal_mask(matrix)
    n_diagonal = int((observed & diagonal).sum())
    if exclude_diagonal:
        observed &= ~diagonal
    rows, cols = np.nonzero(observed)
    used_rows, r = np.unique(rows, return_inverse=True)
    used_cols, c = np.unique(cols, return_inverse=True)
    n, n_s = len(rows), len(used_rows)
    design = np.column_stack([np.ones(n), np.eye(n_s)[r], np.eye(len(used_cols))[c]])  # μ, a_s, b_t dummies
    rank = int(np.linalg.matrix_rank(design)) if n else 0
    if n <= rank:
        return None
    y = values[rows, cols]
    pinv = np.linalg.pinv(design)
    hat = design @ pinv
    coef = pinv @ y
    a, b = coef[1:1 + n_s], coef[1 + n_s:]
    sst = float(((y - y.mean()) ** 2).sum())
    shuffled = np.random.default_rng(seed).permuted(np.repeat(y[:, None], n_permutations, axis=1), axis=0)
    sse = ((np.column_stack([y, shuffled]) - hat @ np.column_stack([y, shuffled])) ** 2).sum(axis=0)
    rmse = np.sqrt(sse / (n - rank))  # on the residual degrees of freedom
    r2 = 1 - sse / sst if sst > 0 else np.full(len(sse), np.nan)
    p = (1 + int((rmse[1:] <= rmse[0] + 1e-12).sum())) / (1 + n_permutations) if n_permutations else math.nan
    return AdditiveFit(
        mu=float(coef[0] + a.mean() + b.mean()),
        source_effects=pd.Series(a - a.mean(), index=matrix.index[used_rows], name="a_s"),
        target_effects=pd.Series(b - b.mean(), index=matrix.columns[used_cols], name="b_t"),
        r2=float(r2[0]), rmse=float(rmse[0]), n_cells=n, n_params=rank, diagonal_excluded=exclude_diagonal,
        n_diagonal=n_diagonal, shuffled_r2=float(np.mean(r2[1:])) if n_permutations else math.nan,
        shuffled_rmse=float(np.mean(rmse[1:])) if n_permutations else math.nan, p_value=p,
        n_permutations=n_permutations, seed=seed, tukey=tukey(y, design, a, b, r, c),
        replicates=_replicate_test(matrix, (rows, cols), y - hat @ y, n - rank, replicates),
        scale=fit_target_scale(y, r, c, n_s, len(used_cols)))


def _replicate_test(matrix: pd.DataFrame, cells: tuple[np.ndarray, np.ndarray], residual: np.ndarray,
                    df: int, replicates: Mapping[tuple[str, str], np.ndarray] | None) -> FTest | None:
    """The additive fit's lack of fit against the seeds' own spread, over the fitted cells that have seeds."""
    if not replicates:
        return None
    runs = [np.asarray(replicates.get((matrix.index[i], matrix.columns[j]), ()), dtype=np.float64)
            for i, j in zip(*cells, strict=True)]
    weighted = float(sum(len(r) * e**2 for r, e in zip(runs, residual, strict=True)))
    return replicate_interaction(weighted, df, [r for r in runs if len(r) >= 2])


def _finetune_config(score: Score) -> tuple[str, str, str] | None:
    """(dropout mode, the rest of the fine-tuning config as canonical JSON, the target's dataset revision)."""
    try:
        protocol = read_protocol(score.config_json)
        finetune = dict(protocol.config["finetune"])
    except (PayloadError, KeyError, TypeError, ValueError):
        return None
    dropout = str(finetune.pop("dropout", "standard"))
    finetune.pop("seed", None)
    revisions = {str(p[0]): str(p[1]) for p in protocol.data or [] if isinstance(p, list) and len(p) == 2}
    return dropout, json.dumps(finetune, sort_keys=True), revisions.get(score.target, "")


def dropout_comparison(scores: Iterable[Score]) -> DropoutComparison | None:
    """Paired guided − standard intertraining scores (see the module doc); None without a pair."""
    runs: dict[str, dict[tuple, float]] = {"standard": {}, "guided": {}}
    for s in scores:
        config = _finetune_config(s) if s.metric == TARGET_METRIC else None
        if config is not None and config[0] in runs:
            runs[config[0]][(s.repo_id, s.revision, s.target, config[2], s.seed, config[1])] = s.value
    keys = sorted(runs["standard"].keys() & runs["guided"].keys())
    if not keys:
        return None
    standard = np.array([runs["standard"][k] for k in keys]) * 100
    guided = np.array([runs["guided"][k] for k in keys]) * 100
    models, targets = {k[:2] for k in keys}, {k[2] for k in keys}
    grouped_by, group = ("model", lambda k: k[:2]) if len(models) >= 2 else ("target", lambda k: k[2])
    by_group: dict = {}
    for k, diff in zip(keys, guided - standard, strict=True):
        by_group.setdefault(group(k), []).append(diff)
    difference = t_estimate([np.mean(v) for v in by_group.values()])
    return DropoutComparison(difference=difference, n_pairs=len(keys), grouped_by=grouped_by,
                             standard_mean=float(standard.mean()), guided_mean=float(guided.mean()),
                             n_models=len(models), n_targets=len(targets))


def label_savings(scores: Iterable[Score], labels: Mapping[str, str]) -> pd.DataFrame | None:
    """One row per (candidate, target) with ``labels_saved`` (the latest stored), best first; None when none."""
    latest = {(s.repo_id, s.target): s for s in scores if s.metric == "labels_saved"}
    if not latest:
        return None
    extras = ["reference_accuracy", "base_labels", "candidate_labels"]
    frame = pd.DataFrame([{"source": labels.get(s.repo_id, s.repo_id), "repo_id": s.repo_id, "target": s.target,
                           "labels_saved": s.value, **_saved_fields(payload_of(s))} for s in latest.values()])
    frame[extras] = frame[extras].astype(np.float64)
    return frame.sort_values(["labels_saved", "repo_id", "target"], ascending=[False, True, True],
                             kind="mergesort").reset_index(drop=True)


def _saved_fields(saved: LabelsSaved) -> dict:
    """The payload's numbers, and the bound (">" or "<") when the candidate's curve left the measured range."""
    bound = {"below": ">", "above": "<"}.get(getattr(saved, "out_of_range", ""), "")
    return {"bound": bound, **{key: _nan_if_none(getattr(saved, key))
                               for key in ("reference_accuracy", "base_labels", "candidate_labels")}}


def _nan_if_none(value: float | None) -> float:
    return math.nan if value is None else float(value)


def _correlation(c: Correlation) -> Correlation | None:
    return c if c.n >= 3 else None


def study_report(board: Leaderboard, data, *, meta: Mapping | None = None, exclude_diagonal: bool = True,
                 n_permutations: int = 1000, seed: int = 0, published: Leaderboard | None = None) -> StudyReport:
    """Every number of the study on ``board`` (its project leaderboard); ``data``: a ``service.boards.StudyData``
    (the base's project scores and crawled candidates, read by the caller); ``meta``: the snapshot's meta when
    the study's snapshot is the one read (its design, source checks and checkpoints), else None; ``published``:
    IBM's 2023 board of ``ranking.validity.PUBLISHED_BASELINE_BASE`` (read by the caller), whose probe-vs-gain τ
    the validity section prints as the published baseline (None: "not computed here")."""
    labels = source_labels(c for c in data.candidates if c.status is CandidateStatus.OK)
    ranked = board.rows[_column(board.rows, "mean_gain").notna()]
    rows = study_rows(board.rows, labels)
    matrix = gain_matrix(rows)
    project = [s for s in data.scores if s.source == PROJECT_SOURCE and s.base_id == board.base_id]
    intertraining = [s for s in project if s.scorer == INTERTRAINING]
    chosen = board.config_hashes.get(INTERTRAINING, "")
    modes = {c[0] for s in intertraining if s.config_hash == chosen and (c := _finetune_config(s))}
    protocol = f"{chosen[:8]} (dropout {', '.join(sorted(modes)) or 'unknown'})" if chosen else "none"
    gain, fe = _column(ranked, "mean_gain"), _column(ranked, "free_energy")
    targets = target_protocols(intertraining, board.base_id, chosen)
    typed = read_meta(meta)
    design = study_design(intertraining, board.base_id, chosen, targets, tuple(board.suite), typed)
    rates = ({t.target: t.lr for t in targets if t.lr is not None} if targets
             else dict.fromkeys(design.kept if design else ()))
    return StudyReport(
        base_id=board.base_id, protocol=protocol, n_ranked=len(ranked),
        n_beat_base=int(_column(ranked, "beats_base").eq(True).sum()), n_positive=int((gain > 0).sum()),
        n_tagged=int(rows["repo_id"].isin(labels.keys()).sum()), gain_matrix=matrix,
        sources=source_table(rows, include_seen=board.include_seen),
        additive=fit_additive(matrix, exclude_diagonal=exclude_diagonal, n_permutations=n_permutations, seed=seed,
                              replicates=seed_gains(intertraining, labels, board.base_id, chosen)),
        probe=_correlation(spearman_with_ci(_column(ranked, "probe_accuracy"), gain)),
        free_energy_spearman=_correlation(spearman_with_ci(fe, gain)),
        free_energy_pearson=_correlation(pearson_with_ci(fe, gain)),
        dropout=dropout_comparison(intertraining),
        label_savings=label_savings([s for s in project if s.scorer == SAMPLE_EFFICIENCY], labels),
        exclude_diagonal=exclude_diagonal, targets=targets,
        runs=run_counts(intertraining, board.base_id, chosen),
        validity=study_validity(board, project, published), include_seen=board.include_seen, design=design,
        power=study_power(intertraining, board.base_id, chosen, rates), meta=typed,
        seed_effect=seed_effect(intertraining, board.base_id, chosen),
        contamination=contamination(typed))


def study_validity(board: Leaderboard, scores: list[Score], published: Leaderboard | None = None) -> Validity | None:
    """The validity table over the ranked candidates and the base (gain 0), kNN over the suite's targets; the free
    energy's reliability over its replicates (the same models); the published baseline when ``published`` is given."""
    gains = board_gains(board)
    if not gains:
        return None
    return replace(validity(predictor_frame(scores, gains, targets=board.suite)),
                   reliability=reliability(scores, models=gains),
                   published=published_baseline(published) if published is not None else None)


def seed_gains(scores: Iterable[Score], labels: Mapping[str, str], base_id: str, config_hash: str
               ) -> dict[tuple[str, str], np.ndarray]:
    """Each (source, target) cell's paired gains per seed (points): candidate run − the base's run on the same
    seed, ok runs of the ranked protocol only (the replicates the additivity test compares against)."""
    runs = [s for s in scores if s.metric == TARGET_METRIC and s.config_hash == config_hash and s.status == "ok"]
    base = {(s.target, s.seed): s.value for s in runs if s.repo_id == base_id}
    cells: dict[tuple[str, str], list[float]] = {}
    for s in runs:
        if s.repo_id != base_id and s.repo_id in labels and (s.target, s.seed) in base:
            cells.setdefault((labels[s.repo_id], s.target), []).append(100 * (s.value - base[(s.target, s.seed)]))
    return {k: np.array(v) for k, v in cells.items()}


def _column(frame: pd.DataFrame, key: str) -> pd.Series:
    return frame[key] if key in frame else pd.Series(np.nan, index=frame.index)
