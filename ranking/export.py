"""Exports of a leaderboard: CSV, JSON and Parquet with stable column names and natural units.

Columns (README documents them): base_id, source, rank (0 = the base's own row), repo_id, revision,
mean_gain, gain_ci_low, gain_ci_high, beats_base, mean_score, n_targets, n_seeds, gain_df, n_seen, n_suspect,
failed_runs,
then each registered scorer's board columns (data/metrics.py: probe_accuracy, knn_accuracy, logme_target,
free_energy, free_energy_status, llc_mean, llc_std, init_loss, labels_saved), then downloads, likes, license,
num_params, last_modified, pipeline_tag, is_baseline, then score:<target> and gain:<target> for every target,
sorted.
Scores and gains are fractions (0.0123 = 1.23 points); missing values are empty (CSV) or null.
gain_ci_low/high: the 95% interval of mean_gain with gain_df degrees of freedom (ranking/gains.py; the JSON
header's ``gain_interval`` says it in one sentence): for the project's paired runs, Student t with the paired
differences' variance pooled within targets, df = Σ_t (n_t − 1); empty (null) below 2 df, gain_df saying why.

CSV text cells that a spreadsheet would evaluate as a formula (starting with ``=``, ``+``, ``-``, ``@``, a tab
or a carriage return: OWASP's CSV-injection rule) get a leading ``'``, so they open as text. Numbers are
written as numbers; JSON and Parquet keep every value as it is.
"""

from __future__ import annotations

import io
import json

import pandas as pd

from data.escape import csv_cell
from data.metrics import board_keys
from ranking.gains import INTERVALS
from ranking.leaderboard import Leaderboard

FORMATS = ("csv", "json", "parquet")
LEADING = ("base_id", "source", "rank", "repo_id", "revision", "mean_gain", "gain_ci_low", "gain_ci_high",
           "beats_base", "mean_score", "n_targets", "n_seeds", "gain_df", "n_seen", "n_suspect", "failed_runs")
TRAILING = ("downloads", "likes", "license", "num_params", "last_modified", "pipeline_tag", "is_baseline")


def export_columns() -> tuple[str, ...]:
    """The leading columns in the documented order: the scorers' come from their declarations."""
    return (*LEADING, *board_keys(), *TRAILING)


def export_frame(board: Leaderboard, frame: pd.DataFrame | None = None) -> pd.DataFrame:
    """The rows to export (default: baseline + every candidate) in the documented column order."""
    frame = board.to_frame() if frame is None else frame
    frame = frame.copy()
    frame.insert(0, "source", board.source)
    frame.insert(0, "base_id", board.base_id)
    targets = sorted(c for c in frame.columns if c.startswith("score:")) + \
        sorted(c for c in frame.columns if c.startswith("gain:"))
    frame = frame.reindex(columns=[*export_columns(), *targets])
    frame["beats_base"] = frame["beats_base"].astype("boolean")
    frame["is_baseline"] = frame["is_baseline"].astype("boolean")
    return frame


def to_csv(frame: pd.DataFrame) -> bytes:
    text_columns = [c for c in frame.columns if frame[c].dtype == object or pd.api.types.is_string_dtype(frame[c])]
    safe = frame.assign(**{c: frame[c].map(csv_cell) for c in text_columns})
    return safe.to_csv(index=False, float_format="%.17g").encode()


def to_json(board: Leaderboard, frame: pd.DataFrame) -> bytes:
    """One document: the leaderboard's identity, then ``rows`` as objects (pandas' C encoder, 15 digits)."""
    header = {
        "base_id": board.base_id,
        "source": board.source,
        "suite": list(board.suite),
        "config_hashes": dict(board.config_hashes),
        "seed_design": board.seed_design,
        "gain_interval": INTERVALS.get(board.seed_design, ""),
        "include_seen": board.include_seen,
        "include_suspect": board.include_suspect,
        "dropped_targets": list(board.dropped),
        "columns": list(frame.columns),
    }
    rows = frame.to_json(orient="records", double_precision=15)
    return (json.dumps(header, separators=(",", ":"))[:-1] + ',"rows":' + rows + "}").encode()


def to_parquet(frame: pd.DataFrame) -> bytes:
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    return buffer.getvalue()


def render(board: Leaderboard, fmt: str, frame: pd.DataFrame | None = None) -> bytes:
    """The export in one of FORMATS."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown export format {fmt!r}; choose one of {', '.join(FORMATS)}")
    rows = export_frame(board, frame)
    if fmt == "csv":
        return to_csv(rows)
    if fmt == "json":
        return to_json(board, rows)
    return to_parquet(rows)
