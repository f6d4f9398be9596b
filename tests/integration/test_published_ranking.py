"""The project's ranking of IBM's imported results reproduces the six published per-architecture orders."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pytest

from data.metrics import PUBLISHED_SOURCE
from data.published import BUNDLED_DIR, import_published
from data.store import Store
from tests.helpers.boards import load_leaderboard

pytestmark = pytest.mark.slow

# IBM's published tables, gzipped verbatim (source and licence in its README).
TABLES_DIR = Path(__file__).resolve().parents[1] / "fixtures" / "model_recycling"
TABLES = {
    "FacebookAI/roberta-base": "roberta-base_table.csv.gz",
    "google-bert/bert-base-uncased": "bert-base-uncased_table.csv.gz",
    "google-bert/bert-base-cased": "bert-base-cased_table.csv.gz",
    "google-t5/t5-base": "t5-base_table.csv.gz",
    "google/t5-v1_1-base": "google_t5-v1_1-base_table.csv.gz",
    "microsoft/deberta-v3-base": "microsoft_deberta-v3-base_table.csv.gz",
}


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    store = Store(tmp_path_factory.mktemp("published") / "lb.db")
    import_published(store, BUNDLED_DIR)
    return store


def _key(avg: float, probe: float) -> tuple:
    """(avg, probe), both in points, rounded: the site's sort keys."""
    return (None if math.isnan(avg) else round(avg, 2), None if math.isnan(probe) else round(probe, 4))


@pytest.mark.parametrize("base_id", sorted(TABLES))
def test_published_order_is_reproduced(store, base_id):
    table = pd.read_csv(TABLES_DIR / TABLES[base_id])
    # every cell counted, as the site did (by default a board leaves its suspect cells out of the mean gain)
    board = load_leaderboard(store, base_id, PUBLISHED_SOURCE, include_suspect=True)

    assert round(100 * board.baseline.iloc[0]["mean_score"], 2) == round(table.iloc[0]["avg"], 2)
    # The site ranks models with every target or none (probe only); partly tested rows are left out.
    ours = board.rows[(board.rows["n_targets"] == 0) | (board.rows["n_targets"] == len(board.suite))]
    assert len(board.suite) == 36 and len(ours) == len(table) - 1

    published = table.iloc[1:]  # its avg and mnli_lp are in points
    our_keys = [_key(100 * s, 100 * p) for s, p in zip(ours["mean_score"], ours["probe_accuracy"], strict=True)]
    their_keys = [_key(a, p) for a, p in zip(published["avg"], published["mnli_lp"], strict=True)]
    assert our_keys == their_keys  # the rank order, avg to 2 decimals
    # Within a run of equal keys the order is a tie (ours breaks it by repo_id): same models per run.
    ours_by_key, theirs_by_key = {}, {}
    for key, name in zip(our_keys, ours["repo_id"], strict=True):
        ours_by_key.setdefault(key, []).append(name)
    for key, name in zip(their_keys, published["model_name"], strict=True):
        theirs_by_key.setdefault(key, []).append(name)
    assert {k: sorted(v) for k, v in ours_by_key.items()} == {k: sorted(v) for k, v in theirs_by_key.items()}
    unique = [name for key, name in zip(our_keys, ours["repo_id"], strict=True) if len(ours_by_key[key]) == 1]
    assert unique == [name for key, name in zip(their_keys, published["model_name"], strict=True)
                      if len(theirs_by_key[key]) == 1]  # where the keys decide, the very same models
