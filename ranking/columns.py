"""Column specs of the leaderboard: key, label, group, direction and display format.

The columns the ranking derives (rank, the mean gain and its interval, counts) are declared here; a scorer's
columns come from its metrics' declarations (data/metrics.py: label, direction, format, group), read when asked,
so a scorer registered later has its columns too. Keys are the export's stable column names (README documents
them). Display scaling (×100 for fractions, ± for intervals) happens only here.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from data.metrics import (
    FREE_ENERGY,
    GROUPS,
    HUB,
    METRICS,
    OVERVIEW,
    TARGET_GAINS,
    TARGET_SCORES,
    MetricSpec,
    ScorerSpec,
    board_keys,
    gated_scorers,
)

__all__ = ["DEFAULT_GROUPS", "FREE_ENERGY", "GROUPS", "HUB", "OVERVIEW", "TARGET_GAINS", "TARGET_SCORES", "Column",
           "board_columns", "column_for", "columns_in", "format_value", "interval_text"]
DEFAULT_GROUPS = (OVERVIEW, HUB)


@dataclass(frozen=True, slots=True, kw_only=True)
class Column:
    key: str
    label: str
    group: str
    higher_is_better: bool | None  # None: not a ranking metric
    fmt: str  # "text" | "int" | "pct" (fraction shown ×100) | "pts" (fraction difference shown ×100, signed) | "num"
    description: str = ""
    decimals: int = 2  # shown for "pct", "pts" and "num" (after the ×100); exports keep full precision


LEADING_COLUMNS: tuple[Column, ...] = (
    Column(key="rank", label="rank", group=OVERVIEW, higher_is_better=None, fmt="int"),
    Column(key="repo_id", label="model", group=OVERVIEW, higher_is_better=None, fmt="text"),
    Column(key="mean_gain", label="mean gain", group=OVERVIEW, higher_is_better=True, fmt="pts",
           description="Mean over the suite of the candidate's gain on each target (points): paired with the "
                       "base's run on the same seed for the project's runs, against the base's mean over seeds for "
                       "published ones."),
    Column(key="gain_ci_low", label="gain CI low", group=OVERVIEW, higher_is_better=True, fmt="pts",
           description="Lower end of the 95% interval of the mean gain: for the project's runs Student t with the "
                       "paired differences' seed variance pooled within targets, df = Σ_t (n_t − 1), none below 2 "
                       "df; for published runs Welch–Satterthwaite t."),
    Column(key="gain_ci_high", label="gain CI high", group=OVERVIEW, higher_is_better=True, fmt="pts"),
    Column(key="beats_base", label="beats base", group=OVERVIEW, higher_is_better=None, fmt="text",
           description="The whole 95% interval of the mean gain lies above 0."),
    Column(key="mean_score", label="mean score", group=OVERVIEW, higher_is_better=True, fmt="pct",
           description="Mean target score over the suite ×100 (the model-recycling site's 'avg')."),
)
# then the scorers' columns (board_columns), then these
TRAILING_COLUMNS: tuple[Column, ...] = (
    Column(key="n_targets", label="targets", group=OVERVIEW, higher_is_better=None, fmt="int",
           description="Suite targets scored; the mean needs all of them."),
    Column(key="n_seeds", label="seeds", group=OVERVIEW, higher_is_better=None, fmt="int",
           description="Seeds paired on every suite target the mean counts (project runs; the interval also uses "
                       "seeds paired on only some, see df), or the fewest runs on a suite target (published)."),
    Column(key="gain_df", label="df", group=OVERVIEW, higher_is_better=None, fmt="num", decimals=1,
           description="Degrees of freedom of the gain's interval: Σ_t (n_t − 1) over the paired seeds n_t of each "
                       "counted target (project runs; below 2: no interval), Welch–Satterthwaite (published)."),
    Column(key="n_seen", label="trained on", group=OVERVIEW, higher_is_better=None, fmt="int",
           description="Suite targets the model was trained on (its card's datasets): left out of its mean gain "
                       "unless 'include the targets a model was trained on' is ticked."),
    Column(key="n_suspect", label="suspect cells", group=OVERVIEW, higher_is_better=None, fmt="int",
           description="Imported target scores that look column-shifted (the row's values fit a neighbouring "
                       "column of the published file: data/quality.py): shown, left out of the mean gain unless "
                       "'include suspect cells' is ticked."),
    Column(key="failed_runs", label="failed runs", group=OVERVIEW, higher_is_better=None, fmt="int",
           description="Fine-tuning runs that failed a check (one class predicted, no better than the majority "
                       "class, training loss not falling): stored and counted, never in a mean."),
)
HUB_COLUMNS: tuple[Column, ...] = (
    Column(key="downloads", label="downloads", group=HUB, higher_is_better=True, fmt="int"),
    Column(key="likes", label="likes", group=HUB, higher_is_better=True, fmt="int"),
    Column(key="license", label="license", group=HUB, higher_is_better=None, fmt="text"),
    Column(key="num_params", label="params", group=HUB, higher_is_better=None, fmt="int"),
    Column(key="last_modified", label="last modified", group=HUB, higher_is_better=None, fmt="text"),
    Column(key="revision", label="scored revision", group=HUB, higher_is_better=None, fmt="text"),
)
DERIVED = {c.key: c for c in (*LEADING_COLUMNS, *TRAILING_COLUMNS, *HUB_COLUMNS)}


def metric_column(m: MetricSpec) -> Column:
    """A summary metric's board column, as its declaration says."""
    return Column(key=m.key, label=m.label, group=m.group, higher_is_better=m.higher_is_better, fmt=m.fmt,
                  decimals=m.decimals, description=m.column_description or m.description)


