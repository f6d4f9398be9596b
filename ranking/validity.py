"""Does a cheap score predict the intertraining gain? Over the study's models (about 11: the candidates and the
base at gain 0), each predictor's Spearman ρ with the mean gain, its exact two-sided permutation p-value, and a
95% percentile-bootstrap interval over models: free energy F, its two terms L_n(w*) and λ̂, λ̂'s partial Spearman
given L_n(w*), the weight distance ‖w − w_base‖, the linear probe, kNN accuracy and LogME on frozen features.

One primary predictor, named here before the run (``PRIMARY``): F, expected sign −1 (a lower F, a better start).
Every other predictor is compared with it: its sign-aligned ρ (ρ × its expected sign) minus F's, with a paired
bootstrap interval (the same resampled models for both, over the models having both).

Pure functions over stored ``Score`` records and a gain per model; no torch, no gradio. Predictors the
free-energy scorer measures in replicates (``Score.seed``) are averaged over them per model first. Free-energy
estimates that failed the convergence gate are *used* here, and counted: the table asks what the numbers would
say, the leaderboard never ranks them. The published baseline (``published_baseline``): on IBM's 2023 board of
``PUBLISHED_BASELINE_BASE``, Kendall's τ-b of the linear probe with the mean gain over its targets.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from data.escape import table_text
from data.metrics import METRICS
from data.records import Score
from ranking.reliability import Reliability, reliability_markdown
from ranking.stats import (
    Correlation,
    Difference,
    PValue,
    Statistic,
    bootstrap,
    kendall_tau_b,
    paired_difference,
    partial_spearman_p,
    partial_spearman_statistic,
    percentile_interval,
    point,
    spearman_p,
    spearman_statistic,
    spearman_with_ci,
)

# (metric, the table's label), in the table's order. The sign its Spearman with the gain should have when it
# predicts well is its declared direction (data/metrics.py): +1 where higher is better, −1 where lower is (a
# weight distance's was declared before it was measured: farther from the base, more of the pretrained features
# overwritten)
PREDICTORS = (
    ("free_energy", "free energy F"),
    ("init_loss", "L_n(w*) alone"),
    ("llc_mean", "λ̂ alone"),
    ("weight_distance", "weight distance ‖w − w_base‖"),
    ("probe_accuracy", "linear probe (its stage-1 target)"),
    ("knn_accuracy", "kNN accuracy (targets' data, frozen features)"),
    ("logme_target", "LogME (targets' data, frozen features)"),
)
PRIMARY = "free_energy"  # the one predictor the study tests; named before the run (issue 30)
FREE_ENERGY = "free_energy"
PARTIAL = ("llc_mean", "init_loss")  # λ̂ given L_n(w*): does λ̂ add anything to the loss?
PARTIAL_METRIC = "llc_mean|init_loss"
PARTIAL_LABEL = "λ̂ given L_n(w*) (partial Spearman)"
PREDICTOR_METRICS = frozenset(m for m, _ in PREDICTORS)
SIGNS = {m: 1 if METRICS[m].higher_is_better else -1 for m in PREDICTOR_METRICS}
PER_TARGET = frozenset({"knn_accuracy", "logme_target"})  # averaged over the kept targets only
REPLICATED = frozenset({"free_energy", "init_loss", "llc_mean", "weight_distance"})  # free-energy scorer, per seed
PUBLISHED_BASELINE_BASE = "FacebookAI/roberta-base"  # the 2023 board whose probe-vs-gain τ is the baseline
PUBLISHED_BASELINE_PREDICTOR = "probe_accuracy"


@dataclass(frozen=True, slots=True)
class PredictorRow:
    metric: str
    label: str
    expected_sign: int
    spearman: Correlation
    p: PValue | None = None  # two-sided permutation p-value of ρ (partial: of the partial ρ)
    versus_primary: Difference | None = None  # sign-aligned ρ minus the primary's, paired bootstrap; None: primary


@dataclass(frozen=True, slots=True)
class PublishedBaseline:
    """Kendall's τ-b of a predictor with the mean gain over a 2023 board's models having both."""

    base_id: str
    predictor: str
    tau: float
    n: int
    n_targets: int


@dataclass(frozen=True, slots=True, eq=False)
class Validity:
    rows: tuple[PredictorRow, ...]
    n_models: int  # models with a gain
    fe_passed: int  # free-energy estimates (replicates included) that passed the convergence gate, of ...
    fe_total: int
    n_log_n: float  # log n of the free energy's corpus split (NaN when unknown)
    lambda_term: tuple[float, float]  # range of λ̂·log n over the models (nats)
    loss_term: tuple[float, float]  # range of n·L_n(w*)
    f_vs_loss: Correlation | None  # Spearman of F with L_n(w*) alone: how much λ̂ reorders
    frame: pd.DataFrame | None = None  # the predictor_frame the table was computed from (one row per model)
    primary: str = PRIMARY
    fe_replicates: int = 0  # the most free-energy replicates of any model (0: none)
    n_boot: int = 2000
    seed: int = 0
    reliability: Reliability | None = None  # the free energy's replicates (ranking/reliability.py); None: not given
    published: PublishedBaseline | None = None  # None: the 2023 board was not given


def predictor_frame(scores: Iterable[Score], gains: Mapping[str, float], *, targets: Iterable[str] | None = None
                    ) -> pd.DataFrame:
    """One row per model of ``gains`` (repo id -> mean gain, points): the gain, each predictor's value (the mean
    over targets for per-target metrics, restricted to ``targets`` when given; the mean over replicates for the
    free-energy scorer's), the free energy's gate status (``fe_ok``: every replicate passed; ``fe_runs``,
    ``fe_passed_runs``) and its n. Scores of models outside ``gains`` are ignored; ok and unconverged are kept."""
    keep = set(targets) if targets is not None else None
    values: dict[tuple[str, str], list[float]] = {}
    runs: dict[str, list[bool]] = {}
    fe_n: dict[str, float] = {}
    for s in scores:
        if s.repo_id not in gains or s.metric not in PREDICTOR_METRICS:
            continue
        if s.metric in PER_TARGET and keep is not None and s.target not in keep:
            continue
        if s.status not in ("ok", "unconverged"):
            continue
        values.setdefault((s.repo_id, s.metric), []).append(s.value)
        if s.metric == FREE_ENERGY:
            runs.setdefault(s.repo_id, []).append(s.status == "ok")
            fe_n[s.repo_id] = _n_of(s)
    repos = sorted(gains)
    frame = pd.DataFrame({"repo_id": repos, "mean_gain": [gains[r] for r in repos]})
    for metric, _ in PREDICTORS:
        frame[metric] = [float(np.mean(values[(r, metric)])) if (r, metric) in values else math.nan for r in repos]
    frame["fe_ok"] = [all(runs[r]) if r in runs else None for r in repos]
    frame["fe_runs"] = [len(runs.get(r, ())) for r in repos]
    frame["fe_passed_runs"] = [sum(runs.get(r, ())) for r in repos]
    frame["fe_n"] = [fe_n.get(r, math.nan) for r in repos]
    return frame


def board_gains(board) -> dict[str, float]:
    """Mean gain in points of every candidate of ``board`` (a ranking.leaderboard.Leaderboard) that has one, and
    the base at 0; empty when no candidate has a mean gain."""
    rows = board.rows
    if "mean_gain" not in rows or not rows["mean_gain"].notna().any():
        return {}
    ranked = rows[rows["mean_gain"].notna()]
    return {board.base_id: 0.0, **{r: 100 * g for r, g in zip(ranked["repo_id"], ranked["mean_gain"], strict=True)}}


def _n_of(score: Score) -> float:
    from data.payloads import PayloadError, payload_of

    try:
        return float(getattr(payload_of(score), "n", None) or math.nan)
    except PayloadError:
        return math.nan


def validity(frame: pd.DataFrame, *, n_boot: int = 2000, seed: int = 0) -> Validity:
    """The table over ``predictor_frame``'s rows, and the two terms of F side by side."""
    gain = frame["mean_gain"]
    rows = [_predictor_row(frame, metric, label, SIGNS[metric], n_boot=n_boot, seed=seed)
            for metric, label in PREDICTORS]
    rows.insert(3, _partial_row(frame, n_boot=n_boot, seed=seed))
    has_fe = frame[FREE_ENERGY].notna()
    n = frame.loc[has_fe, "fe_n"]
    log_n = float(np.log(n.iloc[0])) if len(n) and n.nunique() == 1 and np.isfinite(n.iloc[0]) else math.nan
    lam = frame.loc[has_fe, "llc_mean"] * log_n
    loss = frame.loc[has_fe, "init_loss"] * (math.exp(log_n) if math.isfinite(log_n) else math.nan)
    f_vs_loss = spearman_with_ci(frame[FREE_ENERGY], frame["init_loss"], n_boot=n_boot, seed=seed)
    passed, total = _gate_counts(frame.loc[has_fe])
    return Validity(rows=tuple(rows), n_models=int(gain.notna().sum()), fe_passed=passed, fe_total=total,
                    n_log_n=log_n, lambda_term=_range(lam), loss_term=_range(loss),
                    f_vs_loss=f_vs_loss if f_vs_loss.n >= 3 else None, frame=frame,
                    fe_replicates=int(np.nan_to_num(_values(frame, "fe_runs")).max(initial=0)), n_boot=n_boot,
                    seed=seed)


