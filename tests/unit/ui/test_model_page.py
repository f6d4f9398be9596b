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


def test_a_published_models_page_reads_its_payloads_without_guided_rates_or_curves(tmp_path):
    """Published 2023 runs carry a PublishedRow payload, not a FinetuneRun: the page must still open (a
    browser test once saw 'Error' there)."""
    from data.metrics import PUBLISHED_SOURCE
    from data.records import Score
    from data.store import Store
    from ui.model_page import free_energy_details, guided_dropout_rates, sample_efficiency_points

    store = Store(tmp_path / "pub.db")
    store.add_scores([Score(repo_id="ibm/x", revision="published-row-1", scorer="intertraining", metric="target_score",
                            target="sst2", seed=0, value=0.9, config_hash="p", source=PUBLISHED_SOURCE,
                            base_id="FacebookAI/roberta-base", extra={"num_params": 5, "last_modified": None,
                                                                     "model_type": "roberta"})])
    assert guided_dropout_rates(store, "ibm/x", "published-row-1").empty
    assert sample_efficiency_points(store, "ibm/x", "FacebookAI/roberta-base").empty
    assert free_energy_details(store, "ibm/x", "published-row-1")[0].startswith("No free-energy score")
    from ui.model_page import scored_revisions

    assert scored_revisions(store, "ibm/x")["last scored"].iloc[0].startswith("by IBM, 2023 (imported ")


def test_a_missing_license_is_left_out_never_nan(tmp_path):
    import math

    from ui.model_page import find_row, header_markdown

    board = load_leaderboard(build_store(tmp_path / "lb.db"), BASE, PROJECT_SOURCE)
    row = find_row(board, "alice/strong").copy()
    row["license"] = math.nan  # a candidate whose card names none: the frame fills in NaN
    page = header_markdown(board, row, "alice/strong")
    assert "| license |" not in page and "nan" not in page.lower() and "| | |" not in page
    assert "| mean gain |" in page and "| measure | value |" in page
    row["license"] = "mit"
    assert "| license | mit |" in header_markdown(board, row, "alice/strong")


def test_each_chain_shows_its_own_verdict(tmp_path):
    """A chain whose mean draw loss fell below L_n(w*) (λ̂ < 0) is not "ok" (an earlier page said so)."""
    from data.payloads import FreeEnergyRun
    from data.records import Score
    from data.store import Store
    from ui.model_page import free_energy_details

    store = Store(tmp_path / "fe.db")
    run = FreeEnergyRun(per_chain=(3.1, -2.28, float("nan")), gate=("1 of 3 chains below L_n(w*)",))
    store.add_scores([Score(repo_id="a/m", revision="r", scorer="free_energy", metric=metric, value=value,
                            config_hash="f", base_id="org/base", status="unconverged", extra=run.to_json())
                      for metric, value in (("free_energy", 900.0), ("llc_mean", 0.4))])
    _, chains = free_energy_details(store, "a/m", "r")
    assert list(chains["status"]) == ["ok", "below L_n(w*) (λ̂ < 0)", "diverged (NaN)"]
