"""The store adapter: a published 2023 board carries the parameter count and date each row recorded."""

from __future__ import annotations

from data.metrics import PUBLISHED_SOURCE
from data.published import BASELINE_REVISION, PUBLISHED_CONFIG_HASH
from data.records import Score
from data.store import Store
from service.boards import published_metadata
from tests.helpers.boards import load_leaderboard

BASE = "FacebookAI/roberta-base"


def published_store(path) -> Store:
    store = Store(path)

    def score(repo_id, revision, scorer, metric, target, value, seed=0, extra=None):
        return Score(repo_id=repo_id, revision=revision, scorer=scorer, metric=metric, target=target, value=value,
                     seed=seed, config_hash=PUBLISHED_CONFIG_HASH, source=PUBLISHED_SOURCE, base_id=BASE,
                     extra=extra or {})

    store.add_scores([
        *(score(BASE, BASELINE_REVISION, "intertraining", "target_score", "sst2", v, seed=i)
          for i, v in enumerate((0.90, 0.92))),
        score("a/small", "published-row-1", "linear_probe", "probe_accuracy", "mnli", 0.6,
              extra={"num_params": 40_000_000, "last_modified": "2022-08-04T10:36:41.000Z", "model_type": "roberta"}),
        score("a/small", "published-row-1", "intertraining", "target_score", "sst2", 0.95),
        score("b/noprobe", "published-row-2", "intertraining", "target_score", "sst2", 0.93,
              extra={"num_params": 124_647_170}),  # no probe score: its metadata is not read
    ])
    return store


def test_published_rows_carry_their_parameter_count_and_date(tmp_path):
    store = published_store(tmp_path / "pub.db")
    metadata = published_metadata(store, BASE)
    assert list(metadata.index) == ["a/small"]
    assert (metadata.at["a/small", "num_params"], metadata.at["a/small", "last_modified"]) == (40_000_000,
                                                                                              "2022-08-04")
    rows = load_leaderboard(store, BASE, PUBLISHED_SOURCE).rows.set_index("repo_id")
    assert rows.at["a/small", "num_params"] == 40_000_000 and rows.at["a/small", "last_modified"] == "2022-08-04"
    assert rows["num_params"].isna()["b/noprobe"]  # shown under "unknown" by the size filter
    assert list(rows.index) == ["a/small", "b/noprobe"]  # the ranking itself is unchanged by metadata


def test_trained_targets_read_the_model_cards_datasets():
    from service.boards import trained_targets

    targets = {"sst2", "rte", "trec", "tweet_eval_irony"}
    assert trained_targets(("transformers", "dataset:sst2"), targets) == {"sst2"}
    assert trained_targets(("dataset:stanfordnlp/SST2",), targets) == {"sst2"}  # a Hub id, any case
    assert trained_targets(("dataset:nyu-mll/glue",), targets) == {"sst2", "rte"}  # which GLUE task: unknown
    assert trained_targets(("dataset:tweet_eval_irony", "license:mit"), targets) == {"tweet_eval_irony"}
    assert trained_targets(("dataset:imdb",), targets) == frozenset() and trained_targets((), targets) == frozenset()
