"""The study report as Markdown (the README block, the app's Insights tab): one-line findings, then the validity,
per-source, matrix and labels-saved tables. Pure text from a ``ranking.study_report.StudyReport``."""

from __future__ import annotations

import html
import math

import numpy as np
import pandas as pd

from ranking.additivity import FTest
from ranking.stats import Correlation
from ranking.study_report import AdditiveFit, Estimate, StudyReport, diagonal_mask
from ranking.study_runs import TargetProtocol
from ranking.validity import validity_markdown

NOT_MEASURED = "not measured"


def render_markdown(report: StudyReport, *, matrix: bool = True) -> str:
    """A compact Markdown section: one-line findings, then the per-source, matrix and labels-saved tables."""
    fit, d, saved = report.additive, report.dropout, report.label_savings
    others = "the other targets" if report.exclude_diagonal else "all targets"
    best = report.sources.dropna(subset=["mean"]).head(1)
    out = [f"### Source × target study: {_md(report.base_id)}", ""]
    out.append(f"Paired gains in points (score ×100: a candidate's run minus the base's run on the same seed, "
               f"averaged over seeds); intertraining protocol "
               f"{_md(report.protocol)}. Intervals are 95%: Student t for means, percentile bootstrap over models "
               f"for correlations.\n")
    out.append(f"- **Beat the base beyond seed noise:** {report.n_beat_base} of {report.n_ranked} candidates "
               f"(interval of the mean gain above 0); mean gain > 0: {report.n_positive} of {report.n_ranked}.")
    out += _protocol_lines(report)
    out.append("- **Best source:** " + (f"{_md(best['source'].iloc[0])}, {_pts_ci(_estimate_of(best.iloc[0]))} "
                                        f"over {others} (t-interval over targets)." if len(best) else
                                        f"{NOT_MEASURED}."))
    out.append("- **Additive model** gain[s,t] ≈ μ + a_s + b_t" + (
        f": {NOT_MEASURED} (no more cells than parameters)." if fit is None else
        f", least squares on {fit.n_cells} cells ({fit.n_diagonal} diagonal cells, source = target, "
        f"{'excluded' if fit.diagonal_excluded else 'included'}; {fit.n_params} parameters): R² {_fixed(fit.r2)}, "
        f"RMSE {_fixed(fit.rmse)} pts on {fit.n_cells - fit.n_params} residual degrees of freedom. Shuffled gains "
        f"({fit.n_permutations} permutations, seed {fit.seed}; this null, every cell exchangeable, only tests that "
        f"source and target effects exist): mean R² {_fixed(fit.shuffled_r2)}, mean RMSE "
        f"{_fixed(fit.shuffled_rmse)} pts; permutation p = {_fixed(fit.p_value, 3)} for an RMSE this low."))
    if fit is not None:
        out += _additivity_lines(fit)
    out.append("- **Guided − standard dropout** (paired runs: same model, target and seed): " + (
        f"{_pts_ci(d.difference)} over {d.n_pairs} pairs ({d.n_models} models, {d.n_targets} targets; t-interval "
        f"over the {d.difference.n} {d.grouped_by}s' mean differences, as pairs sharing a {d.grouped_by} are not "
        f"independent); standard {_fixed(d.standard_mean)}, guided {_fixed(d.guided_mean)}."
        if d else f"{NOT_MEASURED}."))
    out.append("- **Labels saved (sample efficiency):** " + (
        f"{len(saved)} (candidate, target) measurement{'s' if len(saved) != 1 else ''}, table below."
        if saved is not None else f"{NOT_MEASURED}."))
    if report.validity is not None:
        out += ["", "**Does a cheap score predict the gain?**", "", *validity_markdown(report.validity)]
    if len(report.sources):
        effects = fit.source_effects if fit is not None else pd.Series(dtype=float)
        out += ["", f"| source | model | mean gain over {others} | targets | a_s | beats base |", "|---" * 6 + "|"]
        for _, row in report.sources.iterrows():
            mean = _pts_ci(_estimate_of(row)) if np.isfinite(row["mean"]) else "incomplete"
            beats = "yes" if isinstance(row["beats_base"], bool | np.bool_) and row["beats_base"] else "no"
            out.append(f"| {_md(row['source'])} | {_md(row['repo_id'])} | {mean} | {int(row['n_targets'])} | "
                       f"{_signed(effects.get(row['source'], math.nan))} | {beats} |")
    if fit is not None:
        order = fit.target_effects.sort_values(ascending=False, kind="mergesort")
        out += ["", "Target effects b_t (pts): " + ", ".join(f"{_md(t)} {_signed(v)}" for t, v in order.items())
                + f"; μ = {_signed(fit.mu)}."]
    if matrix and not report.gain_matrix.empty:
        m, diag = report.gain_matrix, diagonal_mask(report.gain_matrix)
        out += ["", "Gain matrix (pts; rows: source, columns: target; source = target in parentheses):", "",
                "| source | " + " | ".join(_md(t) for t in m.columns) + " |", "|---" * (len(m.columns) + 1) + "|"]
        out += [f"| {_md(source)} | " + " | ".join(f"({_signed(v)})" if diag[i, j] else _signed(v)
                                                 for j, v in enumerate(m.iloc[i])) + " |"
                for i, source in enumerate(m.index)]
    if saved is not None:
        header = ("source", "model", "target", "labels saved", "reference accuracy (%)", "base labels",
                  "candidate labels")
        out += ["", "| " + " | ".join(header) + " |", "|---" * 7 + "|"]
        out += [f"| {_md(r['source'])} | {_md(r['repo_id'])} | {_md(r['target'])} | "
                f"{r['bound'] + ' ' if r['bound'] else ''}{_signed(r['labels_saved'], 0)} | "
                f"{_fixed(100 * r['reference_accuracy'])} | {_fixed(r['base_labels'], 0)} | "
                f"{_fixed(r['candidate_labels'], 0)} |" for _, r in saved.iterrows()]
    return "\n".join(out) + "\n"


