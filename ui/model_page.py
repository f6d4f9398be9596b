"""The model page: one candidate's scores explained. Plain functions returning markdown and frames."""

from __future__ import annotations

import logging
import math

import pandas as pd

from data.escape import markdown_text
from data.metrics import OVERVIEW, PUBLISHED_SOURCE, gated_scorers, summary_metrics
from data.payloads import FinetuneRun, FreeEnergyRun, LoraRun, PayloadError, payload_of
from data.store import Store
from ranking.columns import column_for, format_value, interval_text
from ranking.leaderboard import Leaderboard
from ui.views import model_link, rank_text

logger = logging.getLogger(__name__)
SAMPLE_EFFICIENCY_SCORER = "sample_efficiency"
LLC_DECIMALS = column_for("llc_mean").decimals  # per-chain LLCs read like the leaderboard's LLC column


def find_row(board: Leaderboard, repo_id: str) -> pd.Series | None:
    """The model's row (or the base's), by exact repo id; None when it is not on this leaderboard."""
    frame = board.to_frame()
    hits = frame[frame["repo_id"] == repo_id]
    return None if hits.empty else hits.iloc[0]


def top_model(board: Leaderboard | None) -> str | None:
    """The repo id of the board's top-ranked model (rank 1; never the base's own row); None when it ranks none."""
    if board is None or board.rows.empty:
        return None
    return str(board.rows.sort_values("rank", kind="mergesort")["repo_id"].iloc[0])


ALWAYS_SHOWN = frozenset({"mean gain", "beats the base beyond seed noise", "mean score", "suite targets scored"})


def header_markdown(board: Leaderboard, row: pd.Series | None, repo_id: str) -> str:
    """The model's title and a table of what is known about it (a fact this board lacks, e.g. downloads of a
    published 2023 row, is left out rather than shown empty)."""
    name = model_link(repo_id)
    if row is None:
        return (f"### {markdown_text(repo_id)}\nNot on the {markdown_text(board.base_id)} leaderboard "
                f"({markdown_text(board.source)} scores). Pick a model from the leaderboard, or submit it for scoring.")
    if bool(row.get("is_baseline")):
        title = f"### {name} — the base model\nEvery gain on this leaderboard is measured against its mean over seeds."
    else:
        title = f"### {name} — {rank_text(row)} on {markdown_text(board.base_id)}"
    facts = [
        ("mean gain", _gain_with_ci(row)),
        ("beats the base beyond seed noise", _beats(row)),
        ("mean score", format_value(row.get("mean_score"), "pct")),
        ("suite targets scored", f"{_int(row.get('n_targets'))} of {len(board.suite)}"),
        *_trained_on(board, row),
        *_suspect(board, row),
        ("failed runs (stored, never averaged)", _int(row.get("failed_runs"))),
        *_scorer_facts(row),
        ("downloads", format_value(row.get("downloads"), "int")),
        ("likes", format_value(row.get("likes"), "int")),
        ("license", markdown_text(_text(row.get("license")))),  # Hub text: no link, image or markup can form
        ("parameters", format_value(row.get("num_params"), "int")),
        ("last modified on the Hub", markdown_text(_text(row.get("last_modified")))),
        ("scored revision", markdown_text(_text(row.get("revision")))),
    ]
    table = "\n".join(f"| {k} | {v or '–'} |" for k, v in facts if v or k in ALWAYS_SHOWN)
    return f"{title}\n\n| measure | value |\n|---|---|\n{table}\n"


def _scorer_facts(row: pd.Series) -> list[tuple[str, str]]:
    """Each registered scorer's overview values (data/metrics.py declares them), as the board shows them; a failed
    estimate's status ("unconverged") beside its blanked value."""
    facts = []
    status = {s.metrics[0].key: s.status_column for s in gated_scorers()}
    for m in summary_metrics():
        if m.group == OVERVIEW:
            facts.append((m.name, format_value(row.get(m.key), m.fmt, m.decimals)))
            if m.key in status and _text(row.get(status[m.key])):
                facts.append((f"{m.name} status", markdown_text(_text(row.get(status[m.key])))))
    return facts


def _beats(row: pd.Series) -> str:
    """yes / no, or nothing when there is no mean gain to test."""
    gain = row.get("mean_gain")
    if gain is None or pd.isna(gain):
        return ""
    return "yes" if _is_true(row.get("beats_base")) else "no"


def _text(value) -> str:
    """A text cell, empty when missing (None or a NaN the frame filled in: never the string "nan")."""
    return "" if value is None or (not isinstance(value, str) and pd.isna(value)) else str(value)


