"""The leaderboard view: filter, search and sort a built leaderboard, and shape it for gr.Dataframe.

Pure functions over frames (no gradio): the handlers in app.py call these, the tests call them directly.
Numbers stay numbers (fractions shown ×100, rounded) so clicking a column header in the table sorts them.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

from data.escape import markdown_text
from data.metrics import PROJECT_SOURCE
from ranking.columns import DEFAULT_GROUPS, GROUPS, Column, column_for, columns_in
from ranking.leaderboard import Leaderboard, direction

HUB_URL = "https://huggingface.co"
SAFE_REPO_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9][A-Za-z0-9._-]*)?$")
_MARKDOWN_LINK = re.compile(r"\[((?:\\.|[^\]\\])*)\]\([^)]*\)")
_MARKDOWN_ESCAPE = re.compile(r"\\(.)")
# Column widths of the leaderboard table (its cells use the theme's monospace font)
CHAR_PX = 8.5  # one character of the table font
CELL_PAD_PX = 30  # a cell's padding and the header's sort mark and menu button
RANK_WIDTH_PX = 72  # fixed: the model column is pinned at this offset (app.py's CSS)
MODEL_MAX_CHARS = 40  # longer model names wrap
TEXT_MAX_CHARS = 24
TEXT_SAMPLE_ROWS = 300  # text columns are measured on the first rows shown (a longer name further down wraps)
ROW_LIMITS = ("100", "500", "2000", "all")
DEFAULT_ROWS = "100"  # a base switch renders these: 100 rows take ~1.2 s from click to table, 500 ~2 s (RESULTS)
SHA = re.compile(r"^[0-9a-f]{40}$")
ALWAYS_SHOWN = frozenset({"rank", "repo_id", "mean_gain", "mean_score"})  # other columns only when they hold values
# Model size buckets by parameter count: (label, lowest count in it); each bucket ends where the next begins.
SIZE_BUCKETS = (("< 50M", 0), ("50–150M", 50_000_000), ("150–500M", 150_000_000), ("> 500M", 500_000_000))
UNKNOWN_SIZE = "unknown"  # no parameter count (e.g. the published 2023 rows): its own choice, never hidden by default
SIZE_CHOICES = (*(label for label, _ in SIZE_BUCKETS), UNKNOWN_SIZE)


@dataclass(frozen=True, slots=True, kw_only=True)
class ViewQuery:
    search: str = ""
    licenses: tuple[str, ...] = ()
    min_downloads: float = 0
    fully_scored_only: bool = False
    hide_below_base: bool = False
    groups: tuple[str, ...] = DEFAULT_GROUPS
    sort_by: str = "mean_gain"
    max_rows: str = DEFAULT_ROWS
    sizes: tuple[str, ...] = SIZE_CHOICES  # size buckets shown (SIZE_CHOICES): all of them by default


def escape_markdown(text: str) -> str:
    """Text that markdown shows as it is (``data.escape.markdown_text``: HTML-escaped, then markdown's special
    characters backslash-escaped)."""
    return markdown_text(text)


def model_link(repo_id: str) -> str:
    """A markdown link to the model's Hub page; names that are not plain Hub ids are shown escaped, unlinked."""
    text = escape_markdown(repo_id)
    if SAFE_REPO_ID.match(str(repo_id)):
        return f"[{text}]({HUB_URL}/{repo_id})"
    return text


def filter_rows(board: Leaderboard, query: ViewQuery) -> pd.DataFrame:
    """The candidate rows that pass the query, sorted by ``query.sort_by`` in its declared direction."""
    rows = board.rows
    mask = np.ones(len(rows), dtype=bool)
    if query.search.strip():
        mask &= rows["repo_id"].str.contains(query.search.strip(), case=False, regex=False).to_numpy()
    if query.licenses:
        mask &= rows["license"].isin(query.licenses).to_numpy()
    if query.min_downloads:
        mask &= rows["downloads"].fillna(0).to_numpy() >= query.min_downloads
    if query.fully_scored_only:
        mask &= rows["mean_score"].notna().to_numpy()
    if query.hide_below_base:
        mask &= (rows["mean_gain"] >= 0).fillna(False).to_numpy()
    if set(query.sizes) != set(SIZE_CHOICES):
        mask &= size_buckets(rows).isin(query.sizes).to_numpy()
    view = rows[mask]
    if query.sort_by != "mean_gain" and query.sort_by in view:
        view = view.sort_values([query.sort_by, "rank"], ascending=[not direction(query.sort_by), True],
                                na_position="last", kind="mergesort")
    return view


