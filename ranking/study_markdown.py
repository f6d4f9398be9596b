"""The study report as Markdown (the README block, the app's Insights tab): one-line findings, then the validity,
sources, per-source, matrix and labels-saved tables. Pure text from a ``ranking.study_report.StudyReport``: every
number here is a field of that one object, so the README and the app cannot disagree."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from data.escape import table_text
from ranking.additivity import MIN_RESIDUAL_DF, FTest, is_testable
from ranking.power import REFERENCE_SEEDS, Mde, PowerAnalysis, SeedEffect
from ranking.stats import Correlation
from ranking.study_report import (
    AdditiveFit,
    Contamination,
    Estimate,
    SourceCheck,
    StudyDesign,
    StudyReport,
    diagonal_mask,
)
from ranking.study_runs import RunCounts, TargetProtocol
from ranking.validity import validity_markdown

NOT_MEASURED = "not measured"
NOT_RECORDED = "not recorded in this snapshot"
SHA_PREFIX = 12  # hex digits of a checkpoint's sha256 shown


def render_markdown(report: StudyReport, *, matrix: bool = True) -> str:
    """A compact Markdown section: one-line findings, then the sources, per-source, matrix and labels-saved tables."""
    fit, d, saved = report.additive, report.dropout, report.label_savings
    others = "all targets" if report.include_seen else "the other targets"
    is_fit_shown = fit is not None and is_testable(fit.residual_df)
    best = report.sources.dropna(subset=["mean"]).head(1)
    out = [f"### Source × target study: {_md(report.base_id)}", ""]
    out.append(f"Paired gains in points (score ×100: a candidate's run minus the base's run on the same seed, "
               f"averaged over seeds); intertraining protocol {_md(report.protocol)}. Intervals are 95%: a "
               f"candidate's is the leaderboard's (Student t on its paired differences, pooled within targets: "
               f"ranking/gains.py), the dropout difference's a Student t over models, and a correlation's a "
               f"percentile bootstrap over models.\n")
    out.append(f"- **Beat the base beyond seed noise:** {report.n_beat_base} of {report.n_ranked} candidates "
               f"(interval of the mean gain above 0); mean gain > 0: {report.n_positive} of {report.n_ranked}.")
    out.append(_design_line(report.design))
    out += _protocol_lines(report)
    out += _power_lines(report.power)
    out.append(_seed_effect_line(report.seed_effect))
    out.append("- **Best source:** " + (f"{_md(best['source'].iloc[0])}, {_board_gain(best.iloc[0])} "
                                        f"over {others} (the leaderboard's interval)." if len(best) else
                                        f"{NOT_MEASURED}."))
    out.append(_sources_line(report))
    out.append(_contamination_line(report.contamination))
    out += _additive_lines(fit)
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
    if report.meta.source_checks:
        out += ["", *_source_check_table(report.meta.source_checks, report.design.kept if report.design else ())]
    if len(report.sources):
        effects = fit.source_effects if is_fit_shown else None
        header = ["source", "model", f"mean gain over {others}", "targets", *(["a_s"] if is_fit_shown else []),
                  "beats base"]
        out += ["", "| " + " | ".join(header) + " |", "|---" * len(header) + "|"]
        for _, row in report.sources.iterrows():
            mean = _board_gain(row) if np.isfinite(row["mean"]) else "incomplete"
            effect = [_signed(effects.get(row["source"], math.nan))] if effects is not None else []
            out.append("| " + " | ".join([_md(row["source"]), _md(row["repo_id"]), mean, str(int(row["n_targets"])),
                                          *effect, "yes" if row["beats_base"] else "no"]) + " |")
    if is_fit_shown:
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


def _design_line(design: StudyDesign | None) -> str:
    """How the targets were chosen (suite order, sweep, floor, cap) and how many seeds each cell has."""
    head = "- **Design:** "
    if design is None:
        return head + f"{NOT_MEASURED} (no ranked intertraining protocol)."
    if design.lrs:
        floor = (f"{_fixed(100 * design.min_base_margin, 0)} points" if design.min_base_margin is not None
                 else "a margin")
        how = (f"targets tried in the suite's order ({_names(design.suite)}); on each the base swept the learning "
               f"rates {', '.join(f'{lr:g}' for lr in design.lrs)} and the target was kept only if the base's mean "
               f"test score at the chosen rate is at least {floor} above the majority-class rate (the floor; a "
               f"Spearman target: at least {_fixed(design.min_base_margin)})")
        how += (f", until {design.max_targets} were kept" if design.max_targets is not None else
                ", with no cap on the number kept")
    else:
        how = f"no learning-rate sweep: every target of the suite {_md(design.suite_name)} is kept"
    groups = [f"kept {len(design.kept)} ({_names(design.kept)})"]
    if design.dropped:
        groups.append(f"dropped {len(design.dropped)} ({_names(design.dropped)})")
    if design.unswept:
        groups.append(f"not swept {len(design.unswept)} ({_names(design.unswept)})")
    c = design.config
    configured = (f"base {_count(c.base_seeds)}, candidates {_count(c.candidate_seeds)} per target"
                  if c is not None else NOT_RECORDED)
    stored = ", ".join(f"{_md(t)} {n}" for t, n in design.base_runs) or "none"
    cells = ("none" if design.candidate_runs is None else
             f"{design.candidate_runs[0]}" if design.candidate_runs[0] == design.candidate_runs[1] else
             f"{design.candidate_runs[0]} to {design.candidate_runs[1]}")
    checkpoint = (f" Base checkpoint sha256 {design.base_checkpoint[:SHA_PREFIX]}." if design.base_checkpoint else
                  f" Base checkpoint sha256: {NOT_RECORDED}.")
    return (head + how + "; " + "; ".join(groups) + f". Seeds configured: {configured}; ok runs stored: base "
            f"{stored}, candidates {cells} per (candidate, kept target)." + checkpoint)


def _power_lines(power: PowerAnalysis | None) -> list[str]:
    """The design MDE (from the base's run SD) and the MDE the study had (from the candidates' differences)."""
    if power is None:
        return [f"- **Power:** {NOT_MEASURED} (no kept target)."]
    level = (f"{power.power:.0%} power, two-sided α {power.alpha:g}, the pooled within-target interval: "
             f"MDE = (t₀.₉₇₅ + t₀.₈₀) · σ_d · √(Σ_t 1/n_t) / T, df = Σ_t (n_t − 1)")
    targets = len(power.targets)
    if power.base_sd is None or not power.design:
        design = f"- **Power by design** ({level}): {NOT_MEASURED} (no base runs at the chosen rates)."
    else:
        b, ref = power.base_sd, power.reference
        reach = (NOT_MEASURED if ref is None or not _finite(ref.mde) else
                 f"{'yes' if ref.mde <= power.goal else 'no'} ({_fixed(ref.mde)} pts)")
        design = (f"- **Power by design** ({level}; σ_d = √2 × the base's run SD {_fixed(b.sd)} pts, pooled within "
                  f"{b.n_groups} kept target{'s' if b.n_groups != 1 else ''} over {b.n_values} runs, df = {b.df}): "
                  f"minimum detectable mean gain " + ", ".join(_mde(m) for m in power.design)
                  + f"; {REFERENCE_SEEDS} seeds × {targets} targets reach ≤ {_fixed(power.goal, 1)} "
                  f"pts: {reach}.")
    if power.paired_sd is None or power.measured is None:
        measured = f"- **Power as measured:** {NOT_MEASURED} (no paired candidate runs)."
    else:
        p, m = power.paired_sd, power.measured
        measured = (f"- **Power as measured** (σ_d = the SD of the candidates' paired differences, {_fixed(p.sd)} "
                    f"pts, pooled within {p.n_groups} (candidate, target) cells over {p.n_values} differences, "
                    f"df = {p.df}): "
                    f"with the study's typical {_seeds_of(m)} seeds × {m.n_targets} targets the minimum detectable "
                    f"mean gain was {_mde_value(m)}.")
    return [design, measured]


def _seed_effect_line(e: SeedEffect | None) -> str:
    head = ("- **A seed effect shared across targets** (the pooled interval assumes none; target × seed mean squares "
            "within each candidate, pooled: ranking/power.py): ")
    if e is None:
        return head + f"{NOT_MEASURED} (no candidate with 2 seeds on 2 targets)."
    return head + (f"F({e.df_seed}, {e.df_residual}) = {_fixed(e.f)}, p = {e.p:.3f} over {e.n_candidates} "
                   f"candidate{'s' if e.n_candidates != 1 else ''} (F ≈ 1 when there is none).")


def _mde(m: Mde) -> str:
    return f"{_seeds_of(m)} seeds × {m.n_targets} targets {_mde_value(m)}"


def _mde_value(m: Mde) -> str:
    if not _finite(m.mde):
        return f"none (df = {m.df}: no interval)"
    return f"{_fixed(m.mde)} pts (df = {m.df})"


def _seeds_of(m: Mde) -> str:
    counts = sorted(set(m.seeds))
    return str(counts[0]) if len(counts) == 1 else f"{counts[0]} to {counts[-1]}"


def _sources_line(report: StudyReport) -> str:
    checks = report.meta.source_checks
    head = "- **Sources** (each source model's own-task check before it became a candidate): "
    if checks is None:
        return head + f"{NOT_RECORDED}."
    ok = sum(c.status == "ok" for c in checks)
    return head + f"{len(checks)} fine-tuned, {ok} passed, {len(checks) - ok} rejected" + (
        " (table below)." if checks else ".")


def _source_check_table(checks: tuple[SourceCheck, ...], kept: tuple[str, ...]) -> list[str]:
    header = ["source", "own-task test score", "majority class", "status", *(f"rows removed: {_md(t)}" for t in kept),
              "train rows", "sha256"]
    out = ["| " + " | ".join(header) + " |", "|---" * len(header) + "|"]
    for c in checks:
        score = (f"{_pct(c.test_score)} %" if c.metric == "accuracy" else
                 f"{_fixed(c.test_score, 3)} ({_md(c.metric)})" if c.metric else _fixed(c.test_score, 3))
        majority = f"{_pct(c.majority_rate)} %" if _finite(c.majority_rate) else "–"
        status = _md(c.status) + (f": {_md(c.reason)}" if c.reason else "") + (
            f" (fallback recipe; {_md(c.first_attempt)})" if c.first_attempt else "")
        removed = [_count(c.removed_for(t)) for t in kept]
        out.append("| " + " | ".join([_md(c.source), score, majority, status, *removed, _count(c.train_rows),
                                      _md(c.sha256[:SHA_PREFIX]) or "–"]) + " |")
    return out


def _contamination_line(c: Contamination | None) -> str:
    head = ("- **Contamination** (source training rows whose normalised text — case, whitespace, punctuation — is in "
            "a target's eval or test split, removed before the source was trained): ")
    if c is None:
        return head + f"{NOT_RECORDED}."
    text = (f"{c.rows_removed} training row{'s' if c.rows_removed != 1 else ''} removed across "
            f"{c.pairs_with_removals} (source, target) pair{'s' if c.pairs_with_removals != 1 else ''} "
            f"(of {c.pairs_checked} checked); {c.remaining} remain.")
    if c.target_overlap is None:
        return head + text + f" Overlap between the targets' own texts: {NOT_RECORDED}."
    shared = [(pair, n) for pair, n in c.target_overlap if n > 0]
    return head + text + " Overlap between the targets' own texts: " + (
        ", ".join(f"{_md(pair.replace('|', ' and '))} {n}" for pair, n in shared) if shared else
        f"none ({len(c.target_overlap)} pairs checked)") + "."


def _additive_lines(fit: AdditiveFit | None) -> list[str]:
    """The additive fit and the tests beside it, each only from MIN_RESIDUAL_DF residual degrees of freedom on."""
    if fit is None:
        return [f"- **Additive model** gain[s,t] ≈ μ + a_s + b_t: {NOT_MEASURED} (no more cells than parameters)."]
    if not is_testable(fit.residual_df):
        return [(f"- **Additive model** gain[s,t] ≈ μ + a_s + b_t, with Tukey's non-additivity test, the test "
                 f"against the seeds' own noise and the per-target scale model ({fit.n_cells} cells, {fit.n_params} "
                 f"parameters): {_not_tested(fit.residual_df)}.")]
    additive = (
        f"- **Additive model** gain[s,t] ≈ μ + a_s + b_t, least squares on {fit.n_cells} cells ({fit.n_diagonal} "
        f"diagonal cells, source = target, {'excluded' if fit.diagonal_excluded else 'included'}; {fit.n_params} "
        f"parameters): R² {_fixed(fit.r2)}, RMSE {_fixed(fit.rmse)} pts on {fit.residual_df} residual degrees of "
        f"freedom. Shuffled gains ({fit.n_permutations} permutations, seed {fit.seed}; this null, every cell "
        f"exchangeable, only tests that source and target effects exist): mean R² {_fixed(fit.shuffled_r2)}, mean "
        f"RMSE {_fixed(fit.shuffled_rmse)} pts; permutation p = {_fixed(fit.p_value, 3)} for an RMSE this low.")
    return [additive, *_additivity_lines(fit)]


def _not_tested(df: float, kind: str = "residual") -> str:
    return f"not tested: {df:g} {kind} degrees of freedom (< {MIN_RESIDUAL_DF})"


def _protocol_lines(report: StudyReport) -> list[str]:
    """The lr chosen (or the drop) per target, and the failed-run counts with what each check caught."""
    out = []
    if report.targets:
        grid = ", ".join(f"{lr:g}" for lr in report.targets[0].lrs)
        out.append(f"- **Learning rate per target** (the base swept over {grid}; scoring/lr_sweep.py): "
                   + "; ".join(_target_line(t) for t in report.targets) + ".")
    if report.runs is not None:
        out.append(_runs_line(report.runs))
    return out


def _runs_line(r: RunCounts) -> str:
    caught = "; ".join(f"{_md(c.check)}: base {c.base}, candidates {c.candidates}" for c in r.checks)
    return (f"- **Failed runs** (stored with their reasons, rerun with the next seed, never in a mean): base "
            f"{r.base_failed} of {r.base_runs}, candidates {r.candidate_failed} of {r.candidate_runs}. Runs each check "
            f"caught (scoring/run_check.py; a run can fail several): {caught}.")


def _target_line(t: TargetProtocol) -> str:
    if t.lr is None:
        return f"{_md(t.target)} dropped — {_md(t.reason)}"
    if t.majority_rate is None:
        return f"{_md(t.target)} lr {t.lr:g}, base {_fixed(t.base_mean, 3)}"
    return f"{_md(t.target)} lr {t.lr:g}, base {_pct(t.base_mean)} % vs majority class {_pct(t.majority_rate)} %"


def _pct(value) -> str:
    return _fixed(100 * value if _finite(value) else value, 1)


def _count(value) -> str:
    return str(int(value)) if _finite(value) else "–"


def _names(targets) -> str:
    return ", ".join(_md(t) for t in targets) or "none"


def _board_gain(row: pd.Series) -> str:
    """A source's mean gain with the leaderboard's interval, seeds and df: "+1.23 pts (95% CI −0.40 to +2.90;
    n = 5 seeds, df = 8)", or "+1.23 pts (n = 2 seeds, df = 1: no interval)" where the board gives none."""
    basis = f"n = {int(row['n_seeds'])} seeds" + (f", df = {float(row['df']):g}" if _finite(row["df"]) else "")
    if not (_finite(row["low"]) and _finite(row["high"])):
        return f"{_signed(row['mean'])} pts ({basis}: no interval)"
    return f"{_signed(row['mean'])} pts (95% CI {_signed(row['low'])} to {_signed(row['high'])}; {basis})"


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
    return table_text(text)


