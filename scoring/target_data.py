"""Load a ``TargetSpec`` into a ``TargetData``: local CSV directories and Hub datasets (through ``datasets``).

Splits follow the spec (see data/targets.py): a split named None is carved from train. Carving holds out a
fixed 10% of train (at least one example) chosen by a seed that depends on the target's name only, never
on the run seed, so every seed and every model is scored on the same held-out examples. When both eval
and test are carved, test is taken first and eval from what is left; train keeps the rest.

Labels: a value that is one of ``label_names`` gets that name's position; otherwise it must be an integer
id into ``label_names`` (shared/datasets/README.md). ``max_train``/``max_eval``/``max_test`` then keep a
seeded random subset (source order kept, no stratification). ``revision`` records exactly which data was
used: the Hub commit sha when it can be resolved, else the pinned one; for local directories the first 16
hex digits of a sha256 over the names and bytes of dataset.json and the CSV files. A target pinned to a commit
sha is loaded at that sha or not at all (offline, the datasets library would give the latest cached revision).
"""

from __future__ import annotations

import hashlib
import logging
import random
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from data.errors import LeaderboardError
from data.hub_datasets import DatasetUnavailable, load_dataset
from data.targets import TargetSpec
from scoring.examples import Example, TargetData

logger = logging.getLogger(__name__)

CARVE_FRACTION = 0.1


class TargetError(LeaderboardError, ValueError):
    """A target's data cannot be used: missing column or file, unknown label, one class, an empty split."""


def load_target(spec: TargetSpec, *, max_train: int | None = None, max_eval: int | None = None,
                max_test: int | None = None, seed: int = 0, local_root: Path | None = None,
                cache_dir: Path | None = None) -> TargetData:
    """Read ``spec``'s splits, map labels to ids, carve missing splits, subsample (seeded) and record the revision.

    ``local_root`` overrides where a local spec is read from (``local_root / spec.name``); ``cache_dir`` is
    the datasets cache for Hub specs.
    """
    for arg, value in (("max_train", max_train), ("max_eval", max_eval), ("max_test", max_test)):
        if value is not None and value < 1:
            raise ValueError(f"{arg} must be a positive number of examples or None, got {value}")
    if spec.is_local or (local_root is not None and not spec.hub_id):
        local_dir = local_root / spec.name if local_root is not None else spec.local_dir
        assert local_dir is not None  # is_local, or local_root given
        splits, label_names, revision = _read_local(spec, local_dir)
    else:
        splits, label_names, revision = _read_hub(spec, cache_dir)
    train, eval_, test = _assign_splits(spec, splits)
    if spec.metric == "accuracy":
        _check_classes(spec, train, label_names)
    data = TargetData(
        name=spec.name, label_names=label_names, metric=spec.metric, revision=revision,
        train=subsample(train, max_train, f"{spec.name}/train/{seed}"),
        eval=subsample(eval_, max_eval, f"{spec.name}/eval/{seed}"),
        test=subsample(test, max_test, f"{spec.name}/test/{seed}"),
    )
    logger.info("target %s@%s: %d train, %d eval, %d test, %d labels", spec.name, revision or "unpinned",
                len(data.train), len(data.eval), len(data.test), data.num_labels)
    return data


def _assign_splits(spec: TargetSpec, splits: Mapping[str, tuple[Example, ...]]
                   ) -> tuple[tuple[Example, ...], tuple[Example, ...], tuple[Example, ...]]:
    train = splits[spec.train_split]
    rng = random.Random(f"{spec.name}/carve")
    order = list(range(len(train)))
    rng.shuffle(order)
    held: dict[str, list[int]] = {}
    for role in ("test", "eval"):
        if (spec.test_split if role == "test" else spec.eval_split) is None:
            k = max(1, round(CARVE_FRACTION * len(train)))
            held[role], order = order[:k], order[k:]
    if held and not order:
        raise TargetError(f"target {spec.name}: train has {len(train)} examples, too few to carve "
                          f"{' and '.join(held)} from")
    kept = tuple(train[i] for i in sorted(order))

    def pick(role: str, split: str | None) -> tuple[Example, ...]:
        return tuple(train[i] for i in sorted(held[role])) if split is None else splits[split]

    return kept, pick("eval", spec.eval_split), pick("test", spec.test_split)


def _check_classes(spec: TargetSpec, train: Sequence[Example], label_names: tuple[str, ...]) -> None:
    seen = {e.label for e in train}
    if len(label_names) < 2 or len(seen) < 2:
        raise TargetError(f"target {spec.name}: a classification target needs at least 2 classes; "
                          f"label_names {list(label_names)}, train uses {sorted(seen)}")


def subsample(examples: tuple[Example, ...], k: int | None, key: str) -> tuple[Example, ...]:
    """A seeded random subset of ``k`` examples in source order (all of them when there are no more than ``k``)."""
    if k is None or k >= len(examples):
        return examples
    return tuple(examples[i] for i in sorted(random.Random(key).sample(range(len(examples)), k)))