def _gate_counts(frame: pd.DataFrame) -> tuple[int, int]:
    """(passed, all) free-energy estimates over the rows, replicates included (one per row for older frames)."""
    if "fe_runs" in frame:
        return int(frame["fe_passed_runs"].sum()), int(frame["fe_runs"].sum())
    return int(frame["fe_ok"].eq(True).sum()), len(frame)


def _predictor_row(frame: pd.DataFrame, metric: str, label: str, sign: int, *, n_boot: int, seed: int
                   ) -> PredictorRow:
    x, gain = _column(frame, metric), frame["mean_gain"]
    versus = None if metric == PRIMARY else _versus_primary(
        frame, [metric], lambda f: spearman_statistic(_values(f, metric), _values(f, "mean_gain")), sign,
        n_boot=n_boot, seed=seed)
    return PredictorRow(metric, label, sign, spearman_with_ci(x, gain, n_boot=n_boot, seed=seed),
                        p=spearman_p(x, gain, seed=seed), versus_primary=versus)


def _partial_row(frame: pd.DataFrame, *, n_boot: int, seed: int) -> PredictorRow:
    """λ̂'s partial Spearman with the gain given L_n(w*): both sides' ranks residualised on L_n(w*)'s."""
    lam, loss = PARTIAL
    sign = SIGNS[lam]

    def stat(f: pd.DataFrame) -> Statistic:
        return partial_spearman_statistic(_values(f, lam), _values(f, "mean_gain"), _values(f, loss))

    complete = _complete(frame, [lam, loss])
    n = len(complete)
    rho = point(stat(complete), n) if n >= 4 else math.nan
    low, high = percentile_interval(bootstrap(stat(complete), n, n_boot=n_boot, seed=seed)) if n >= 4 else (
        math.nan, math.nan)
    correlation = Correlation(rho, low, high, n, "partial spearman")
    p = partial_spearman_p(_column(frame, lam), frame["mean_gain"], _column(frame, loss), seed=seed)
    versus = _versus_primary(frame, [lam, loss], stat, sign, n_boot=n_boot, seed=seed)
    return PredictorRow(PARTIAL_METRIC, PARTIAL_LABEL, sign, correlation, p=p, versus_primary=versus)


