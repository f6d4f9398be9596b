"""Source rows that share text with a target's held-out splits: normalised, found, removed before training."""

from __future__ import annotations

import csv
from dataclasses import replace

from data.targets import suite
from scoring.config import QUICK
from scoring.examples import Example
from scoring.overlap import normalise, remove_overlap, texts_of
from scoring.target_data import load_target
from service.study_sources import clean_source, held_out_by_target, target_overlap
from tests.helpers.tiny_suite import write_tiny_suite


def test_normalise_folds_case_punctuation_and_whitespace():
    assert normalise("  It's a  GREAT film!! ") == normalise("it s a great film") == "it s a great film"
    assert normalise("Ｆｕｌｌ‐width – dashes…") == "full width dashes"
    assert normalise("...!") == ""


def test_a_row_is_removed_when_either_text_of_a_pair_is_held_out_and_counted_per_target():
    held = {"a": texts_of([Example("The cat sat.", None, 0)]), "b": texts_of([Example("a dog", "the CAT sat", 1)])}
    rows = (Example("the cat sat", None, 0), Example("no match", "A dog!", 1), Example("kept", "also kept", 0))
    kept, removed = remove_overlap(rows, held)
    assert kept == (Example("kept", "also kept", 0),)
    assert removed == {"a": 1, "b": 2}  # the first row overlaps both targets


def _append_rows(path, sentences, label):
    with open(path, "a", newline="") as f:
        writer = csv.writer(f)
        for s in sentences:
            writer.writerow([s, label])


def test_a_source_that_copies_a_targets_test_sentences_loses_them_before_it_is_subsampled(tmp_path):
    """Seven dogs test sentences, re-cased and re-punctuated, are planted in the cats source's train split: every
    one is removed (with any natural overlap), none is left in the rows the source trains on, and the source still
    draws its full max_train_examples from what is left."""
    root = write_tiny_suite(tmp_path / "data", n_train=200, n_test=60)
    dogs = load_target(suite("dogs", local_root=root)[0], local_root=root)
    planted = [ex.text.upper() + " !" for ex in dogs.test[:7]]
    _append_rows(root / "cats" / "train.csv", planted, "yes")
    held = held_out_by_target("dogs", root)
    [cats] = suite("cats", local_root=root)
    full = load_target(cats, local_root=root)
    expected = sum(normalise(ex.text) in held["dogs"] for ex in full.train)
    assert expected >= 7
    clean = clean_source(cats, replace(QUICK, max_train_examples=150), held, root)
    assert clean.removed == {"dogs": expected} and clean.remaining_overlap == 0
    assert not texts_of(clean.data.train) & held["dogs"]
    assert len(clean.data.train) == 150 and clean.data.test == full.test


def test_two_targets_built_from_the_same_text_show_their_overlap(tmp_path):
    """Five dogs test sentences copied into cats' train split: cats|dogs rises by exactly five."""
    root = write_tiny_suite(tmp_path / "data", n_train=100, n_test=40)
    dogs = load_target(suite("dogs", local_root=root)[0], local_root=root)
    cats = load_target(suite("cats", local_root=root)[0], local_root=root)
    planted = [ex.text for ex in dogs.test[:5]]
    assert not {normalise(t) for t in planted} & texts_of((*cats.train, *cats.eval, *cats.test))
    before = target_overlap("cats,dogs", root)
    _append_rows(root / "cats" / "train.csv", planted, "no")
    after = target_overlap("cats,dogs", root)
    assert after["cats|dogs"] == before["cats|dogs"] + 5 and after["dogs|cats"] == before["dogs|cats"]
