"""Compare 2-4 models of one leaderboard side by side: their rows, one table and the header above it.

Pure functions over a built Leaderboard (no gradio): ``compared_rows`` validates the picked ids (or raises
CompareRejected with a sentence to show), ``compare_table`` shapes the rows as the leaderboard table does
(overview and per-target gain columns), ``compare_header`` says what is compared. The chart is
``ui.insights.compare_gains_figure``.
"""

from __future__ import annotations

from collections.abc import Iterable

import pandas as pd

from data.errors import LeaderboardError
from ranking.columns import OVERVIEW, TARGET_GAINS, format_value
from ranking.leaderboard import Leaderboard
from ui.urls import parse_ids
from ui.views import escape_markdown, model_link, rank_text, shape_rows

MIN_MODELS, MAX_MODELS = 2, 4
COMPARE_GROUPS = (OVERVIEW, TARGET_GAINS)


class CompareRejected(LeaderboardError, ValueError):
    """The picked models cannot be compared; ``reason`` is a plain sentence (escape it for where it lands)."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def compared_rows(board: Leaderboard, ids: str | Iterable[str] | None) -> pd.DataFrame:
    """The leaderboard rows of 2-4 distinct models (the base's own row may be one), in the order picked.

    Raises CompareRejected for fewer than 2 or more than 4 ids, or ids not on this leaderboard.
    """
    picked = parse_ids(ids)
    if len(picked) < MIN_MODELS:
        raise CompareRejected(f"Pick at least {MIN_MODELS} models to compare ({len(picked)} picked).")
    if len(picked) > MAX_MODELS:
        raise CompareRejected(f"Compare at most {MAX_MODELS} models at once ({len(picked)} picked).")
    frame = board.to_frame()
    first = frame.drop_duplicates("repo_id", keep="first").set_index("repo_id", drop=False)
    unknown = [repo_id for repo_id in picked if repo_id not in first.index]
    if unknown:
        raise CompareRejected(f"Not on the {board.base_id} leaderboard ({board.source} scores): "
                              f"{', '.join(unknown)}.")
    return first.loc[list(picked)].reset_index(drop=True)


def compare_table(rows: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """One row per compared model: rank, model, mean gain with its interval, beats base, ..., Δ per target."""
    return shape_rows(rows, COMPARE_GROUPS)


def compare_header(board: Leaderboard, rows: pd.DataFrame) -> str:
    """Markdown: which models, on which leaderboard, with their mean gains (names escaped)."""
    board_name = f"{escape_markdown(board.base_id)} ({escape_markdown(board.source)} scores)"
    lines = [f"### Comparing {len(rows)} models on {board_name}"]
    for _, row in rows.iterrows():
        gain = format_value(row.get("mean_gain"), "pts") or "no mean gain (not every target scored)"
        where = "the base model" if bool(row.get("is_baseline")) else rank_text(row)
        lines.append(f"- {model_link(row['repo_id'])}: {where}, mean gain {gain}")
    lines.append("\nGains are in points over the base's mean over seeds, target by target.")
    return "\n".join(lines)


def with_model(picked: str | Iterable[str] | None, repo_id: str | None) -> tuple[str, ...]:
    """The picked ids with ``repo_id`` added at the end (once). Raises CompareRejected when there is no model to
    add or the comparison already holds MAX_MODELS others."""
    ids = parse_ids(picked)
    repo_id = (repo_id or "").strip()
    if not repo_id:
        raise CompareRejected("Open a model first, then add it to the comparison.")
    if repo_id in ids:
        return ids
    if len(ids) >= MAX_MODELS:
        raise CompareRejected(f"The comparison already has {MAX_MODELS} models: remove one on the leaderboard first.")
    return (*ids, repo_id)
