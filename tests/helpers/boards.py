"""What the service layer does to show a board: read it from the store (service/boards.py), rank it (pure)."""

from __future__ import annotations

from collections.abc import Mapping

from data.metrics import PROJECT_SOURCE
from data.store import Store
from ranking.leaderboard import Leaderboard, leaderboard_from
from ranking.study_report import StudyReport, study_report
from service.boards import read_board, read_study


def load_leaderboard(store: Store, base_id: str, source: str = PROJECT_SOURCE, **options) -> Leaderboard:
    return leaderboard_from(read_board(store, base_id, source), **options)


def report_of(store: Store, base_id: str, *, meta: Mapping | None = None, **options) -> StudyReport:
    """The study report of ``base_id``'s project board as the app builds it; ``meta``: the snapshot's meta when the
    store was seeded from one (its design, source checks and contamination), as the app's Insights tab passes it."""
    from ui.handlers import published_baseline_board

    board = load_leaderboard(store, base_id)
    options.setdefault("published", published_baseline_board(store))
    return study_report(board, read_study(store, board.base_id), meta=meta, **options)
