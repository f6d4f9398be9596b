"""Hub targets loaded by the real ``datasets.load_dataset`` from the project's local Hub server: the revision a spec
pins is the data loaded and the revision recorded, an unpinned spec records the commit it got, a published spec
reads its own config of a multi-config repo, and what cannot be loaded is a TargetError naming the target.

``load_target`` runs in a child process with ``HF_ENDPOINT`` set to the local Hub, as a deployment sets it: the
datasets library reads the endpoint once, at import.
"""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from data.local_hub import LocalHub
from tests.helpers.hub_child import run_in_child

ROOT = Path(__file__).resolve().parents[2]
DATASETS_DIR = ROOT / "tests" / "fixtures" / "datasets"
NLI = ("entailment", "neutral", "contradiction")
UNKNOWN_SHA = "0123456789abcdef0123456789abcdef01234567"

# Loads each case of argv[1] (a JSON list) with scoring.target_data.load_target; one JSON line per case.
LOADER = r"""
import dataclasses, json, sys
from pathlib import Path
from data.targets import TargetSpec, suite
from scoring.target_data import load_target

cases, cache_dir, local_root = json.loads(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])
for case in cases:
    if "suite" in case:
        spec = dataclasses.replace(suite(case["suite"], local_root=local_root)[0], revision=case["revision"])
    else:
        spec = TargetSpec(**{k: tuple(v) if isinstance(v, list) else v for k, v in case["spec"].items()})
    try:
        data = load_target(spec, cache_dir=cache_dir)
    except Exception as e:
        print(json.dumps({"error": type(e).__name__, "message": str(e)}), flush=True)
        continue
    rows = lambda split: [[e.text, e.text_pair, e.label] for e in split]
    print(json.dumps({"name": data.name, "revision": data.revision, "label_names": list(data.label_names),
                      "train": rows(data.train), "eval": rows(data.eval), "test": rows(data.test)}), flush=True)
"""


def parquet(columns: dict, features) -> bytes:
    import datasets

    buffer = io.BytesIO()
    datasets.Dataset.from_dict(columns, features=features).to_parquet(buffer)
    return buffer.getvalue()


def nli_files(tag: str, n_train: int) -> dict[str, bytes]:
    import datasets

    features = datasets.Features({"premise": datasets.Value("string"), "hypothesis": datasets.Value("string"),
                                  "label": datasets.ClassLabel(names=list(NLI))})

    def split(n: int, name: str) -> bytes:  # every 7th row has no gold label (-1), as e-SNLI has
        return parquet({"premise": [f"{tag} {name} premise {i}" for i in range(n)],
                        "hypothesis": [f"{tag} {name} hypothesis {i}" for i in range(n)],
                        "label": [-1 if i % 7 == 6 else i % 3 for i in range(n)]}, features)

    return {"README.md": b"# toy NLI\n", "data/train.parquet": split(n_train, "train"),
            "data/test.parquet": split(9, "test")}


GLUE_CARD = """---
configs:
- config_name: cola
  data_files:
  - split: train
    path: cola/train-*
  - split: validation
    path: cola/validation-*
  - split: test
    path: cola/test-*
- config_name: sst2
  data_files:
  - split: train
    path: sst2/train-*
  - split: validation
    path: sst2/validation-*
---
# GLUE in miniature: the nyu-mll/glue layout, two configs
"""


def glue_files() -> dict[str, bytes]:
    import datasets

    def sentences(config: str, split: str, names: tuple[str, str], n: int, hidden: bool = False) -> bytes:
        features = datasets.Features({"sentence": datasets.Value("string"),
                                      "label": datasets.ClassLabel(names=list(names)), "idx": datasets.Value("int32")})
        return parquet({"sentence": [f"{config} {split} sentence {i}" for i in range(n)],
                        "label": [-1 if hidden else i % 2 for i in range(n)], "idx": list(range(n))}, features)

    cola, sst2 = ("unacceptable", "acceptable"), ("negative", "positive")
    return {"README.md": GLUE_CARD.encode(),
            "cola/train-00000-of-00001.parquet": sentences("cola", "train", cola, 30),
            "cola/validation-00000-of-00001.parquet": sentences("cola", "validation", cola, 8),
            "cola/test-00000-of-00001.parquet": sentences("cola", "test", cola, 5, hidden=True),  # GLUE hides these
            "sst2/train-00000-of-00001.parquet": sentences("sst2", "train", sst2, 12),
            "sst2/validation-00000-of-00001.parquet": sentences("sst2", "validation", sst2, 4)}


def nli_spec(hub_id: str, revision: str = "") -> dict:
    return {"spec": {"name": "toy_nli", "task": "NLI", "text_fields": ["premise", "hypothesis"], "is_pair": True,
                     "hub_id": hub_id, "eval_split": None, "revision": revision}}


def load_in_child(cases: list[dict], tmp: Path, *, endpoint: str, offline: bool = False) -> list[dict]:
    return run_in_child(LOADER, cases, tmp, endpoint=endpoint, args=(str(DATASETS_DIR),), offline=offline)


