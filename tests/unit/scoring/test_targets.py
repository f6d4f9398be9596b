"""Target suites and loaders: known answers from a few real rows of the 12 local datasets, split rules, errors."""

from __future__ import annotations

import csv
import functools
import json
import re
import shutil
from collections import Counter
from pathlib import Path

import pytest

from data.published import DATASET_COLUMNS
from data.targets import PUBLISHED_SUITE, QUICK_TARGETS, TargetSpec, default_local_root, local_suite, suite
from scoring.examples import TargetData
from scoring.target_data import TargetError, load_target

ROOT = Path(__file__).resolve().parents[3]
DATASETS_DIR = ROOT / "tests" / "fixtures" / "datasets"  # 20/6/6 rows of each shared dataset, see its README
NUM_LABELS = {"ag_news": 4, "banking77": 77, "mrpc": 2, "rotten_tomatoes": 2, "rte": 2, "sick": 3, "sst2": 2,
              "subj": 2, "trec": 6, "tweet_eval_emotion": 4, "tweet_eval_hate": 2, "tweet_eval_irony": 2}
PAIR_TASKS = {"mrpc", "rte", "sick"}


@functools.cache
def _spec(name: str) -> TargetSpec:
    return {s.name: s for s in local_suite(DATASETS_DIR)}[name]


@functools.cache
def _load(name: str) -> TargetData:
    return load_target(_spec(name))


def _meta(name: str) -> dict:
    return json.loads((DATASETS_DIR / name / "dataset.json").read_text())


