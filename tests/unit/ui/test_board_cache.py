"""The leaderboard cache: served from memory until the store changes, then rebuilt without blocking."""

from __future__ import annotations

import json
import time

import pytest

from data.metrics import PROJECT_SOURCE
from data.records import Score
from tests.helpers.leaderboard_store import BASE, TRAINED_ON, build_store, sha
from ui.board_cache import BoardKey, LeaderboardService


def test_cached_until_the_store_changes_then_rebuilt_in_the_background(tmp_path):
    store = build_store(tmp_path / "lb.db")
    service = LeaderboardService(store, recheck_s=0.0)
    first = service.board(BoardKey(BASE, PROJECT_SOURCE))
    assert service.board(BoardKey(BASE, PROJECT_SOURCE)) is first  # unchanged store: the same object
    key = BoardKey(BASE, PROJECT_SOURCE)
    assert service.rendered(key, "csv") is service.rendered(key, "csv")

    store.add_scores([Score(repo_id="zed/new", revision=sha("zed/new"), scorer="intertraining",
                            metric="target_score", target=t, seed=0, value=0.99, config_hash="ft1", base_id=BASE)
                      for t in ("sst2", "trec")])
    stale = service.board(BoardKey(BASE, PROJECT_SOURCE))
    assert stale is first  # served at once while the new one builds
    deadline = time.monotonic() + 10
    while (fresh := service.board(BoardKey(BASE, PROJECT_SOURCE))) is first and time.monotonic() < deadline:
        time.sleep(0.02)
    assert fresh.rows.iloc[0]["repo_id"] == "zed/new"
    assert b"zed/new" in service.rendered(BoardKey(BASE, PROJECT_SOURCE), "csv")
    assert service.board(BoardKey("org/base", PROJECT_SOURCE)) is fresh and service.sources(BASE) == [PROJECT_SOURCE]


def test_rendered_top_n_keeps_the_baseline_and_the_order(tmp_path):
    service = LeaderboardService(build_store(tmp_path / "lb.db"))
    top2 = service.rendered(BoardKey(BASE, PROJECT_SOURCE), "csv", limit=2).decode().splitlines()
    assert [line.split(",")[3] for line in top2[1:]] == [BASE, "alice/strong", "bob/middling"]


def test_include_seen_is_part_of_every_key_and_the_default_is_the_zero_shot_board(tmp_path):
    """alice/strong was trained on sst2: by default its mean gain is trec's alone, (0.80 - 0.73) = +7.00 points;
    with the targets it was trained on, (5.00 + 7.00) / 2 = +6.00. Each board and each render is cached on its
    own."""
    service = LeaderboardService(build_store(tmp_path / "lb.db", tags=TRAINED_ON))
    zero_shot = service.board(BoardKey(BASE, PROJECT_SOURCE))
    included = service.board(BoardKey(BASE, PROJECT_SOURCE), include_seen=True)
    assert service.board(BoardKey(BASE, PROJECT_SOURCE), False) is zero_shot and zero_shot is not included
    assert service.board(BoardKey("org/base", PROJECT_SOURCE), True) is included
    assert (zero_shot.include_seen, included.include_seen) == (False, True)
    alice = {name: board.rows.set_index("repo_id").loc["alice/strong"] for name, board in
             (("zero-shot", zero_shot), ("included", included))}
    assert alice["zero-shot"]["mean_gain"] == pytest.approx(0.07) and alice["zero-shot"]["n_seen"] == 1
    assert alice["zero-shot"]["gain_ci_low"] == pytest.approx(0.07 - 4.302653 * 0.002 / 3**0.5, abs=1e-6)
    assert alice["included"]["mean_gain"] == pytest.approx(0.06)
    # two targets x 3 seeds, each seed SD 0.002: the seed variance pooled over targets (df 4), SE = sqrt(s² · 2/3) / 2
    assert alice["included"]["gain_ci_low"] == pytest.approx(0.06 - 2.776445 * (4e-6 * 2 / 3) ** 0.5 / 2, abs=1e-6)

    plain = service.rendered(BoardKey(BASE, PROJECT_SOURCE), "json")
    with_seen = service.rendered(BoardKey(BASE, PROJECT_SOURCE), "json", include_seen=True)
    assert service.rendered(BoardKey(BASE, PROJECT_SOURCE), "json", include_seen=True) is with_seen
    assert service.rendered(BoardKey(BASE, PROJECT_SOURCE), "json", include_seen=False) is plain
    for data, flag, gain in ((plain, False, 0.07), (with_seen, True, 0.06)):
        doc = json.loads(data)
        assert doc["include_seen"] is flag
        assert {r["repo_id"]: r["mean_gain"] for r in doc["rows"]}["alice/strong"] == pytest.approx(gain)
    top1 = service.rendered(BoardKey(BASE, PROJECT_SOURCE), "csv", limit=1, include_seen=True).decode().splitlines()
    repo, revision, mean_gain = top1[2].split(",")[3:6]  # the base's row, then the top model
    assert len(top1) == 3 and (repo, revision) == ("alice/strong", sha("alice/strong"))
    assert float(mean_gain) == pytest.approx(0.06)

    unknown = service.board(BoardKey("nobody/nothing", PROJECT_SOURCE), include_seen=True)
    assert unknown.include_seen and unknown.rows.empty and unknown.base_id == "nobody/nothing"


def test_concurrent_first_requests_build_a_cold_board_once(tmp_path, caplog):
    import logging
    from concurrent.futures import ThreadPoolExecutor

    service = LeaderboardService(build_store(tmp_path / "lb.db"))
    with caplog.at_level(logging.INFO, logger="ui.board_cache"), ThreadPoolExecutor(8) as pool:
        boards = list(pool.map(lambda _: service.board(BoardKey(BASE, PROJECT_SOURCE)), range(16)))
    assert all(b is boards[0] for b in boards)
    assert sum("built leaderboard" in r.getMessage() for r in caplog.records) == 1