def _protocol_lines(report: StudyReport) -> list[str]:
    """The lr chosen (or the drop) per target, and the failed-run counts."""
    out = []
    if report.targets:
        grid = ", ".join(f"{lr:g}" for lr in report.targets[0].lrs)
        out.append(f"- **Learning rate per target** (the base swept over {grid}; scoring/lr_sweep.py): "
                   + "; ".join(_target_line(t) for t in report.targets) + ".")
    if report.runs is not None:
        r = report.runs
        why = ", ".join(f"{_md(name)} {n}" for name, n in r.reasons)
        out.append(f"- **Failed runs** (stored with their reasons, rerun with the next seed, never in a mean): "
                   f"base {r.base_failed} of {r.base_runs}, candidates {r.candidate_failed} of {r.candidate_runs}"
                   + (f" ({why})" if why else "") + ".")
    return out


def _target_line(t: TargetProtocol) -> str:
    if t.lr is None:
        return f"{_md(t.target)} dropped — {_md(t.reason)}"
    if t.majority_rate is None:
        return f"{_md(t.target)} lr {t.lr:g}, base {_fixed(t.base_mean, 3)}"
    return f"{_md(t.target)} lr {t.lr:g}, base {_pct(t.base_mean)} % vs majority class {_pct(t.majority_rate)} %"


def _pct(value) -> str:
    return _fixed(100 * value if _finite(value) else value, 1)


def _estimate_of(row: pd.Series) -> Estimate:
    return Estimate(float(row["mean"]), float(row["low"]), float(row["high"]), int(row["n_targets"]))


def _finite(value) -> bool:
    return isinstance(value, int | float | np.integer | np.floating) and math.isfinite(value)


def _fixed(value, digits: int = 2) -> str:
    """1.23 / −0.40 (a real minus sign, never −0.00); – when missing."""
    if not _finite(value):
        return "–"
    text = f"{float(value):.{digits}f}"
    return text.lstrip("-").replace("-", "−") if float(text) == 0 else text.replace("-", "−")


def _signed(value, digits: int = 2) -> str:
    """+1.23 / −0.40 / +0.00; – when missing."""
    text = _fixed(value, digits)
    return text if text.startswith(("−", "–")) else f"+{text}"


def _pts_ci(e: Estimate) -> str:
    """+1.23 pts (95% CI −0.40 to +2.90); without an interval when it is undefined (one value)."""
    if not (_finite(e.low) and _finite(e.high)):
        return f"{_signed(e.mean)} pts (n = {e.n}, no interval)"
    return f"{_signed(e.mean)} pts (95% CI {_signed(e.low)} to {_signed(e.high)})"


def _corr(c: Correlation | None) -> str:
    if c is None:
        return NOT_MEASURED
    name = "Spearman ρ" if c.method == "spearman" else "Pearson r"
    if not _finite(c.rho):
        return f"{name} undefined (a constant score, n = {c.n})"
    interval = f"95% CI {_signed(c.low)} to {_signed(c.high)}, " if _finite(c.low) and _finite(c.high) else ""
    return f"{name} = {_signed(c.rho)} ({interval}n = {c.n})"


def _md(text) -> str:
    """Hub strings shown as text in Markdown: HTML escaped, table pipes and emphasis stars neutralised."""
    return html.escape(str(text), quote=False).replace("|", "\\|").replace("*", "\\*")


def _additivity_lines(fit: AdditiveFit) -> list[str]:
    """Is the matrix additive: Tukey's test, the test against seed noise, and the per-target-scale model."""
    def test(t: FTest | None, missing: str) -> str:
        if t is None:
            return missing
        p = "p < 0.001" if t.p_value < 0.001 else f"p = {_fixed(t.p_value, 3)}"
        return f"F({t.df1:g}, {t.df2:g}) = {_fixed(t.f)}, {p}"

    scale = fit.scale
    return [
        "- **Non-additivity:** Tukey's one-degree-of-freedom test "
        + test(fit.tukey, f"{NOT_MEASURED} (no residual degrees of freedom)") + "; against the seeds' own noise "
        + test(fit.replicates, f"{NOT_MEASURED} (needs 2 or more candidate seeds per cell)") + ".",
        "- **Per-target scale** gain[s,t] ≈ μ_t + λ_t·a_s" + (
            f": {NOT_MEASURED} (no more cells than parameters)." if scale is None else
            f", least squares on {scale.n_cells} cells ({scale.n_params} parameters): R² {_fixed(scale.r2)}, "
            f"RMSE {_fixed(scale.rmse)} pts on {scale.n_cells - scale.n_params} residual degrees of freedom."),
    ]