def size_bucket(num_params) -> str:
    """The SIZE_CHOICES label of a parameter count; UNKNOWN_SIZE when there is none."""
    try:
        count = float(num_params)
    except (TypeError, ValueError):
        return UNKNOWN_SIZE
    if not np.isfinite(count) or count < 0:
        return UNKNOWN_SIZE
    return next(label for label, low in reversed(SIZE_BUCKETS) if count >= low)


def size_buckets(rows: pd.DataFrame) -> pd.Series:
    """The size bucket of every row (all UNKNOWN_SIZE when the leaderboard has no ``num_params`` column)."""
    if "num_params" not in rows:
        return pd.Series(UNKNOWN_SIZE, index=rows.index, dtype=object)
    counts = pd.to_numeric(rows["num_params"], errors="coerce").astype("float64")
    labels = pd.Series(UNKNOWN_SIZE, index=rows.index, dtype=object)
    for label, low in SIZE_BUCKETS:  # ascending: each bucket overwrites the ones below it
        labels = labels.mask(counts >= low, label)
    return labels


def size_choices(board: Leaderboard | None) -> list[tuple[str, str]]:
    """(label with the number of models in it, bucket) for every size bucket, e.g. ("50–150M (1,278)", "50–150M")."""
    counts = size_buckets(board.rows).value_counts() if board is not None else pd.Series(dtype=int)
    return [(f"{bucket} ({int(counts.get(bucket, 0)):,})", bucket) for bucket in SIZE_CHOICES]


def display_frame(board: Leaderboard, view: pd.DataFrame, query: ViewQuery) -> tuple[pd.DataFrame, list[str]]:
    """Baseline on top, then at most ``max_rows`` rows of the view; labelled columns of the chosen groups.

    Returns the frame and the gr.Dataframe datatype of each column.
    """
    limit = None if query.max_rows == "all" else int(query.max_rows)
    shown = view if limit is None else view.head(limit)
    if not board.baseline.empty:
        shown = pd.concat([board.baseline, shown], ignore_index=True)
    return shape_rows(shown, tuple(query.groups) or DEFAULT_GROUPS)


def shape_rows(rows: pd.DataFrame, groups: tuple[str, ...]) -> tuple[pd.DataFrame, list[str]]:
    """Leaderboard rows as the table shows them: the labelled, rounded columns of ``groups`` that hold values
    (and the gr.Dataframe datatype of each)."""
    specs = [spec for spec in columns_in(rows.columns, groups)
             if spec.key in ALWAYS_SHOWN or _has_values(rows[spec.key])]
    out = pd.DataFrame({spec.label: _display_column(rows, spec) for spec in specs})
    out.attrs["decimals"] = {spec.label: (0 if spec.fmt == "int" else spec.decimals) for spec in specs
                             if spec.fmt in ("pct", "pts", "num", "int")}
    datatypes = ["markdown" if spec.key == "repo_id" else ("str" if spec.fmt == "text" else "number")
                 for spec in specs]
    return out, datatypes


def table_value(frame: pd.DataFrame) -> dict:
    """The gr.Dataframe value of a shaped frame: the numbers themselves (the grid sorts them as numbers), each
    shown at its column's decimals with trailing zeros kept ("2.50" beside "2.42", not "2.5"); a missing value
    shows as an empty cell."""
    decimals = frame.attrs.get("decimals", {})
    shown = [frame[c].map(_fixed(decimals[c])) if c in decimals else frame[c].map(_text) for c in frame.columns]
    data = frame.astype(object).where(frame.notna(), None).to_numpy().tolist()
    width = len(frame.columns)
    return {"headers": [str(c) for c in frame.columns], "data": data,
            "metadata": {"display_value": [list(r) for r in zip(*shown, strict=True)] if width else [],
                         "styling": [[""] * width for _ in range(len(frame))]}}


def _fixed(decimals: int):
    return lambda v: "" if v is None or pd.isna(v) else f"{float(v):.{decimals}f}"


def _text(v) -> str:
    return "" if v is None or (isinstance(v, float) and np.isnan(v)) else str(v)


