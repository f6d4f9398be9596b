"""The model page's pure parts: which model it opens on."""

from __future__ import annotations

import pandas as pd

from data.metrics import PROJECT_SOURCE
from ranking.leaderboard import Leaderboard
from tests.helpers.boards import load_leaderboard
from tests.helpers.leaderboard_store import BASE, build_store
from ui.model_page import top_model


def test_the_model_page_opens_on_the_top_ranked_model_never_the_base(tmp_path):
    board = load_leaderboard(build_store(tmp_path / "lb.db"), BASE, PROJECT_SOURCE)
    assert top_model(board) == "alice/strong"
    shuffled = Leaderboard(base_id=BASE, source=PROJECT_SOURCE, rows=board.rows.iloc[::-1],
                           baseline=board.baseline, suite=board.suite)
    assert top_model(shuffled) == "alice/strong"  # by rank, not by row order


def test_no_ranked_models_no_top_model():
    only_base = Leaderboard(base_id=BASE, source=PROJECT_SOURCE, rows=pd.DataFrame(columns=["rank", "repo_id"]),
                            baseline=pd.DataFrame({"rank": [0], "repo_id": [BASE]}), suite=())
    assert top_model(only_base) is None and top_model(None) is None
