"""The leaderboard cache: served from memory until the store changes, then rebuilt without blocking."""

from __future__ import annotations

import time

from data.metrics import PROJECT_SOURCE
from data.records import Score
from tests.helpers.leaderboard_store import BASE, build_store, sha
from ui.service import LeaderboardService


def test_cached_until_the_store_changes_then_rebuilt_in_the_background(tmp_path):
    store = build_store(tmp_path / "lb.db")
    service = LeaderboardService(store, recheck_s=0.0)
    first = service.board(BASE, PROJECT_SOURCE)
    assert service.board(BASE, PROJECT_SOURCE) is first  # unchanged store: the same object
    assert service.rendered(BASE, PROJECT_SOURCE, "csv") is service.rendered(BASE, PROJECT_SOURCE, "csv")

    store.add_scores([Score(repo_id="zed/new", revision=sha("zed/new"), scorer="intertraining",
                            metric="target_score", target=t, seed=0, value=0.99, config_hash="ft1", base_id=BASE)
                      for t in ("sst2", "trec")])
    stale = service.board(BASE, PROJECT_SOURCE)
    assert stale is first  # served at once while the new one builds
    deadline = time.monotonic() + 10
    while (fresh := service.board(BASE, PROJECT_SOURCE)) is first and time.monotonic() < deadline:
        time.sleep(0.02)
    assert fresh.rows.iloc[0]["repo_id"] == "zed/new"
    assert b"zed/new" in service.rendered(BASE, PROJECT_SOURCE, "csv")
    assert service.board("org/base", PROJECT_SOURCE) is fresh and service.sources(BASE) == [PROJECT_SOURCE]


def test_rendered_top_n_keeps_the_baseline_and_the_order(tmp_path):
    service = LeaderboardService(build_store(tmp_path / "lb.db"))
    top2 = service.rendered(BASE, PROJECT_SOURCE, "csv", limit=2).decode().splitlines()
    assert [line.split(",")[3] for line in top2[1:]] == [BASE, "alice/strong", "bob/middling"]
