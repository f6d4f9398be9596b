"""The plain records the scoring code passes around: labelled examples and a loaded target."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True, slots=True)
class Example:
    """One labelled example: a text (and a second one for sentence-pair tasks) and a class id."""

    text: str
    text_pair: str | None
    label: int  # class id in [0, num_labels); regression targets (STS-B) use a float label


@dataclass(frozen=True, slots=True, kw_only=True)
class TargetData:
    """A target dataset ready for fine-tuning: splits, label names, the metric, and where it came from."""

    name: str
    train: tuple[Example, ...]
    eval: tuple[Example, ...]  # model selection / early stopping
    test: tuple[Example, ...]  # the reported score
    label_names: tuple[str, ...]
    metric: Literal["accuracy", "spearman"] = "accuracy"
    revision: str = ""  # the dataset revision actually used (a commit sha, or a content hash for local dirs)

    @property
    def num_labels(self) -> int:
        return len(self.label_names)

    @property
    def is_pair(self) -> bool:
        return any(e.text_pair is not None for e in self.train[:10])