def _label_id(value: Any, label_names: Sequence[str], where: str) -> int:
    """The README rule: a name's position, else an integer id into ``label_names``."""
    if isinstance(value, str) and value in label_names:
        return label_names.index(value)
    as_int = int(value) if isinstance(value, str) and re.fullmatch(r"-?\d+", value.strip()) else value
    if isinstance(as_int, int) and not isinstance(as_int, bool) and 0 <= as_int < len(label_names):
        return as_int
    raise TargetError(f"{where}: unknown label value {value!r}; expected one of {list(label_names)} "
                      f"or an id in [0, {len(label_names)})")


def _examples(spec: TargetSpec, rows: Iterable[Mapping[str, Any]], label_names: Sequence[str],
              where: str) -> tuple[Example, ...]:
    pair_fields = spec.text_fields[1:] if spec.is_pair else ()
    text_fields = spec.text_fields[:1] if spec.is_pair else spec.text_fields
    out = []
    for i, row in enumerate(rows):
        text = " ".join(str(row[f] or "") for f in text_fields)
        pair = " ".join(str(row[f] or "") for f in pair_fields) if pair_fields else None
        raw = row[spec.label_field]
        label = float(raw) if spec.metric == "spearman" else _label_id(raw, label_names, f"{where} row {i}")
        out.append(Example(text=text, text_pair=pair, label=label))  # type: ignore[arg-type]
    if not out:
        raise TargetError(f"{where} is empty")
    return tuple(out)


def _check_columns(spec: TargetSpec, columns: Iterable[str], where: str) -> None:
    columns = set(columns)
    missing = [f for f in (*spec.text_fields, spec.label_field) if f not in columns]
    if missing:
        raise TargetError(f"{where}: missing column(s) {missing}; it has {sorted(columns)}")


def _read_local(spec: TargetSpec, local_dir: Path
                ) -> tuple[dict[str, tuple[Example, ...]], tuple[str, ...], str]:
    import pandas as pd

    if spec.label_names is None and spec.metric == "accuracy":
        raise TargetError(f"target {spec.name}: a local target needs label_names")
    label_names = spec.label_names or ("score",)
    wanted = {s for s in (spec.train_split, spec.eval_split, spec.test_split) if s is not None}
    splits = {}
    for split in sorted(wanted):
        path = local_dir / f"{split}.csv"
        if not path.is_file():
            raise TargetError(f"target {spec.name}: {path} not found")
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
        _check_columns(spec, frame.columns, str(path))
        splits[split] = _examples(spec, frame.to_dict("records"), label_names, str(path))
    files = sorted(p for p in local_dir.iterdir() if p.name == "dataset.json" or p.suffix == ".csv")
    digest = hashlib.sha256()
    for path in files:
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return splits, label_names, digest.hexdigest()[:16]


def _read_hub(spec: TargetSpec, cache_dir: Path | None
              ) -> tuple[dict[str, tuple[Example, ...]], tuple[str, ...], str]:
    """Load through the Hub access (data/hub_datasets.py: needs the network or a warm cache; the commit loaded is
    recorded, and a pinned commit is never swapped for a cached other one)."""
    if not spec.hub_id:
        raise TargetError(f"target {spec.name} has neither a hub_id nor a local directory")
    where = f"{spec.hub_id}" + (f" ({spec.hub_config})" if spec.hub_config else "")
    try:
        loaded, revision = load_dataset(spec.hub_id, spec.hub_config, spec.revision or None, cache_dir)
    except DatasetUnavailable as e:
        detail = str(e) if e.kind == "swapped" else f"could not load {where} from the Hub: {e.__cause__ or e}"
        raise TargetError(f"target {spec.name}: {detail}") from e
    wanted = [s for s in (spec.train_split, spec.eval_split, spec.test_split) if s is not None]
    missing = [s for s in wanted if s not in loaded]
    if missing:
        raise TargetError(f"target {spec.name}: {where} has no split(s) {missing}; it has {list(loaded)}")
    for split in wanted:
        _check_columns(spec, loaded[split].column_names, f"{where} {split}")
    train = loaded[spec.train_split]
    label_names = _hub_label_names(spec, train)
    splits = {}
    for split in dict.fromkeys(wanted):
        columns = loaded[split].select_columns([*spec.text_fields, spec.label_field]).to_dict()
        as_rows = zip(*columns.values(), strict=True)
        rows = [row for row in (dict(zip(columns, values, strict=True)) for values in as_rows)
                if not _is_missing_label(row[spec.label_field])]
        if len(rows) < len(loaded[split]):
            logger.warning("target %s: dropped %d %s rows without a gold label (-1)", spec.name,
                           len(loaded[split]) - len(rows), split)
        splits[split] = _examples(spec, rows, label_names, f"{where} {split}")
    return splits, label_names, revision or spec.revision


def _is_missing_label(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value < 0


def _hub_label_names(spec: TargetSpec, train: Any) -> tuple[str, ...]:
    if spec.metric == "spearman":
        return ("score",)
    if spec.label_names is not None:
        return spec.label_names
    feature = train.features[spec.label_field]
    if hasattr(feature, "names"):  # ClassLabel
        return tuple(feature.names)
    values = {v for v in train[spec.label_field] if not _is_missing_label(v)}
    if all(isinstance(v, int) for v in values):
        return tuple(str(i) for i in range(max(values) + 1)) if values else ()
    return tuple(sorted(str(v) for v in values))