def labelled_rows(tag: str, split: str, n: int) -> list[list]:
    return [[f"{tag} {split} premise {i}", f"{tag} {split} hypothesis {i}", i % 3] for i in range(n) if i % 7 != 6]


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("hub_targets")
    with LocalHub() as hub:
        old = hub.add_dataset("someone/toy_nli", files=nli_files("old", 21))
        new = hub.add_dataset("someone/toy_nli", files=nli_files("new", 28))  # main moves on: other rows
        glue = hub.add_dataset("nyu-mll/glue", files=glue_files())
        offline_old = hub.add_dataset("someone/offline_nli", files=nli_files("old", 21))
        offline_new = hub.add_dataset("someone/offline_nli", files=nli_files("new", 28))
        cases = {
            "pinned": nli_spec("someone/toy_nli", old),
            "unpinned": nli_spec("someone/toy_nli"),
            "branch": nli_spec("someone/toy_nli", "main"),
            "glue": {"suite": "published:cola", "revision": glue},
            "missing_repo": nli_spec("someone/no_such_dataset"),
            "missing_revision": nli_spec("someone/toy_nli", UNKNOWN_SHA),
            "warm_cache": nli_spec("someone/offline_nli"),  # caches main (offline_new) for the offline cases
        }
        online = dict(zip(cases, load_in_child(list(cases.values()), tmp, endpoint=hub.url), strict=True))
        offline_cases = {"cached_pin": nli_spec("someone/offline_nli", offline_new),
                         "uncached_pin": nli_spec("someone/offline_nli", offline_old)}
        offline = dict(zip(offline_cases, load_in_child(list(offline_cases.values()), tmp, endpoint=hub.url,
                                                        offline=True), strict=True))
        yield {"online": online, "offline": offline, "old": old, "new": new, "glue": glue,
               "offline_old": offline_old, "offline_new": offline_new}


def test_a_pinned_revision_is_the_data_loaded_and_the_revision_recorded(world):
    data = world["online"]["pinned"]
    assert data["revision"] == world["old"] != world["new"]
    assert data["label_names"] == list(NLI)  # read from the parquet's ClassLabel feature
    assert data["test"] == labelled_rows("old", "test", 9)  # unlabelled rows (-1) dropped
    train = labelled_rows("old", "train", 21)
    assert sorted(data["train"] + data["eval"]) == sorted(train) and len(data["eval"]) == 2  # eval carved: 10%


@pytest.mark.parametrize("case", ["unpinned", "branch"])
def test_an_unpinned_or_branch_spec_records_the_commit_it_loaded(world, case):
    data = world["online"][case]
    assert data["revision"] == world["new"]  # the resolved sha, never "" or the branch name
    assert data["test"] == labelled_rows("new", "test", 9)
    assert sorted(data["train"] + data["eval"]) == sorted(labelled_rows("new", "train", 28))


def test_a_published_spec_reads_its_config_of_a_multi_config_repo(world):
    data = world["online"]["glue"]
    assert data["name"] == "cola" and data["revision"] == world["glue"]
    assert data["label_names"] == ["unacceptable", "acceptable"]
    # GLUE hides its test labels: the published suite scores on validation and carves eval from train
    assert data["test"] == [[f"cola validation sentence {i}", None, i % 2] for i in range(8)]
    train = [[f"cola train sentence {i}", None, i % 2] for i in range(30)]
    assert sorted(data["train"] + data["eval"]) == sorted(train) and len(data["eval"]) == 3


@pytest.mark.parametrize(("case", "message"), [
    ("missing_repo", "target toy_nli: could not load someone/no_such_dataset from the Hub: "),
    ("missing_revision", f"target toy_nli: could not load someone/toy_nli from the Hub: Revision '{UNKNOWN_SHA}'"),
])
def test_what_the_hub_lacks_is_a_target_error_naming_the_target(world, case, message):
    result = world["online"][case]
    assert result.get("error") == "TargetError" and result["message"].startswith(message), result


def test_offline_a_cached_pinned_revision_loads_from_the_cache(world):
    data = world["offline"]["cached_pin"]
    assert data["revision"] == world["offline_new"]
    assert data["test"] == labelled_rows("new", "test", 9)


def test_offline_a_pinned_revision_not_in_the_cache_is_refused_not_swapped_for_another(world):
    """datasets falls back to "the latest cached version" whatever revision was asked for; a pinned target must
    not be scored on another revision's rows."""
    result = world["offline"]["uncached_pin"]
    assert result.get("error") == "TargetError", f"loaded revision {result.get('revision')} instead"
    assert world["offline_old"] in result["message"] and world["offline_new"] in result["message"]


@pytest.mark.slow
def test_an_unreachable_hub_with_no_cache_is_a_target_error(tmp_path):
    """The Hub client retries a refused connection with backoff (about 25 s) before the loader gives up."""
    [result] = load_in_child([nli_spec("someone/toy_nli")], tmp_path, endpoint="http://127.0.0.1:9")
    assert result.get("error") == "TargetError", result
    assert result["message"].startswith("target toy_nli: could not load someone/toy_nli from the Hub: Couldn't reach")
