"""What the "Your data" tab shows of a personal ranking, as Markdown and a table (no gradio): its status and
progress, the data it ran on (class names clipped where shown; the files keep them whole), the combined rank's rule,
the ranking itself and the tab's introduction. Everything from a file, a user or the Hub is escaped once, for where
it lands: Markdown through ``data.escape.markdown_text``, table text cells left to the page (shown as text)."""

from __future__ import annotations

import math

import pandas as pd

from data.escape import markdown_text
from data.metrics import METRICS
from data.personal_record import PersonalRanking
from data.records import JobStatus, PersonalRequest
from data.settings import Settings
from ranking.columns import column_for
from ranking.personal import personal_frame
from service.personal_submit import START_WORKER
from ui.views import model_link

MAX_ERROR_CHARS = 500  # a failed job's error is cut to this many characters on the page
MAX_CLASSES_SHOWN = 20  # classes named in a ranking's data line; the rest counted
MAX_NAME_CHARS = 40  # a class name is cut to this where it is shown


def escaped(value: object) -> str:
    """``value`` as literal Markdown text (``data.escape.markdown_text``)."""
    return markdown_text(value)


def clipped(name: object, limit: int = MAX_NAME_CHARS) -> str:
    """A label or class name cut to ``limit`` characters where it is shown (the ranking's files keep it whole)."""
    text = str(name)
    return text if len(text) <= limit else text[:limit - 1] + "…"


def duration(seconds: float) -> str:
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size:
            n = round(seconds / size)
            return f"{n} {unit}{'s' if n != 1 else ''}"
    return f"{round(seconds)} seconds"


def _size(n_bytes: int) -> str:
    if n_bytes >= 2**20:
        return f"{n_bytes / 2**20:g} MB"
    return f"{n_bytes / 1024:g} KB" if n_bytes >= 1024 else f"{n_bytes} bytes"


def _seconds(value) -> str:
    return f"{value:.1f} s" if isinstance(value, int | float) and math.isfinite(value) else ""


def progress_markdown(request: PersonalRequest, total: int) -> str:
    """``3 of 11 models scored: a (1.2 s), b (failed: ...), ...``, each name escaped."""
    done = [f"{escaped(p.get('repo_id', ''))}"
            + (f" (failed: {escaped(p['error'])})" if p.get("error") else
               f" ({_seconds(p.get('seconds'))})" if _seconds(p.get("seconds")) else "")
            for p in request.progress]
    line = f"{len(done)} of {max(total, len(done))} models scored"
    return line + (": " + ", ".join(done) if done else ".")




def status_markdown(request: PersonalRequest, total: int, *, worker_alive: bool = True) -> str:
    """One line: queued (and, with no live worker, the command that starts one), scoring (per model), done, or
    failed with its error."""
    progress = progress_markdown(request, total)
    if request.status is JobStatus.PENDING and not worker_alive:
        return (f"**Queued**, but no scoring worker is running: start one beside the app with `{START_WORKER}` "
                f"(it picks this ranking up). {progress}")
    if request.status is JobStatus.PENDING:
        return f"**Queued**: waiting for a scoring worker. {progress}"
    if request.status is JobStatus.RUNNING:
        return f"**Scoring**: {progress}"
    if request.status is JobStatus.DONE:
        return f"**Done**: {progress}"
    error = ((request.error or "").strip().splitlines() or ["no reason was recorded"])[0]  # an old row's traceback too
    if len(error) > MAX_ERROR_CHARS:
        error = error[:MAX_ERROR_CHARS] + "…"
    return f"**Failed**: {escaped(error)}" + (f" {progress}" if request.progress else "")


