"""Text shared between a source's training rows and a target's held-out splits, found and removed.

A source model trained on a target's test sentences does not measure transfer: SST-2 and rotten_tomatoes are
built from the same review snippets, and 46 of the 1,000 sst2 test sentences were once in the rotten_tomatoes
rows a study source was trained on. Texts are compared after ``normalise`` (case folded, punctuation dropped,
whitespace collapsed); a row overlaps when any of its texts (the pair's second text too) equals any text of the
target's eval or test split. Pure functions over ``Example`` tuples.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence

from scoring.examples import Example, TargetData

_NOT_WORD = re.compile(r"[\W_]+", re.UNICODE)


def normalise(text: str) -> str:
    """Lower case, NFKC, every run of punctuation, symbols and whitespace one space, trimmed."""
    return _NOT_WORD.sub(" ", unicodedata.normalize("NFKC", text).casefold()).strip()


def texts_of(examples: Iterable[Example]) -> set[str]:
    """The normalised texts of ``examples`` (both texts of a pair); empty ones left out."""
    out = set()
    for ex in examples:
        for text in (ex.text, ex.text_pair):
            if text and (key := normalise(text)):
                out.add(key)
    return out


def held_out_texts(target: TargetData) -> set[str]:
    """The normalised texts of a target's eval and test splits: what no source may have trained on."""
    return texts_of((*target.eval, *target.test))


def overlaps(example: Example, texts: set[str]) -> bool:
    return any(text and normalise(text) in texts for text in (example.text, example.text_pair))


def remove_overlap(rows: Sequence[Example], targets: Mapping[str, set[str]]
                   ) -> tuple[tuple[Example, ...], dict[str, int]]:
    """``rows`` without every row overlapping any target's texts, and how many rows each target removed (a row
    overlapping two targets counts for both)."""
    removed = dict.fromkeys(targets, 0)
    kept = []
    for row in rows:
        hits = [name for name, texts in targets.items() if overlaps(row, texts)]
        for name in hits:
            removed[name] += 1
        if not hits:
            kept.append(row)
    return tuple(kept), removed


def count_overlap(rows: Iterable[Example], texts: set[str]) -> int:
    """Rows of ``rows`` with a text in ``texts``."""
    return sum(overlaps(row, texts) for row in rows)