def _trained_on(board: Leaderboard, row: pd.Series) -> list[tuple[str, str]]:
    """The suite targets its model card says it was trained on, when the board leaves them out of its mean gain."""
    n = row.get("n_seen")
    if board.include_seen or n is None or pd.isna(n) or int(n) <= 0:
        return []
    return [("suite targets trained on (left out of the mean gain)", str(int(n)))]


def _suspect(board: Leaderboard, row: pd.Series) -> list[tuple[str, str]]:
    """How many of its imported target scores look column-shifted (data/quality.py), and whether they count."""
    n = row.get("n_suspect")
    if n is None or pd.isna(n) or int(n) <= 0:
        return []
    counted = "counted in the mean gain" if board.include_suspect else "left out of the mean gain"
    return [(f"suspect cells (this row's scores fit a neighbouring column of the published file; {counted})",
             str(int(n)))]


def free_energy_details(store: Store, repo_id: str, revision: str) -> tuple[str, pd.DataFrame]:
    """The latest free-energy estimate of this revision: F, λ̂, L_n(w*), its settings and diagnostics, and λ̂
    per chain (a diverged chain is shown as such), from the estimate's typed payload."""
    empty = pd.DataFrame(columns=["chain", "llc", "status"])
    scores = [s for s in store.scores(repo_id=repo_id, scorer="free_energy") if s.revision == revision]
    if not scores:
        return "No free-energy score yet for this revision.", empty
    latest = max(scores, key=lambda s: (s.created_at is not None, s.created_at or 0, s.metric == "free_energy"))
    estimate = [s for s in scores if (s.config_hash, s.seed) == (latest.config_hash, latest.seed)]
    values = {s.metric: s.value for s in estimate}
    lines = [(f"free energy **{_num(values.get('free_energy'))}**, λ̂ **{_num(values.get('llc_mean'))}** ± "
              f"{_num(values.get('llc_std'))}, L_n(w*) {_num(values.get('init_loss'))}")]
    try:
        run: FreeEnergyRun = payload_of(latest)  # type: ignore[assignment] (a free_energy score's payload)
    except PayloadError as e:
        return "  \n".join([*lines, f"diagnostics unreadable: {markdown_text(str(e))}"]), empty
    lines += _run_lines(run)
    chains = pd.DataFrame({"chain": list(range(len(run.per_chain))),
                           "llc": [round(c, LLC_DECIMALS) if math.isfinite(c) else None for c in run.per_chain],
                           "status": [_chain_status(c) for c in run.per_chain]})
    return "  \n".join(lines), chains


def _gate_lines(run: FreeEnergyRun) -> list[str]:
    """The convergence gate's verdict and the figures it read (absent from estimates stored before the gate)."""
    checks = (("‖∇L_n(w*)‖", run.grad_norm, ".3g"), ("at the checkpoint", run.checkpoint_grad_norm, ".3g"),
              ("nβ²‖∇L_n‖²/γ over λ̂", run.critical_ratio, ".3g"), ("trace drift", run.drift, "+.2f"),
              ("split R-hat", run.r_hat, ".3f"), ("MALA acceptance after burn-in", run.acceptance, ".2f"),
              ("Monte-Carlo SE of λ̂", run.mc_se, ".3g"), ("halves differ by (SE)", run.half_gap, "+.2f"),
              ("burn-in (relaxation times)", run.burnin_relaxations, ".2g"), ("λ̂ at ε/2", run.halving_llc, ".3g"),
              ("ε/2 differs by (SE)", run.halving_gap, "+.2f"), ("L_n(w*) of the unigram model", run.unigram_ce, ".3f"),
              ("head fit (steps)", run.head_steps, "d"), ("‖w − w_base‖", run.weight_distance, ".3g"))
    figures = [f"{name} {value:{fmt}}" for name, value, fmt in checks if value is not None and math.isfinite(value)]
    if not figures and not run.gate:
        return []
    lines = ["; ".join(figures)] if figures else []
    if run.gate:
        lines.append("**unconverged** (not ranked): " + "; ".join(markdown_text(r) for r in run.gate))
    else:
        lines.append("convergence gate: passed")
    return lines


def _run_lines(run: FreeEnergyRun) -> list[str]:
    facts = (("n", _count(run.n)), ("nβ", _num(run.nbeta) if run.nbeta is not None else ""),
             ("chains", _count(run.num_chains)), ("draws per chain", _count(run.num_draws)),
             ("corpus", markdown_text(run.corpus)), ("head", markdown_text(run.head)))
    settings = [f"{k} {v}" for k, v in facts if v]
    lines = ["; ".join(settings)] if settings else []
    if run.sampled:
        lines.append("sampled: " + ("the encoder's last layer, on cached lower-layer states" if run.sampled ==
                                    "last_block" else "every encoder weight"))
    if run.recentre_steps:
        lines.append(f"w*: the sampled weights after {run.recentre_steps} Adam steps on split A from the checkpoint")
    if run.localize_steps:
        start = f" (‖∇L_n‖ at the checkpoint {run.start_grad_norm:.3g})" if run.start_grad_norm is not None else ""
        lines.append(f"sampled after {run.localize_steps} steps of localized minimisation from the checkpoint{start}")
    diverged = sum(not math.isfinite(c) for c in run.per_chain)
    if diverged:
        lines.append(f"{diverged} of {len(run.per_chain)} chains diverged (NaN)")
    lines += _gate_lines(run)
    if run.diagnostics:
        lines.append("diagnostics:")
        lines += [f"- {markdown_text(d)}" for d in run.diagnostics]
    else:
        lines.append("diagnostics: none")
    return lines


