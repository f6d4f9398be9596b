"""Seeded synthetic targets in the local datasets format, learnable by the tiny models in seconds."""

from __future__ import annotations

import csv
import json
import random
from pathlib import Path

from tests.helpers.tiny_models import WORDS

RULES = {
    "cats": lambda words: int("cat" in words),
    "cats_again": lambda words: int("cat" in words),  # the same rule on other sentences: a related target
    "dogs": lambda words: int("dog" in words),
}


def _sentences(rule_word: str, n: int, rng: random.Random) -> list[list[str]]:
    pool = [w for w in WORDS[:150] if w not in ("cat", "dog")]
    out = []
    for i in range(n):
        words = rng.sample(pool, 8)
        if i % 2:
            words[rng.randrange(8)] = rule_word
        out.append(words)
    return out


def write_tiny_suite(root: Path, *, n_train: int = 400, n_test: int = 200, seed: int = 0) -> Path:
    """One directory per target with dataset.json and train/validation/test CSVs; returns ``root``."""
    for index, (name, rule) in enumerate(RULES.items()):
        rng = random.Random(seed * 100 + index)
        word = "dog" if name == "dogs" else "cat"
        folder = root / name
        folder.mkdir(parents=True, exist_ok=True)
        sizes = {"train": n_train, "validation": n_test // 2, "test": n_test}
        for split, n in sizes.items():
            with open(folder / f"{split}.csv", "w", newline="") as f:
                writer = csv.writer(f)
                writer.writerow(["sentence", "label"])
                for words in _sentences(word, n, rng):
                    writer.writerow([" ".join(words), rule(words)])
        (folder / "dataset.json").write_text(json.dumps({
            "name": name, "task": f"does the sentence contain '{word}' (binary)", "text_fields": ["sentence"],
            "label_field": "label", "label_names": ["no", "yes"], "splits": sizes,
        }))
    return root


def write_reference_text(root: Path, *, n_rows: int, seed: int = 0, name: str = "reference_text") -> Path:
    """One more dataset under ``root``, train.csv only, of ``n_rows`` seeded 8-word sentences (9 tokens each with
    the separator): text for the "local" reference corpus (free energy, guided-dropout Fisher), which reads the
    train text of every dataset under ``root``. Returns ``root``."""
    rng = random.Random(seed)
    folder = root / name
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "train.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["sentence", "label"])
        writer.writerows([" ".join(rng.sample(WORDS[:150], 8)), i % 2] for i in range(n_rows))
    (folder / "dataset.json").write_text(json.dumps({
        "name": name, "task": "reference text (labels unused)", "text_fields": ["sentence"], "label_field": "label",
        "label_names": ["no", "yes"], "splits": {"train": n_rows},
    }))
    return root