def data_markdown(request: PersonalRequest) -> str:
    """Which data and base the ranking is of: rows, classes with their counts, where they came from."""
    summary = request.summary or {}
    classes = summary.get("classes") or {}
    shown = list(classes.items())[:MAX_CLASSES_SHOWN]
    counts = ", ".join(f"{escaped(clipped(name))}: {n:,}" for name, n in shown)
    if len(classes) > len(shown):
        counts += f" and {len(classes) - len(shown):,} more"
    kind, _, rest = (request.source or "").partition(":")
    where = {"upload": "the file ", "hub": "the Hub dataset "}.get(kind, "")
    pair = " (text pairs)" if summary.get("pair") else ""
    which = (f"{summary.get('models', len(request.models) + 1)} models named, with the base "
             f"**{escaped(request.base_id)}**," if request.models else
             f"Base **{escaped(request.base_id)}** and its top {request.top_k} candidates,")
    return (f"{which} on "
            f"{summary.get('rows', 0):,} rows{pair} from {where}{escaped(clipped(rest or request.source, 120))}, "
            f"{len(classes)} classes ({counts}).")


def rule_markdown(result: PersonalRanking) -> str:
    """The combined rank's rule and what each estimator measures."""
    lines = [escaped(result.rule)]
    for name, key in result.estimators.items():
        spec = METRICS.get(key)
        what = f"{spec.label}: {spec.description}" if spec else key
        lines.append(f"- {escaped(what)} ({escaped(name)})")
    return "\n".join(lines)


def empty_headers() -> list[str]:
    """The table's headers before any ranking (an empty gr.Dataframe otherwise shows "1 2 3")."""
    return ["rank", "model", "general rank", f"general {column_for('mean_gain').label} (pts)", "seconds"]


def ranking_table(result: PersonalRanking) -> tuple[pd.DataFrame, list[str]]:
    """The ranking as the tab shows it (and each column's gr.Dataframe datatype): rank, model (linked, escaped),
    general rank and mean gain, each estimator's value and rank, and a model's failures as escaped text."""
    frame = personal_frame(result)
    gain = column_for("mean_gain")
    out = {
        "rank": frame["combined_rank"],
        "model": [model_link(r) + (" (base)" if role == "base" else "")
                  for r, role in zip(frame["repo_id"], frame["role"], strict=True)],
        "general rank": frame["general_rank"],
        f"general {gain.label} (pts)": (pd.to_numeric(frame["mean_gain"], errors="coerce") * 100).round(gain.decimals),
    }
    datatypes = ["number", "markdown", "number", "number"]
    notes = [[] for _ in range(len(frame))]
    for key in result.estimators.values():
        spec = METRICS.get(key)
        label = spec.label if spec else key
        values = pd.to_numeric(frame[key], errors="coerce")
        out[label] = (values * 100).round(2) if spec and spec.unit == "fraction" else values.round(3)
        out[f"{label} rank"] = frame[f"{key}_rank"]
        datatypes += ["number", "number"]
        for i, status in enumerate(frame[f"{key}_status"]):
            if status != "ok" and not frame["error"].iloc[i]:  # a model that could not be read ran none
                notes[i].append(f"{label}: {status}")
    for i, error in enumerate(frame["error"]):
        if error:
            notes[i].insert(0, str(error))
    if any(notes):
        out["notes"] = ["; ".join(n) for n in notes]  # a "str" cell: shown as text, never as markup
        datatypes.append("str")
    out["seconds"] = pd.to_numeric(frame["seconds"], errors="coerce").round(1)
    datatypes.append("number")
    return pd.DataFrame(out), datatypes


def intro_markdown(settings: Settings) -> str:
    """What the tab does, and how long what is kept."""
    rows = "as soon as the ranking ends" if settings.personal_keep_rows_s <= 0 else (
        f"for {duration(settings.personal_keep_rows_s)} after the ranking ends")
    return (f"**Rank on your own data.** Pick a base model: it and its top candidates on the leaderboard, or the "
            f"models you name (Hub ids, or folders in this server's models folder as ./NAME), are scored "
            f"on your labelled rows (cross-validated probes and LogME on frozen features), so you see which "
            f"checkpoint suits your task. A model that cannot be fetched is listed with its reason. Upload a CSV, "
            f"JSON Lines or Parquet file with a header row, or name a dataset on the Hub; then pick its text "
            f"column (and a second one for sentence pairs) and its label column. At most "
            f"{settings.personal_max_rows:,} rows and {_size(settings.personal_max_bytes)} per file. Your rows are "
            f"deleted {rows}; the ranking stays at its link for {duration(settings.personal_ttl_s)}.")
