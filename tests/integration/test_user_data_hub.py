"""A user's Hub dataset read by the real ``datasets`` client from the project's local Hub server: a pinned revision
is the data read and the revision recorded, ClassLabel ids become their names, and a dataset, configuration, split or
revision the Hub lacks (or a row without a gold label) is one sentence.

``read_hub_dataset`` runs in a child process with ``HF_ENDPOINT`` set to the local Hub: the datasets library reads
the endpoint once, at import (see test_hub_targets.py).
"""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from data.local_hub import LocalHub
from data.user_data import UserData
from tests.helpers.hub_child import run_in_child

ROOT = Path(__file__).resolve().parents[2]
UNKNOWN_SHA = "0123456789abcdef0123456789abcdef01234567"

# Reads each case of argv[1] (a JSON list of read_hub_dataset keyword arguments); one JSON line per case.
READER = r"""
import json, sys
from pathlib import Path
from data.user_data import Columns, UploadLimits, UserDataError, read_hub_dataset

for case in json.loads(sys.argv[1]):
    columns = Columns(**case.pop("columns"))
    limits = UploadLimits(max_bytes=case.pop("max_bytes", 20 * 2**20))
    try:
        data = read_hub_dataset(case.pop("repo_id"), columns=columns, cache_dir=Path(sys.argv[2]), limits=limits,
                                **case)
    except UserDataError as e:
        print(json.dumps({"reason": e.reason}), flush=True)
    else:
        print(json.dumps({"data": data.to_json()}), flush=True)
"""

MULTI_CARD = """---
configs:
- config_name: short
  data_files:
  - split: train
    path: short/train-*
- config_name: long
  data_files:
  - split: train
    path: long/train-*
---
# two configurations
"""


def parquet(texts: list[str], labels: list[int], names: list[str] | None) -> bytes:
    import datasets

    label = datasets.ClassLabel(names=names) if names else datasets.Value("int64")
    features = datasets.Features({"sentence": datasets.Value("string"), "label": label})
    buffer = io.BytesIO()
    datasets.Dataset.from_dict({"sentence": texts, "label": labels}, features=features).to_parquet(buffer)
    return buffer.getvalue()


def review_files(tag: str, n: int) -> dict[str, bytes]:
    """A train split with ClassLabel names and a test split whose third row has no gold label (-1)."""
    names = ["negative", "positive"]
    return {"README.md": b"# reviews\n",
            "data/train.parquet": parquet([f"{tag} review {i}" for i in range(n)], [i % 2 for i in range(n)], names),
            "data/test.parquet": parquet([f"{tag} test {i}" for i in range(4)], [0, 1, -1, 1], names)}


def multi_files() -> dict[str, bytes]:
    return {"README.md": MULTI_CARD.encode(),
            "short/train-00000-of-00001.parquet": parquet(["a", "b", "c", "d"], [0, 1, 0, 1], None),
            "long/train-00000-of-00001.parquet": parquet(["long a", "long b", "long c", "long d"], [7, 7, 3, 3], None)}


def read_in_child(cases: list[dict], tmp: Path, endpoint: str) -> list[dict]:
    return run_in_child(READER, cases, tmp, endpoint=endpoint)


COLUMNS = {"text": "sentence", "label": "label"}


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("user_data_hub")
    with LocalHub() as hub:
        old = hub.add_dataset("someone/reviews", files=review_files("old", 6))
        new = hub.add_dataset("someone/reviews", files=review_files("new", 8))  # main moves on: other rows
        multi = hub.add_dataset("someone/multi", files=multi_files())
        hub.add_dataset("someone/bigdata", files={"data/train.parquet": parquet(
            [f"review {i} " + "x" * 200 for i in range(200)], [i % 2 for i in range(200)], ["neg", "pos"])})
        cases = {
            "pinned": {"repo_id": "someone/reviews", "revision": old},
            "unpinned": {"repo_id": "someone/reviews"},
            "unlabelled row": {"repo_id": "someone/reviews", "split": "test"},
            "missing split": {"repo_id": "someone/reviews", "split": "validation"},
            "missing column": {"repo_id": "someone/reviews", "columns": {"text": "review", "label": "label"}},
            "unknown dataset": {"repo_id": "someone/no_such_dataset"},
            "unknown revision": {"repo_id": "someone/reviews", "revision": UNKNOWN_SHA},
            "config": {"repo_id": "someone/multi", "config": "long"},
            "unknown config": {"repo_id": "someone/multi", "config": "medium"},
            "no config": {"repo_id": "someone/multi"},
            "too large": {"repo_id": "someone/bigdata", "max_bytes": 4096},
        }
        results = read_in_child([{"columns": COLUMNS, **case} for case in cases.values()], tmp, hub.url)
        yield {"results": dict(zip(cases, results, strict=True)), "old": old, "new": new, "multi": multi,
               "tmp": tmp}


def loaded(world, case: str) -> UserData:
    result = world["results"][case]
    assert "data" in result, result
    return UserData.from_json(result["data"])


def test_a_pinned_revision_is_the_data_read_and_the_revision_recorded(world):
    data = loaded(world, "pinned")
    assert data.source == f"hub:someone/reviews:train@{world['old']}" and world["old"] != world["new"]
    assert data.texts == tuple(f"old review {i}" for i in range(6)) and data.pairs is None
    assert data.label_names == ("negative", "positive")  # ClassLabel ids became their names
    assert data.labels == (0, 1, 0, 1, 0, 1) and data.class_counts() == {"negative": 3, "positive": 3}


def test_an_unpinned_read_records_the_commit_it_got(world):
    data = loaded(world, "unpinned")
    assert data.source == f"hub:someone/reviews:train@{world['new']}"
    assert data.texts == tuple(f"new review {i}" for i in range(8))


def test_a_config_is_read_and_named_in_the_source(world):
    data = loaded(world, "config")
    assert data.source == f"hub:someone/multi/long:train@{world['multi']}"
    assert data.texts == ("long a", "long b", "long c", "long d") and data.label_names == ("3", "7")


@pytest.mark.parametrize(("case", "reason"), [
    ("unlabelled row", "Row 3 of the 'test' split of 'someone/reviews' has no label in column 'label'."),
    ("missing split", "The dataset 'someone/reviews' has no split 'validation'; its splits are 'train', 'test'."),
    ("missing column", ("The 'train' split of 'someone/reviews' has no column 'review'; its columns are "
                        "'sentence', 'label'.")),
    ("unknown dataset", "There is no dataset 'someone/no_such_dataset' on the Hub, or it is private."),
    ("unknown revision", f"The dataset 'someone/reviews' has no revision '{UNKNOWN_SHA}'."),
    ("unknown config", "The dataset 'someone/multi' has no configuration 'medium'."),
    ("no config", "The dataset 'someone/multi' has several configurations: pick one."),
])
def test_what_the_hub_lacks_is_one_sentence(world, case, reason):
    assert world["results"][case] == {"reason": reason}


def test_a_dataset_over_the_size_limit_is_refused_from_the_hubs_listing_before_any_download(world):
    reason = world["results"]["too large"]["reason"]
    assert reason.startswith("The dataset 'someone/bigdata' has ") and "over the limit of 4.0 KB" in reason
    fetched = [p for p in world["tmp"].rglob("*") if "bigdata" in str(p)]
    assert fetched == []  # nothing of it was downloaded, so nothing of it is cached