def status_column(s: ScorerSpec) -> Column:
    """A gated scorer's status column: its ``failed_status`` word where the estimate failed, else empty."""
    return Column(key=s.status_column, label=s.status_column.replace("_", " "), group=s.metrics[0].group,
                  higher_is_better=None, fmt="text", description=s.status_description)


def board_columns() -> tuple[Column, ...]:
    """Every column of a board in order: the derived ones, the registered scorers' (data/metrics.py), the Hub's."""
    status = {s.status_column: status_column(s) for s in gated_scorers()}
    scorer = tuple(status[k] if k in status else metric_column(METRICS[k]) for k in board_keys())
    return (*LEADING_COLUMNS, *scorer, *TRAILING_COLUMNS, *HUB_COLUMNS)


def column_for(key: str) -> Column:
    """The spec of a board column, or of a per-target ``score:<t>`` / ``gain:<t>`` column (the direction and
    format of the ``target_score`` and ``intertraining_gain`` metrics)."""
    return _column(key, {c.key: c for c in board_columns()})


def _column(key: str, board: Mapping[str, Column]) -> Column:
    """``column_for`` with the board's columns (key -> column) already built."""
    if key in DERIVED:
        return DERIVED[key]
    if key in board:
        return board[key]
    kind, _, target = key.partition(":")
    if kind in ("score", "gain") and target:
        m = METRICS["target_score" if kind == "score" else "intertraining_gain"]
        return Column(key=key, label=target if kind == "score" else f"Δ {target}", group=m.group,
                      higher_is_better=m.higher_is_better, fmt=m.fmt, decimals=m.decimals)
    raise KeyError(f"unknown leaderboard column {key!r}")


def columns_in(keys, groups=GROUPS) -> list[Column]:
    """Specs of the given frame columns that belong to the chosen groups, in display order (the board's columns
    read once per call: a table render asks for every column)."""
    board = {c.key: c for c in board_columns()}
    position = {key: i for i, key in enumerate(board)}
    specs = [_column(k, board) for k in keys if k != "is_baseline" and k != "pipeline_tag"]
    order = {g: i for i, g in enumerate(GROUPS)}
    chosen = [c for c in specs if c.group in groups or c.key in ("rank", "repo_id")]
    return sorted(chosen, key=lambda c: (order[c.group] if c.key not in ("rank", "repo_id") else -1,
                                         position.get(c.key, len(position))))


def interval_text(low, high, *, df=None, n_seeds=None) -> str:
    """The mean gain's 95% interval in points with what it rests on, as the study report writes it: "95% CI
    −0.40 to +2.90; n = 5 seeds, df = 8", and where there is none "n = 2 seeds, df = 1: no interval" (either part
    left out when not given; "no interval" alone when neither is)."""
    basis = ", ".join(part for part in (_seeds_text(n_seeds), _df_text(df)) if part)
    if _is_number(low) and _is_number(high):
        return f"95% CI {format_value(low, 'pts')} to {format_value(high, 'pts')}" + (f"; {basis}" if basis else "")
    return f"{basis}: no interval" if basis else "no interval"


def _seeds_text(n_seeds) -> str:
    if not _is_number(n_seeds):
        return ""
    n = round(float(n_seeds))
    return f"n = {n} seed{'' if n == 1 else 's'}"


def _df_text(df) -> str:
    return f"df = {round(float(df), 1):g}" if _is_number(df) else ""


def _is_number(value) -> bool:
    try:
        return math.isfinite(float(value))
    except (TypeError, ValueError):
        return False


def format_value(value, fmt: str, decimals: int | None = None) -> str:
    """A cell as text: fractions ×100 with 2 decimals (or ``decimals``), gains signed, missing as blank; plain
    numbers to 4 significant digits unless ``decimals`` is given (a Column's ``decimals``)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    places = 2 if decimals is None else decimals
    if fmt == "pct":
        return f"{100 * float(value):.{places}f}"
    if fmt == "pts":
        return f"{100 * float(value):+.{places}f}"
    if fmt == "int":
        return f"{round(float(value)):,}"
    if fmt == "num":
        return f"{float(value):.4g}" if decimals is None else f"{float(value):,.{decimals}f}"
    if isinstance(value, bool):
        return "yes" if value else ""
    return str(value)