def _additivity_lines(fit: AdditiveFit) -> list[str]:
    """Is the matrix additive: Tukey's test, the test against seed noise, and the per-target-scale model, each
    reported only from MIN_RESIDUAL_DF residual (and, against the seeds, pure-error) degrees of freedom on."""
    def f_test(t: FTest) -> str:
        p = "p < 0.001" if t.p_value < 0.001 else f"p = {_fixed(t.p_value, 3)}"
        return f"F({t.df1:g}, {t.df2:g}) = {_fixed(t.f)}, {p}"

    t, r, scale = fit.tukey, fit.replicates, fit.scale
    tukey = (f"{NOT_MEASURED} (no residual degrees of freedom)" if t is None else
             _not_tested(t.df2) if not is_testable(t.df2) else f_test(t))
    replicates = (f"{NOT_MEASURED} (needs 2 or more candidate seeds per cell)" if r is None else
                  _not_tested(r.df1) if not is_testable(r.df1) else
                  _not_tested(r.df2, "pure-error") if not is_testable(r.df2) else f_test(r))
    return [
        f"- **Non-additivity:** Tukey's one-degree-of-freedom test {tukey}; against the seeds' own noise {replicates}.",
        "- **Per-target scale** gain[s,t] ≈ μ_t + λ_t·a_s" + (
            f": {NOT_MEASURED} (no more cells than parameters)." if scale is None else
            f" ({scale.n_cells} cells, {scale.n_params} parameters): {_not_tested(scale.residual_df)}."
            if not is_testable(scale.residual_df) else
            f", least squares on {scale.n_cells} cells ({scale.n_params} parameters): R² {_fixed(scale.r2)}, "
            f"RMSE {_fixed(scale.rmse)} pts on {scale.residual_df} residual degrees of freedom."),
    ]