def _count(value: int | None) -> str:
    return "" if value is None else str(int(value))


def _num(value) -> str:
    return format_value(value, "num") or "–"


def guided_dropout_rates(store: Store, repo_id: str, revision: str) -> pd.DataFrame:
    """The guided-dropout rates (from Fisher scores) used when this revision was fine-tuned with
    dropout="guided", highest rate first; empty when it never was."""
    for s in store.scores(repo_id=repo_id, scorer="intertraining"):
        run = _payload(s, FinetuneRun) if s.revision == revision else None  # a published run has none
        rates = run.dropout_rates if run is not None else None
        if rates:
            ordered = sorted(rates, key=lambda k: (-rates[k], k))
            return pd.DataFrame({"dropout module": ordered, "rate": [round(rates[k], 4) for k in ordered]})
    return pd.DataFrame(columns=["dropout module", "rate"])


def sample_efficiency_points(store: Store, repo_id: str, base_id: str) -> pd.DataFrame:
    """Accuracy vs number of labels for the model and its base (columns model, n_labels, accuracy)."""
    points = []
    for model in (repo_id, base_id):
        for s in store.scores(repo_id=model, scorer=SAMPLE_EFFICIENCY_SCORER):
            run = _payload(s, LoraRun) if s.metric == "lora_accuracy" else None
            if run is not None:
                points.append({"model": model, "n_labels": run.n_labels, "accuracy": s.value})
    if not points:
        return pd.DataFrame(columns=["model", "n_labels", "accuracy"])
    frame = pd.DataFrame(points)
    return frame.groupby(["model", "n_labels"], as_index=False)["accuracy"].mean()


def _payload(score, kind):
    """The score's payload when it is a ``kind``; None when it is unreadable (logged) or another kind."""
    try:
        payload = payload_of(score)
    except PayloadError as e:
        logger.warning("%s", e)
        return None
    return payload if isinstance(payload, kind) else None


def scored_revisions(store: Store, repo_id: str) -> pd.DataFrame:
    """Every (revision, scorer, source) this model has scores for, newest first."""
    scores = store.scores(repo_id=repo_id)
    if not scores:
        return pd.DataFrame(columns=["revision", "scorer", "source", "scores", "last scored"])
    frame = pd.DataFrame({"revision": [s.revision for s in scores], "scorer": [s.scorer for s in scores],
                          "source": [s.source for s in scores], "created": [_scored_when(s) for s in scores]})
    grouped = frame.groupby(["revision", "scorer", "source"], as_index=False).agg(
        scores=("created", "size"), last_scored=("created", "max"))
    return grouped.rename(columns={"last_scored": "last scored"}).sort_values("last scored", ascending=False)


def _gain_with_ci(row: pd.Series) -> str:
    gain = row.get("mean_gain")
    if gain is None or (isinstance(gain, float) and math.isnan(gain)):
        return "– (needs every target of the suite)"
    interval = interval_text(row.get("gain_ci_low"), row.get("gain_ci_high"), df=row.get("gain_df"),
                             n_seeds=row.get("n_seeds"))
    return f"{format_value(gain, 'pts')} ({interval})"


def _is_true(value) -> bool:
    return value is not None and not (isinstance(value, float) and math.isnan(value)) and bool(value)


def _int(value) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0


def _chain_status(llc: float) -> str:
    """A chain's own verdict: diverged, below L_n(w*) (its mean draw loss under the loss it started from: λ̂ < 0,
    the gate's reason), else ok."""
    if not math.isfinite(llc):
        return "diverged (NaN)"
    return "below L_n(w*) (λ̂ < 0)" if llc < 0 else "ok"


def _scored_when(score) -> str:
    """When a score was made: its store time for the project's own runs; a published run was scored by its
    authors (the store time is only when it was imported)."""
    stored = score.created_at.isoformat(timespec="seconds") if score.created_at else ""
    if score.source == PUBLISHED_SOURCE:
        return f"by IBM, 2023 (imported {stored[:10]})" if stored else "by IBM, 2023"
    return stored