def _versus_primary(frame: pd.DataFrame, metrics: list[str], stat_of, sign: int, *, n_boot: int, seed: int
                    ) -> Difference:
    """sign·stat − primary_sign·ρ(primary, gain) over the models having the gain, the primary and ``metrics``,
    from the same resampled models for both."""
    primary_sign = SIGNS[PRIMARY]
    complete = _complete(frame, [PRIMARY, *metrics])
    base = spearman_statistic(_values(complete, PRIMARY), _values(complete, "mean_gain"))
    other = stat_of(complete)
    return paired_difference(_times(base, primary_sign), _times(other, sign), len(complete), n_boot=n_boot,
                             seed=seed)


def _times(stat: Statistic, sign: int) -> Statistic:
    return lambda counts: sign * stat(counts)


def _complete(frame: pd.DataFrame, metrics: list[str]) -> pd.DataFrame:
    """The rows where the gain and every one of ``metrics`` are finite."""
    keep = np.isfinite(_values(frame, "mean_gain"))
    for metric in metrics:
        keep &= np.isfinite(_values(frame, metric))
    return frame[keep]


def _column(frame: pd.DataFrame, key: str) -> pd.Series:
    return frame[key] if key in frame else pd.Series(np.nan, index=frame.index)


def _values(frame: pd.DataFrame, key: str) -> np.ndarray:
    return pd.to_numeric(_column(frame, key), errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)