def _write_dataset(root: Path, name: str, rows: dict[str, list[tuple[str, str]]],
                   label_names=("neg", "pos"), text_fields=("text",)) -> Path:
    """A tiny dataset dir in the local format; rows are (text, label) per split."""
    d = root / name
    d.mkdir(parents=True)
    meta = {"task": "toy", "text_fields": list(text_fields), "label_field": "label", "label_names": list(label_names)}
    (d / "dataset.json").write_text(json.dumps(meta))
    for split, split_rows in rows.items():
        with (d / f"{split}.csv").open("w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["text", "label"])
            writer.writerows(split_rows)
    return d


def test_default_local_root_is_the_shared_datasets_dir_beside_the_repository():
    assert default_local_root() == ROOT.parent / "shared" / "datasets"  # the path only: tests never read it
    assert sorted(s.name for s in local_suite(DATASETS_DIR)) == sorted(NUM_LABELS)


def test_a_missing_local_root_is_named():
    with pytest.raises(FileNotFoundError, match=r"local datasets directory .*nowhere does not exist"):
        suite("quick", local_root=ROOT / "nowhere")


@pytest.mark.parametrize("name", sorted(NUM_LABELS))
def test_every_local_dataset_loads_with_its_label_counts(name):
    data, meta = _load(name), _meta(name)
    assert data.name == name and data.metric == "accuracy"
    assert data.num_labels == NUM_LABELS[name] == len(meta["label_names"])
    assert data.train and data.eval and data.test
    assert data.is_pair == (name in PAIR_TASKS)
    pairs = {e.text_pair is not None for e in (*data.train, *data.eval, *data.test)}
    assert pairs == {name in PAIR_TASKS}
    assert all(0 <= e.label < data.num_labels for e in (*data.train, *data.eval, *data.test))
    if _spec(name).eval_split is not None:  # nothing carved: train matches dataset.json's counts exactly
        counts = Counter(data.label_names[e.label] for e in data.train)
        expected = {k if k in data.label_names else data.label_names[int(k)]: v
                    for k, v in meta["label_counts"]["train"].items()}
        assert counts == expected


def test_known_rows_follow_label_names():
    sst2 = _load("sst2")
    first = sst2.train[0]
    assert first.text.startswith("a stirring , funny and finally transporting re-imagining")
    assert first.label == sst2.label_names.index("positive") == 1
    assert sst2.train[1].text.startswith("soulless and -- even more damning -- virtually joyless")
    assert sst2.train[1].label == sst2.label_names.index("negative") == 0
    names = ["negative", "positive", "negative", "positive", "positive", "negative"]  # test.csv's label_name
    assert [sst2.label_names[e.label] for e in sst2.test] == names

    ag = _load("ag_news")  # label_field is label_name; the 1-based `label` column must agree with it
    assert ag.label_names == ("World", "Sports", "Business", "Sci/Tech")
    assert ag.train[0].label == 3 and ag.train[0].text.startswith("Loosing the War on Terrorism \\\\\"Sven Jaschan")
    assert ag.train[0].text_pair is None  # title and description are joined, not a sentence pair
    with (DATASETS_DIR / "ag_news" / "train.csv").open(newline="") as f:
        assert [int(r["label"]) - 1 for r in csv.DictReader(f)] == [e.label for e in ag.train]


def test_pair_tasks_keep_both_sentences():
    rte = _load("rte")
    premise, hypothesis = rte.test[0].text, rte.test[0].text_pair
    with (DATASETS_DIR / "rte" / "validation.csv").open(newline="") as f:
        row = next(csv.DictReader(f))
    assert (premise, hypothesis) == (row["sentence1"], row["sentence2"])


def test_split_rules_for_missing_files():
    rte, trec, sst2 = _load("rte"), _load("trec"), _load("sst2")
    # rte has no test.csv: test is its validation set, eval is a carved 10% of train
    assert (_spec("rte").eval_split, _spec("rte").test_split) == (None, "validation")
    assert len(rte.test) == 6 and (len(rte.train), len(rte.eval)) == (20 - 2, 2)
    # trec has no validation.csv: test is test.csv, eval is carved from train
    assert (_spec("trec").eval_split, _spec("trec").test_split) == (None, "test")
    assert (len(trec.train), len(trec.eval), len(trec.test)) == (18, 2, 6)
    assert (len(sst2.train), len(sst2.eval), len(sst2.test)) == (20, 6, 6)
    # carving is a disjoint cover of train, independent of the run seed
    full = load_target(TargetSpec(name="rte", task="", text_fields=("sentence1", "sentence2"), is_pair=True,
                                  label_names=_spec("rte").label_names, eval_split="validation",
                                  test_split="validation", local_dir=DATASETS_DIR / "rte"))
    assert Counter(rte.train) + Counter(rte.eval) == Counter(full.train)
    assert not set(rte.train) & set(rte.eval)
    assert load_target(_spec("rte"), seed=7).eval == rte.eval


def test_both_splits_carved_when_only_train_exists(tmp_path):
    rows = [(f"text {i}", "pos" if i % 2 else "neg") for i in range(50)]
    spec = local_suite(_write_dataset(tmp_path, "toy", {"train": rows}).parent)[0]
    assert (spec.eval_split, spec.test_split) == (None, None)
    data = load_target(spec)
    assert (len(data.train), len(data.eval), len(data.test)) == (40, 5, 5)
    assert len({e.text for e in (*data.train, *data.eval, *data.test)}) == 50


def test_subsampling_is_seeded_and_respects_the_caps():
    spec = _spec("sst2")
    a = load_target(spec, max_train=10, max_eval=3, max_test=2, seed=0)
    b = load_target(spec, max_train=10, max_eval=3, max_test=2, seed=0)
    c = load_target(spec, max_train=10, max_eval=3, max_test=2, seed=1)
    assert (len(a.train), len(a.eval), len(a.test)) == (10, 3, 2)
    assert a == b and a.train != c.train and a.eval != c.eval
    assert set(a.train) <= set(_load("sst2").train)
    big = load_target(spec, max_train=10**6)
    assert big.train == _load("sst2").train
    with pytest.raises(ValueError, match="max_train"):
        load_target(spec, max_train=0)


def test_revision_is_a_content_hash(tmp_path):
    shutil.copytree(DATASETS_DIR / "sst2", tmp_path / "sst2")
    original = _load("sst2").revision
    assert re.fullmatch(r"[0-9a-f]{16}", original)
    assert load_target(_spec("sst2"), local_root=tmp_path).revision == original  # the path is not hashed
    train = tmp_path / "sst2" / "train.csv"
    train.chmod(0o644)
    train.write_text(train.read_text().replace("a stirring", "a stirring!", 1))
    edited = load_target(_spec("sst2"), local_root=tmp_path)
    assert edited.revision != original and edited.train[0].text.startswith("a stirring!")


@pytest.mark.parametrize(("rows", "kwargs", "message"), [
    ({"train": [("a", "pos"), ("b", "pos")], "validation": [("v", "neg")], "test": [("c", "neg")]}, {},
     "at least 2 classes"),
    ({"train": [("a", "pos")], "validation": [("v", "pos")], "test": [("c", "pos")]}, {"label_names": ("pos",)},
     "at least 2 classes"),
    ({"train": [("a", "pos"), ("b", "meh")], "test": [("c", "neg")]}, {}, "unknown label value 'meh'"),
    ({"train": [("a", "pos"), ("b", "2")], "test": [("c", "neg")]}, {}, "unknown label value '2'"),
    ({"train": [("a", "pos"), ("b", "neg")], "test": []}, {}, "test.csv is empty"),
    ({"train": [("a", "pos"), ("b", "neg")], "test": [("c", "1")]}, {"text_fields": ("sentence",)},
     r"missing column\(s\) \['sentence'\]"),
])
def test_bad_data_gives_clear_errors(tmp_path, rows, kwargs, message):
    spec = local_suite(_write_dataset(tmp_path, "bad", rows, **kwargs).parent)[0]
    with pytest.raises(TargetError, match=message):
        load_target(spec)


def test_integer_ids_are_accepted_where_names_are_not_used(tmp_path):
    rows = {"train": [("a", "1"), ("b", "0"), ("c", "pos")], "validation": [("v", "0")], "test": [("d", "neg")]}
    data = load_target(local_suite(_write_dataset(tmp_path, "ids", rows).parent)[0])
    assert [e.label for e in data.train] == [1, 0, 1]


def test_named_suites():
    quick = suite("quick", local_root=DATASETS_DIR)
    assert tuple(s.name for s in quick) == QUICK_TARGETS == ("sst2", "rte", "trec")
    assert all(s.is_local for s in quick)
    assert {s.is_pair for s in quick} == {True, False} and _load("trec").num_labels > 2
    assert suite("published") == PUBLISHED_SUITE
    assert len(suite("local", local_root=DATASETS_DIR)) == 12


def test_custom_suites_prefer_local_data_and_take_prefixes(tmp_path):
    assert [(s.name, s.is_local) for s in suite("sst2, rte", local_root=DATASETS_DIR)] == [("sst2", True),
                                                                                           ("rte", True)]
    published = suite("published:sst2,cola", local_root=DATASETS_DIR)
    assert [(s.name, s.hub_id) for s in published] == [("sst2", "nyu-mll/glue"), ("cola", "nyu-mll/glue")]
    assert suite("banking77,anli", local_root=DATASETS_DIR)[1].hub_id == "facebook/anli"
    _write_dataset(tmp_path, "toy", {"train": [("a", "pos"), ("b", "neg")]})
    assert [s.name for s in suite("local", local_root=tmp_path)] == ["toy"]
    assert suite("toy", local_root=tmp_path)[0].local_dir == tmp_path / "toy"


@pytest.mark.parametrize(("name", "suggestion"), [
    ("sst", "sst2"), ("publishd", "published"), ("tweet_ev_emotions", "tweet_ev_emotion"),
    ("local:cola", "cola"), ("hub:sst2", "sst2"), ("sst2,banking", "banking77"),
])
def test_unknown_names_suggest_the_closest(name, suggestion):
    with pytest.raises(KeyError, match=re.escape(suggestion)):
        suite(name, local_root=DATASETS_DIR)


def test_a_target_named_twice_is_rejected():
    with pytest.raises(KeyError, match="twice"):
        suite("sst2,sst2", local_root=DATASETS_DIR)


def test_published_registry_invariants():
    names = [s.name for s in PUBLISHED_SUITE]
    assert len(names) == len(set(names)) == 36
    assert tuple(names) == DATASET_COLUMNS  # exactly the published results columns, in their order
    for spec in PUBLISHED_SUITE:
        assert spec.hub_id and spec.text_fields and spec.label_field and spec.task, spec.name
        assert spec.metric == ("spearman" if spec.name == "stsb" else "accuracy"), spec.name
        assert re.fullmatch(r"([0-9a-f]{40})?", spec.revision), spec.name  # pinned sha or "" (unpinned)
        assert not spec.is_local and spec.train_split, spec.name
        assert spec.eval_split is None or spec.eval_split != spec.test_split, spec.name
        assert not spec.is_pair or len(spec.text_fields) >= 2, spec.name
        assert spec.is_confirmed or spec.note, f"{spec.name}: an unconfirmed mapping must say why"
        if spec.label_names is not None:
            assert len(set(spec.label_names)) == len(spec.label_names) >= 2, spec.name
    tweet = [s for s in PUBLISHED_SUITE if s.name.startswith("tweet_ev_")]
    assert len(tweet) == 6
    assert all((s.hub_id, s.hub_config) == ("cardiffnlp/tweet_eval", s.name.removeprefix("tweet_ev_")) for s in tweet)
