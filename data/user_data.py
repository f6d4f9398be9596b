"""A user's own labelled classification data, read and validated into a hashed, in-memory ``UserData`` record.

Users upload a CSV, JSON Lines or Parquet file (or name a Hub dataset) to rank models on their own task. Every
check here refuses bad input with a ``UserDataError`` whose ``reason`` is one sentence for a non-programmer,
naming the file, column, row or number involved. Nothing in a file is ever evaluated: CSV is read as strings
(``dtype=str``, ``keep_default_na=False``), JSON Lines with ``json.loads``, Parquet with pyarrow (no pandas
metadata), and a Hub id must look like ``owner/name`` so the datasets library never reads a local path. The readers
live beside this module (``user_text``: CSV and JSON Lines; ``user_parquet``; ``user_hub``), the limits and the
wording in ``user_limits``: each bound is checked before the work it bounds.

Rows are counted as a user counts data rows: row 1 is the first row under the header. Labels become strings
(``str(int)`` for whole numbers); ``label_names`` are their sorted distinct forms and ``labels`` ids into them.
``data_hash`` is a sha256 of the canonical JSON of texts, pairs and label strings, in row order.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import stat
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from data.user_hub import load_hub
from data.user_limits import (
    DEFAULT_LIMITS,
    Columns,
    UploadLimits,
    UserDataError,
    capital,
    check_columns,
    check_decoded_size,
    check_header,
    check_rows,
    kind_of,
    listing,
    picked,
    quote,
    size,
    where_of,
)
from data.user_parquet import read_parquet
from data.user_text import read_csv, read_jsonl

__all__ = ["DEFAULT_LIMITS", "Columns", "UploadLimits", "UserData", "UserDataError", "file_format", "read_columns",
           "read_hub_dataset", "read_upload", "user_data"]

CSV_SUFFIXES = (".csv",)
JSONL_SUFFIXES = (".jsonl", ".json-lines", ".ndjson")
PARQUET_SUFFIXES = (".parquet",)
PARQUET_MAGIC = b"PAR1"
ACCEPTED = "a CSV (.csv), JSON Lines (.jsonl) or Parquet (.parquet) file"


@dataclass(frozen=True, slots=True, kw_only=True)
class UserData:
    """Validated rows: texts (and pairs), label ids into ``label_names``, where they came from and their hash."""

    texts: tuple[str, ...]
    pairs: tuple[str, ...] | None
    labels: tuple[int, ...]
    label_names: tuple[str, ...]
    source: str
    data_hash: str

    @property
    def num_rows(self) -> int:
        return len(self.texts)

    @property
    def num_classes(self) -> int:
        return len(self.label_names)

    def class_counts(self) -> dict[str, int]:
        counts = Counter(self.labels)
        return {name: counts[i] for i, name in enumerate(self.label_names)}

    def to_json(self) -> str:
        """The record as UTF-8 JSON (not ASCII-escaped: a non-Latin text is stored at its own size)."""
        return json.dumps(asdict(self), ensure_ascii=False, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> UserData:
        """The record ``to_json`` wrote, rebuilt from its rows; refused if any field or the hash does not match.

        The hash guards against accidental change (a damaged file, an edited row), not against someone who recomputes
        it; the rows are not validated again."""
        try:
            saved = json.loads(text)
            pairs = None if saved["pairs"] is None else _strings(saved["pairs"])
            names = _strings(saved["label_names"])
            labels = [names[i] for i in saved["labels"]]
            rebuilt = _record(_strings(saved["texts"]), pairs, labels, _strings([saved["source"]])[0])
        except (ValueError, KeyError, TypeError, IndexError, RecursionError) as e:
            raise UserDataError("The saved data is not a readable user data record.") from e
        if rebuilt.data_hash != saved.get("data_hash") or json.loads(rebuilt.to_json()) != saved:
            raise UserDataError("The saved data does not match its hash: it was changed or damaged.")
        return rebuilt


def file_format(path: Path, name: str | None = None) -> str:
    """Which reader the file needs ("csv", "jsonl" or "parquet"): Parquet's magic bytes, else the extension of
    ``name`` (the user's file name; by default the path's)."""
    name = name or path.name
    head = _read_bytes(path, name, 8192)
    suffix = Path(name).suffix.lower()
    if head.startswith(PARQUET_MAGIC) or suffix in PARQUET_SUFFIXES:
        return "parquet"
    if suffix in CSV_SUFFIXES or suffix in JSONL_SUFFIXES:
        return "csv" if suffix in CSV_SUFFIXES else "jsonl"
    if b"\0" in head or not _is_utf8_start(head):
        raise UserDataError(f"The file {quote(name)} looks like a binary file, not {ACCEPTED}.")
    raise UserDataError(f"The file {quote(name)} is not {ACCEPTED}: save it in one of those formats.")


def read_columns(path: Path, name: str | None = None, limits: UploadLimits = DEFAULT_LIMITS) -> list[str]:
    """The file's column names, for the app's column pickers; the file is read and refused as ``read_upload`` does."""
    return _read_file(path, name or path.name, limits, wanted=None)[0]


def read_upload(path: Path, columns: Columns, *, name: str | None = None,
                limits: UploadLimits = DEFAULT_LIMITS) -> UserData:
    """An uploaded file (``name`` is the user's file name; ``path`` where it was saved) as validated ``UserData``."""
    name = name or path.name
    _check_distinct(columns)
    _, table = _read_file(path, name, limits, wanted=columns)
    return user_data(table, columns, source=f"upload:{name}", limits=limits)


def read_hub_dataset(repo_id: str, *, columns: Columns, config: str | None = None, split: str = "train",
                     revision: str | None = None, limits: UploadLimits = DEFAULT_LIMITS,
                     cache_dir: Path | None = None) -> UserData:
    """A Hub dataset's split through the datasets library; ClassLabel ids become their names, -1 is no label."""
    _check_distinct(columns)
    loaded, commit = load_hub(repo_id, config, revision, cache_dir, limits)
    name = repo_id + (f"/{config}" if config else "")
    if split not in loaded:
        raise UserDataError(f"The dataset {quote(name)} has no split {quote(split)}; its splits are "
                            f"{listing(loaded)}.")
    table = loaded[split]
    source = f"hub:{name}:{split}@{commit or revision or 'main'}"
    check_rows(table.num_rows, where_of(source), limits)
    check_header(table.column_names, where_of(source), limits)
    check_columns(table.column_names, columns, where_of(source))
    chosen = table.select_columns(list(dict.fromkeys(picked(columns))))
    check_decoded_size(chosen.data, where_of(source), limits)  # counted in Arrow, before any Python string
    values = chosen.to_dict()
    names = getattr(table.features[columns.label], "names", None)
    if names is not None:  # ClassLabel: ids to names, -1 (no gold label) to missing
        values[columns.label] = [names[v] if isinstance(v, int) and 0 <= v < len(names) else None
                                 for v in values[columns.label]]
    return user_data(values, columns, source=source, limits=limits)


def user_data(rows: Sequence[Mapping[str, object]] | Mapping[str, Sequence[object]], columns: Columns, *,
              source: str, limits: UploadLimits = DEFAULT_LIMITS) -> UserData:
    """The shared validation: rows (dicts) or a dict of columns, checked cell by cell, then class by class."""
    where = where_of(source)
    _check_distinct(columns)
    table = _as_columns(rows, columns, where, limits)
    texts = tuple(_text(v, i, columns.text, where, limits) for i, v in enumerate(table[columns.text]))
    pairs = None if columns.pair is None else tuple(
        _text(v, i, columns.pair, where, limits) for i, v in enumerate(table[columns.pair]))
    labels = [_label(v, i, columns.label, where, limits) for i, v in enumerate(table[columns.label])]
    _check_classes(Counter(labels), columns.label, where, limits)
    _check_text_bytes((texts, pairs or (), labels), where, limits)
    return _record(texts, pairs, labels, source)


def _record(texts: tuple[str, ...], pairs: tuple[str, ...] | None, labels: Sequence[str], source: str) -> UserData:
    """The record of validated rows: label ids, sorted label names and the hash."""
    if len(labels) != len(texts) or (pairs is not None and len(pairs) != len(texts)):
        raise ValueError("texts, pairs and labels differ in length")
    names = tuple(sorted(set(labels)))
    index = {label: i for i, label in enumerate(names)}
    canonical = json.dumps([list(texts), None if pairs is None else list(pairs), list(labels)],
                           ensure_ascii=True, separators=(",", ":"))
    return UserData(texts=texts, pairs=pairs, labels=tuple(index[label] for label in labels), label_names=names,
                    source=source, data_hash=hashlib.sha256(canonical.encode("ascii")).hexdigest())


def _strings(values: Any) -> tuple[str, ...]:
    if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
        raise TypeError("expected a list of strings")
    return tuple(values)


# -- files ------------------------------------------------------------------------------------------------------

def _read_file(path: Path, name: str, limits: UploadLimits, wanted: Columns | None) -> tuple[list[str], Any]:
    """(column names, rows or columns) of an uploaded file, after the checks every format shares."""
    try:
        found = os.stat(path)
    except OSError as e:
        raise UserDataError(f"The file {quote(name)} could not be opened.") from e
    if not stat.S_ISREG(found.st_mode):  # a device, a pipe or a folder is never read
        raise UserDataError(f"The file {quote(name)} could not be opened.")
    if found.st_size > limits.max_bytes:
        raise UserDataError(f"The file {quote(name)} is {size(found.st_size)}, over the limit of "
                            f"{size(limits.max_bytes)}.")
    if found.st_size == 0:
        raise UserDataError(f"The file {quote(name)} is empty.")
    kind = file_format(path, name)
    if kind == "parquet":
        return read_parquet(path, name, limits, wanted)
    text = _decode(_read_bytes(path, name, limits.max_bytes + 1), name)
    return (read_csv if kind == "csv" else read_jsonl)(text, name, limits, wanted)


def _read_bytes(path: Path, name: str, size: int = -1) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read(size)
    except OSError as e:
        raise UserDataError(f"The file {quote(name)} could not be read.") from e


def _is_utf8_start(head: bytes) -> bool:
    """Whether ``head`` (maybe cut inside a character) starts valid UTF-8."""
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as e:
        return e.start >= len(head) - 3 and e.reason == "unexpected end of data"
    return True


def _decode(data: bytes, name: str) -> str:
    """UTF-8 text (a byte order mark is dropped); NUL bytes mean a binary file, bad bytes are located for the user."""
    if b"\0" in data:
        raise UserDataError(f"The file {quote(name)} looks like a binary file, not {ACCEPTED}.")
    bom = 3 if data.startswith(b"\xef\xbb\xbf") else 0
    try:
        return data[bom:].decode("utf-8")
    except UnicodeDecodeError as e:
        at = bom + e.start
        line = data[:at].count(b"\n") + 1
        raise UserDataError(f"The file {quote(name)} is not UTF-8 text: byte {at} (line {line}) cannot be read; "
                            f"save it as UTF-8 and try again.") from e


# -- checks -----------------------------------------------------------------------------------------------------

def _check_distinct(columns: Columns) -> None:
    chosen = picked(columns)
    for column in chosen:
        if chosen.count(column) > 1:
            raise UserDataError(f"The column {quote(column)} was picked twice: the text, second text and label "
                                f"must be different columns.")


def _as_columns(rows: Sequence[Mapping[str, object]] | Mapping[str, Sequence[object]], columns: Columns,
                where: str, limits: UploadLimits) -> dict[str, list[object]]:
    if isinstance(rows, Mapping):
        available = list(rows)
        count = max((len(values) for values in rows.values()), default=0)
    else:
        available = list(dict.fromkeys(key for row in rows for key in row))
        count = len(rows)
    check_rows(count, where, limits)
    check_columns(available, columns, where)
    if isinstance(rows, Mapping):
        return {column: list(rows[column]) for column in picked(columns)}
    return {column: [row.get(column) for row in rows] for column in picked(columns)}


def _text(value: object, i: int, column: str, where: str, limits: UploadLimits) -> str:
    at = f"Row {i + 1} of {where}"
    if value is None or (isinstance(value, str) and not value.strip()):
        raise UserDataError(f"{at} has no text in column {quote(column)}.")
    if not isinstance(value, str):
        raise UserDataError(f"{at} has {kind_of(value)} in column {quote(column)}, where text was expected.")
    if len(value) > limits.max_text_chars:
        raise UserDataError(f"{at} has {len(value):,} characters of text in column {quote(column)}; the limit "
                            f"is {limits.max_text_chars:,}.")
    return _valid_unicode(value, at, column)


def _label(value: object, i: int, column: str, where: str, limits: UploadLimits) -> str:
    at = f"Row {i + 1} of {where}"
    if value is None or (isinstance(value, float) and math.isnan(value)) or (isinstance(value, str)
                                                                            and not value.strip()):
        raise UserDataError(f"{at} has no label in column {quote(column)}.")
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if not isinstance(value, str):
        raise UserDataError(f"{at} has {kind_of(value)} in column {quote(column)}; a label must be text or a whole "
                            f"number.")
    if len(value) > limits.max_label_chars:
        raise UserDataError(f"{at} has a label of {len(value):,} characters in column {quote(column)}; the limit "
                            f"is {limits.max_label_chars:,}: is it the label column?")
    if _FRACTION.fullmatch(value.strip()) and not _is_whole(float(value)):  # text cells (a CSV's) kept verbatim
        raise UserDataError(f"{at} has the number {value.strip()} in column {quote(column)}; a label must be text "
                            f"or a whole number.")
    return _valid_unicode(value, at, column)


_FRACTION = re.compile(r"[+-]?(\d+\.\d*|\.\d+|\d+)([eE][+-]?\d+)?")  # a decimal numeral (no words: "nan" stays)


def _is_whole(number: float) -> bool:
    return math.isfinite(number) and number.is_integer()


def _valid_unicode(value: str, at: str, column: str) -> str:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as e:  # a lone surrogate, possible in JSON ("\ud800")
        raise UserDataError(f"{at} has an invalid character in column {quote(column)}.") from e
    return value


def _check_text_bytes(columns: tuple[Sequence[str], ...], where: str, limits: UploadLimits) -> None:
    total = 0
    for values in columns:
        total += sum(len(v.encode("utf-8", "surrogatepass")) for v in values)
        if total > limits.max_decoded_bytes:
            raise UserDataError(f"{capital(where)} holds more than {size(limits.max_decoded_bytes)} of text in the "
                                f"picked columns, the limit.")


def _check_classes(counts: Counter[str], column: str, where: str, limits: UploadLimits) -> None:
    if len(counts) < limits.min_classes:
        raise UserDataError(f"{capital(where)} has {len(counts)} distinct label(s) in column {quote(column)} "
                            f"({listing(sorted(counts))}); at least {limits.min_classes} are needed.")
    if len(counts) > limits.max_classes:
        raise UserDataError(f"{capital(where)} has {len(counts):,} distinct labels in column {quote(column)}; the "
                            f"limit is {limits.max_classes:,} classes: is it the label column?")
    rare = sorted(label for label, n in counts.items() if n < limits.min_per_class)
    if rare:
        raise UserDataError(f"In {where}, the class(es) {listing(rare)} have fewer than {limits.min_per_class} "
                            f"examples each; every class needs at least {limits.min_per_class}.")