def published_baseline(board, *, predictor: str = PUBLISHED_BASELINE_PREDICTOR) -> PublishedBaseline:
    """Kendall's τ-b of ``predictor`` with the mean gain over ``board``'s models having both (a
    ``ranking.leaderboard.Leaderboard``, e.g. IBM's 2023 board of ``PUBLISHED_BASELINE_BASE``, its mean gain over
    all its targets: complete rows only, the leaderboard's rule)."""
    tau, n = rank_agreement(board.rows, predictor)
    return PublishedBaseline(base_id=board.base_id, predictor=predictor, tau=tau, n=n, n_targets=len(board.suite))


def rank_agreement(rows: pd.DataFrame, predictor: str, against: str = "mean_gain") -> tuple[float, int]:
    """(Kendall's τ-b, pairs) of two columns of a board's rows over the rows having both."""
    return kendall_tau_b(_column(rows, predictor), _column(rows, against))


def _range(values: pd.Series) -> tuple[float, float]:
    finite = values[np.isfinite(values.to_numpy(dtype=np.float64, na_value=np.nan))]
    return (float(finite.min()), float(finite.max())) if len(finite) else (math.nan, math.nan)


def lambda_verdict(v: Validity) -> str:
    """One plain sentence: what λ̂ adds over L_n(w*) on these models."""
    if v.f_vs_loss is None or not all(map(math.isfinite, (*v.lambda_term, *v.loss_term))):
        return "What λ̂ adds over L_n(w*): not measured (fewer than 3 models with both)."
    lam_span, loss_span = v.lambda_term[1] - v.lambda_term[0], v.loss_term[1] - v.loss_term[0]
    by_name = {r.metric: r.spearman for r in v.rows}
    f, loss = by_name[FREE_ENERGY].rho, by_name["init_loss"].rho
    better = ("predicts the gain better than L_n(w*) alone" if abs(f) > abs(loss) + 1e-12 else
              "predicts the gain no better than L_n(w*) alone")
    return (f"What λ̂ adds over L_n(w*): across these models λ̂·log n spans {lam_span:.1f} nats against "
            f"{loss_span:.1f} for n·L_n(w*); Spearman of F with L_n(w*) alone is {_signed(v.f_vs_loss.rho)}, and F "
            f"(ρ {_signed(f)}) {better} (ρ {_signed(loss)}).")


def _signed(value: float) -> str:
    return f"{value:+.2f}".replace("-", "−")


def validity_markdown(v: Validity) -> list[str]:
    """The table, the sentences under it, the published baseline, the free energy's reliability and every model's
    numbers (Markdown; labels are the project's own, no Hub text)."""
    header = ("| predictor | Spearman ρ with mean gain | p (two-sided permutation) | 95% CI | models | "
              f"sign if it predicts | Δ sign-aligned ρ vs {_label(v.primary)} (95% paired CI) |")
    out = [_intro(v), "", header, "|---" * 7 + "|"]
    out += [_table_row(r, v.primary) for r in v.rows]
    notes = _p_notes(v.rows)
    return [*out, *([""] + notes if notes else []), "", lambda_verdict(v), "", published_line(v.published),
            *(["", *reliability_markdown(v.reliability)] if v.reliability is not None else []),
            *_model_table(v.frame)]


def _intro(v: Validity) -> str:
    fe = (f"{v.fe_passed} of {v.fe_total} free-energy estimates passed the convergence gate"
          + ("; the unconverged ones are used here to ask what they would say, and are never ranked." if
             v.fe_passed < v.fe_total else "."))
    sign = SIGNS[v.primary]
    replicates = (f"each model's mean over its replicates (up to {v.fe_replicates} here)" if v.fe_replicates > 1
                  else "one estimate per model here")
    return (f"Primary predictor, named before the run: {_label(v.primary)}, expected sign {_sign(sign)}"
            f"{' (a lower F, a better start)' if v.primary == FREE_ENERGY else ''}. Spearman ρ of each predictor with "
            f"the mean gain over {v.n_models} models (the base at gain 0); p: two-sided permutation p-value, exact "
            "(all n! orderings of the models counted; ties at average ranks, counted exactly) unless marked; 95% "
            f"percentile-bootstrap interval over models ({v.n_boot:,} resamples, seed {v.seed}); Δ: the predictor's "
            f"sign-aligned ρ (ρ × its expected sign: + when it predicts as expected) minus {_label(v.primary)}'s, "
            "its interval from the same resampled models for both (over the models having both). The free "
            f"energy, λ̂, L_n(w*) and the weight distance are {replicates}. " + fe)