def column_widths(frame: pd.DataFrame) -> list[str]:
    """gr.Dataframe ``column_widths`` for a shaped frame: wide enough for the header on one line and for the
    widest value (numbers: from their largest magnitude and the decimals they use; text: the first
    TEXT_SAMPLE_ROWS rows, model names up to MODEL_MAX_CHARS, then they wrap); the rank column is RANK_WIDTH_PX
    (the pinned model column's CSS offset). A 1,279-row, 48-column view takes a few milliseconds."""
    numeric = [label for label in frame.columns if pd.api.types.is_numeric_dtype(frame[label])
               and not pd.api.types.is_bool_dtype(frame[label])]
    longest = dict(zip(numeric, number_chars(frame[numeric]), strict=True)) if numeric else {}
    widths = []
    for label in frame.columns:
        if label == "rank":
            widths.append(f"{RANK_WIDTH_PX}px")
            continue
        if label not in longest:
            texts = frame[label].head(TEXT_SAMPLE_ROWS).dropna().astype(str)
            if label == "model":
                texts = texts.map(visible_text)
            longest[label] = int(texts.str.len().max()) if len(texts) else 0
        cap = MODEL_MAX_CHARS if label == "model" else TEXT_MAX_CHARS
        chars = max(len(str(label)), min(longest[label], cap))
        widths.append(f"{round(chars * CHAR_PX + CELL_PAD_PX)}px")
    return widths


def number_chars(numbers: pd.DataFrame) -> list[int]:
    """Per column, the characters of its widest number as the table shows it (sign, digits, decimals used)."""
    values = numbers.astype("float64").to_numpy(na_value=np.nan) if len(numbers) else np.zeros((0, numbers.shape[1]))
    finite = np.isfinite(values)
    safe = np.where(finite, values, 0.0)
    largest = np.abs(safe).max(axis=0, initial=0.0)
    digits = np.where(largest >= 1, np.floor(np.log10(np.maximum(largest, 1))) + 1, 1)
    decimals = np.full(values.shape[1], 5)
    for d in range(4, -1, -1):  # the fewest decimals that show every value exactly
        scaled = safe * 10**d
        decimals = np.where(np.isclose(scaled, np.round(scaled)).all(axis=0), d, decimals)
    chars = digits + np.where(decimals > 0, decimals + 1, 0) + (safe < 0).any(axis=0)
    return [int(c) if f.any() else 0 for c, f in zip(chars, finite.T, strict=True)]


def visible_text(markdown: str) -> str:
    """What a model cell's markdown shows: link text without its target, escapes and entities resolved."""
    text = _MARKDOWN_LINK.sub(r"\1", str(markdown))
    return html.unescape(_MARKDOWN_ESCAPE.sub(r"\1", text))


ZERO_IS_EMPTY = frozenset({"n_suspect"})  # a count that is 0 on every row of a board says nothing there


def _has_values(values: pd.Series) -> bool:
    if values.name in ZERO_IS_EMPTY and pd.api.types.is_numeric_dtype(values):
        return bool(values.fillna(0).ne(0).any())
    return bool(values.notna().any()) and not (values.dtype == object and values.fillna("").eq("").all())


def _yes_no(value) -> str:
    """A candidate's verdict as "yes"/"no"; blank where there is none (no gains yet)."""
    if value is None or (isinstance(value, float) and np.isnan(value)) or value is pd.NA:
        return ""
    return "yes" if bool(value) else "no"


def _display_column(frame: pd.DataFrame, spec: Column) -> pd.Series:
    values = frame[spec.key]
    if spec.key == "repo_id":
        links = values.map(model_link)
        return links.where(~frame["is_baseline"].astype(bool), links + " (base)")
    if spec.key == "revision":  # a commit sha reads fine as its first 8 characters; exports keep all 40
        return values.map(lambda v: str(v)[:8] if isinstance(v, str) and SHA.match(v) else str(v))
    if spec.key == "beats_base":
        measured = ~frame["is_baseline"].astype(bool)
        if "mean_gain" in frame:
            measured &= frame["mean_gain"].notna()  # no mean gain: not "no", unmeasured
        return values.map(_yes_no).where(measured, "")
    if spec.fmt in ("pct", "pts"):
        return (pd.to_numeric(values, errors="coerce") * 100).round(spec.decimals)
    if spec.fmt == "num":
        return pd.to_numeric(values, errors="coerce").round(spec.decimals)
    if spec.fmt == "int":
        return pd.to_numeric(values, errors="coerce").round().astype("Int64")
    # a "str" cell is shown by the Dataframe as text (the browser escapes it): escaping here showed "&lt;" to users
    return values.map(_text)


def rank_text(row: pd.Series) -> str:
    """"rank 3", or why the model is listed without a rank (no mean gain: not every suite target scored)."""
    rank = row.get("rank")
    if rank is None or pd.isna(rank):
        return "unranked (no mean gain: not every suite target is scored)"
    return f"rank {int(rank)}"


