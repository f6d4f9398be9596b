"""Does a cheap score predict the intertraining gain? Spearman (bootstrap 95% CI) of the mean gain with each
predictor, over the models having both, whatever the sign: free energy F, its two terms L_n(w*) and λ̂, the
linear probe, kNN accuracy and LogME on frozen features.

Pure functions over stored ``Score`` records and a gain per model; no torch, no gradio. The base is a model
with gain 0 (its gain over itself, exactly). Free-energy estimates that failed the convergence gate are *used*
here, and counted: the table asks what the numbers would say, the leaderboard never ranks them.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from data.escape import table_text
from data.records import Score
from ranking.stats import Correlation, spearman_with_ci

# (metric, label, expected sign of its Spearman with the gain when it predicts well)
PREDICTORS = (
    ("free_energy", "free energy F", -1),
    ("init_loss", "L_n(w*) alone", -1),
    ("llc_mean", "λ̂ alone", -1),
    ("probe_accuracy", "linear probe (its stage-1 target)", +1),
    ("knn_accuracy", "kNN accuracy (targets' data, frozen features)", +1),
    ("logme_target", "LogME (targets' data, frozen features)", +1),
)
FREE_ENERGY = "free_energy"
PREDICTOR_METRICS = frozenset(m for m, _, _ in PREDICTORS)
PER_TARGET = frozenset({"knn_accuracy", "logme_target"})  # averaged over the kept targets only


@dataclass(frozen=True, slots=True)
class PredictorRow:
    metric: str
    label: str
    expected_sign: int
    spearman: Correlation


@dataclass(frozen=True, slots=True, eq=False)
class Validity:
    rows: tuple[PredictorRow, ...]
    n_models: int  # models with a gain
    fe_passed: int  # free-energy estimates that passed the convergence gate, of ...
    fe_total: int
    n_log_n: float  # log n of the free energy's corpus split (NaN when unknown)
    lambda_term: tuple[float, float]  # range of λ̂·log n over the models (nats)
    loss_term: tuple[float, float]  # range of n·L_n(w*)
    f_vs_loss: Correlation | None  # Spearman of F with L_n(w*) alone: how much λ̂ reorders
    frame: pd.DataFrame | None = None  # the predictor_frame the table was computed from (one row per model)


def predictor_frame(scores: Iterable[Score], gains: Mapping[str, float], *, targets: Iterable[str] | None = None
                    ) -> pd.DataFrame:
    """One row per model of ``gains`` (repo id -> mean gain, points): the gain, each predictor's value (the mean
    over targets for per-target metrics, restricted to ``targets`` when given), the free energy's gate status and
    its n. Scores of models outside ``gains`` are ignored; any status is kept, and ``fe_ok`` says which passed."""
    keep = set(targets) if targets is not None else None
    values: dict[tuple[str, str], list[float]] = {}
    fe_ok: dict[str, bool] = {}
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
            fe_ok[s.repo_id] = fe_ok.get(s.repo_id, True) and s.status == "ok"
            fe_n[s.repo_id] = _n_of(s)
    repos = sorted(gains)
    frame = pd.DataFrame({"repo_id": repos, "mean_gain": [gains[r] for r in repos]})
    for metric, _, _ in PREDICTORS:
        frame[metric] = [float(np.mean(values[(r, metric)])) if (r, metric) in values else math.nan for r in repos]
    frame["fe_ok"] = [fe_ok.get(r) for r in repos]
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
    rows = tuple(PredictorRow(m, label, sign, spearman_with_ci(frame[m], gain, n_boot=n_boot, seed=seed))
                 for m, label, sign in PREDICTORS)
    has_fe = frame[FREE_ENERGY].notna()
    n = frame.loc[has_fe, "fe_n"]
    log_n = float(np.log(n.iloc[0])) if len(n) and n.nunique() == 1 and np.isfinite(n.iloc[0]) else math.nan
    lam = frame.loc[has_fe, "llc_mean"] * log_n
    loss = frame.loc[has_fe, "init_loss"] * (math.exp(log_n) if math.isfinite(log_n) else math.nan)
    f_vs_loss = spearman_with_ci(frame[FREE_ENERGY], frame["init_loss"], n_boot=n_boot, seed=seed)
    passed = int(frame.loc[has_fe, "fe_ok"].eq(True).sum())
    return Validity(rows=rows, n_models=int(gain.notna().sum()), fe_passed=passed, fe_total=int(has_fe.sum()),
                    n_log_n=log_n, lambda_term=_range(lam), loss_term=_range(loss),
                    f_vs_loss=f_vs_loss if f_vs_loss.n >= 3 else None, frame=frame)


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
    """The table and the two sentences under it (Markdown; labels are the project's own, no Hub text)."""
    fe = (f"{v.fe_passed} of {v.fe_total} free-energy estimates passed the convergence gate"
          + ("; the unconverged ones are used here to ask what they would say, and are never ranked." if
             v.fe_passed < v.fe_total else "."))
    out = [f"Spearman ρ of each predictor with the mean gain over {v.n_models} models (the base at gain 0), "
           "95% percentile-bootstrap interval over models (2,000 resamples, seed 0). " + fe, "",
           "| predictor | Spearman ρ with mean gain | 95% CI | models | sign if it predicts |", "|---" * 5 + "|"]
    for r in v.rows:
        c = r.spearman
        rho = _signed(c.rho) if math.isfinite(c.rho) else "not measured"
        ci = f"{_signed(c.low)} … {_signed(c.high)}" if math.isfinite(c.low) and math.isfinite(c.rho) else "—"
        out.append(f"| {r.label} | {rho} | {ci} | {c.n} | {'+' if r.expected_sign > 0 else '−'} |")
    return [*out, "", lambda_verdict(v), *_model_table(v.frame)]


def _model_table(frame: pd.DataFrame | None) -> list[str]:
    """Every model's predictors beside its mean gain: the numbers the correlations above were computed from."""
    if frame is None or frame.empty:
        return []
    out = ["", "| model | mean gain (pts) | probe (%) | kNN (%) | LogME | L_n(w*) | λ̂ | F | free energy gate |",
           "|---" * 9 + "|"]
    for _, r in frame.sort_values(["mean_gain", "repo_id"], ascending=[False, True], kind="mergesort").iterrows():
        gate = "—" if r["fe_ok"] is None or not np.isfinite(r[FREE_ENERGY]) else (
            "passed" if r["fe_ok"] else "failed")
        out.append(f"| {table_text(r['repo_id'])} | {_signed(r['mean_gain'])} | {_num(100 * r['probe_accuracy'], 1)} | "
                   f"{_num(100 * r['knn_accuracy'], 1)} | {_num(r['logme_target'], 3)} | {_num(r['init_loss'], 3)} | "
                   f"{_num(r['llc_mean'], 2)} | {_num(r[FREE_ENERGY], 1)} | {gate} |")
    return out


def _num(value: float, digits: int) -> str:
    return f"{value:.{digits}f}".replace("-", "−") if math.isfinite(value) else "—"