def _table_row(r: PredictorRow, primary: str) -> str:
    c = r.spearman
    measured = math.isfinite(c.rho)
    rho = _signed(c.rho) if measured else "not measured"
    ci = f"{_signed(c.low)} … {_signed(c.high)}" if measured and math.isfinite(c.low) else "—"
    p = _p_text(r.p) if measured and r.p is not None else "—"
    versus = "primary (named before the run)" if r.metric == primary else _difference(r.versus_primary)
    return f"| {r.label} | {rho} | {p} | {ci} | {c.n} | {_sign(r.expected_sign)} | {versus} |"


_MARKS = {"monte carlo": " †", "residual permutation": " ‡"}


def _p_text(p: PValue) -> str:
    if not math.isfinite(p.value):
        return "—"
    text = f"{p.value:.2f}" if p.value >= 0.1 else f"{p.value:.2g}"
    return text + _MARKS.get(p.method, "")


def _p_notes(rows: Iterable[PredictorRow]) -> list[str]:
    """A line per kind of p-value that is not an exact count, saying how it was drawn."""
    methods = {r.p.method: r.p.n_permutations for r in rows if r.p is not None and r.p.method in _MARKS}
    notes = {"monte carlo": "† Monte Carlo: {n:,} seeded permutations, (1 + as extreme) / (1 + draws); the exact "
                            "count's table would be too large (too many models or ties).",
             "residual permutation": "‡ λ̂'s ranks residualised on L_n(w*)'s, permuted against the gain's "
                                     "residualised ranks: {n:,} seeded draws, (1 + as extreme) / (1 + draws)."}
    return [notes[m].format(n=n) for m, n in methods.items()]


def _difference(d: Difference | None) -> str:
    if d is None or not math.isfinite(d.delta):
        return "—"
    ci = f" ({_signed(d.low)} … {_signed(d.high)})" if math.isfinite(d.low) else ""
    return f"{_signed(d.delta)}{ci} over {d.n}"


def published_line(b: PublishedBaseline | None) -> str:
    """The 2023 board's probe-vs-gain τ, the baseline the study's table is read against."""
    head = (f"**Published baseline** (IBM's 2023 results, {table_text(b.base_id if b else PUBLISHED_BASELINE_BASE)}: "
            "Kendall τ-b of the MNLI linear probe with the mean gain over ")
    if b is None:
        return head + "its targets): not computed here (the 2023 board was not given to this report)."
    if not math.isfinite(b.tau):
        return head + f"its {b.n_targets} targets): not measured ({b.n} models with both)."
    return head + f"its {b.n_targets} targets): τ {_signed(b.tau)} over {b.n} models with both."


def _label(metric: str) -> str:
    return next(label for m, label in PREDICTORS if m == metric)


def _sign(sign: int) -> str:
    return "+" if sign > 0 else "−"


def _model_table(frame: pd.DataFrame | None) -> list[str]:
    """Every model's predictors beside its mean gain: the numbers the correlations above were computed from."""
    if frame is None or frame.empty:
        return []
    header = ("| model | mean gain (pts) | probe (%) | kNN (%) | LogME | L_n(w*) | λ̂ | F | ‖w − w_base‖ | "
              "free energy gate |")
    out = ["", header, "|---" * 10 + "|"]
    for _, r in frame.sort_values(["mean_gain", "repo_id"], ascending=[False, True], kind="mergesort").iterrows():
        out.append(f"| {table_text(r['repo_id'])} | {_signed(r['mean_gain'])} | {_num(100 * r['probe_accuracy'], 1)} | "
                   f"{_num(100 * r['knn_accuracy'], 1)} | {_num(r['logme_target'], 3)} | {_num(r['init_loss'], 3)} | "
                   f"{_num(r['llc_mean'], 2)} | {_num(r[FREE_ENERGY], 1)} | "
                   f"{_num(r.get('weight_distance', math.nan), 3)} | {_gate(r)} |")
    return out


def _gate(r: pd.Series) -> str:
    """passed / failed for one estimate; "k of m passed" for m replicates; — without any."""
    if r["fe_ok"] is None or not np.isfinite(r[FREE_ENERGY]):
        return "—"
    runs = int(r.get("fe_runs", 1))
    if runs <= 1:
        return "passed" if r["fe_ok"] else "failed"
    return f"{int(r['fe_passed_runs'])} of {runs} passed"


def _num(value: float, digits: int) -> str:
    return f"{value:.{digits}f}".replace("-", "−") if math.isfinite(value) else "—"