def status_line(board: Leaderboard, view: pd.DataFrame, query: ViewQuery) -> str:
    shown = len(view) if query.max_rows == "all" else min(len(view), int(query.max_rows))
    full = int(board.rows["mean_score"].notna().sum()) if len(board.rows) else 0
    beating = int(board.rows["beats_base"].fillna(False).astype(bool).sum()) if len(board.rows) else 0
    ranked = int(board.rows["rank"].notna().sum()) if len(board.rows) else 0
    unranked = len(board.rows) - ranked
    why = "probe only" if board.source != PROJECT_SOURCE else "not every target scored"
    listed = f", **{unranked:,}** listed unranked ({why}: no mean gain)" if unranked else ""
    parts = [(f"**{ranked:,}** models ranked{listed}, **{full:,}** with every target of the suite "
             f"({len(board.suite)} targets), **{beating:,}** beat the base beyond seed noise.")]
    if len(view) != len(board.rows) or shown != len(view):
        parts.append(f"Showing {shown:,} of {len(view):,} matching models.")
    if query.sort_by != "mean_gain":
        parts.append(f"Sorted by {column_for(query.sort_by).label}; rank is by mean gain.")
    parts.append(_estimand_note(board))
    parts.append(hidden_filters_note(board))
    if board.dropped:
        parts.append("Dropped from the suite (the base stays near chance there): "
                     f"{markdown_text(', '.join(board.dropped))}.")
    return " ".join(p for p in parts if p)


def _estimand_note(board: Leaderboard) -> str:
    """Which mean gain the board ranks by, when it is not the plain mean over every suite target."""
    notes = []
    if board.include_seen:
        notes.append("Mean gains include the targets a model was trained on.")
    elif trained := _models_with(board, "n_seen"):
        notes.append(f"Mean gains leave out the suite targets a model was trained on ({_models(trained)}).")
    suspect = _models_with(board, "n_suspect")
    cells = int(board.rows["n_suspect"].sum()) if suspect else 0
    if suspect and board.include_suspect:
        notes.append(f"Mean gains include {cells:,} suspect imported cells ({_models(suspect)}).")
    elif suspect:
        notes.append(f"Mean gains leave out {cells:,} suspect imported cells: {_models(suspect)} whose published "
                     "scores fit a neighbouring column of the file (column-shifted rows).")
    return " ".join(notes)


def _models_with(board: Leaderboard, column: str) -> int:
    return int((board.rows[column] > 0).sum()) if column in board.rows else 0


def _models(n: int) -> str:
    return f"{n:,} {'model' if n == 1 else 'models'}"


def sort_choices(board: Leaderboard) -> list[tuple[str, str]]:
    """(label, key) of every column a user can sort this board by: mean gain first (always: the board's own order),
    then the other columns in their declared order, then each target's gain (its score sorts alike); another column
    no model has a value in, or one value for all, is left out (sorting by it would do nothing)."""
    rows = board.rows
    keys = [c for c in rows.columns if c not in NOT_SORTABLE and not c.startswith("score:")
            and column_for(c).higher_is_better is not None and (c == "mean_gain" or rows[c].nunique(dropna=True) > 1)]
    keys.sort(key=lambda k: (k != "mean_gain", ":" in k))  # stable: the declared order within each part
    return [(f"{column_for(k).label} ({column_for(k).group})" if ":" in k else column_for(k).label, k) for k in keys]


NOT_SORTABLE = ("rank", "repo_id", "revision", "is_baseline", "pipeline_tag")


EMPTY_FILTERS = (("licenses", "license", "licenses"), ("min_downloads", "downloads", "download counts"),
                 ("sizes", "num_params", "parameter counts"))


def empty_filters(board: Leaderboard | None) -> dict[str, str]:
    """{filter: what this board lacks} for each filter whose column has no value on it (the page hides them)."""
    rows = board.rows if board is not None else pd.DataFrame()
    return {name: what for name, column, what in EMPTY_FILTERS
            if column not in rows or rows[column].dropna().empty}


def hidden_filters_note(board: Leaderboard) -> str:
    """The status line's sentence on the filters this board hides, or ""."""
    lacking = list(empty_filters(board).values())
    if not lacking or board.rows.empty:
        return ""
    names = lacking[0] if len(lacking) == 1 else ", ".join(lacking[:-1]) + " or " + lacking[-1]
    return f"Its source records no {names}: {'that filter is' if len(lacking) == 1 else 'those filters are'} hidden."


def license_choices(board: Leaderboard) -> list[str]:
    if board.rows.empty or "license" not in board.rows:
        return []
    return sorted({str(v) for v in board.rows["license"].dropna().unique()})


def group_choices() -> list[str]:
    return list(GROUPS)
