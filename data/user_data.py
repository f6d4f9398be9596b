"""A user's own labelled classification data, read and validated into a hashed, in-memory ``UserData`` record.

Users upload a CSV, JSON Lines or Parquet file (or name a Hub dataset) to rank models on their own task. Every
check here refuses bad input with a ``UserDataError`` whose ``reason`` is one sentence for a non-programmer,
naming the file, column, row or number involved. Nothing in a file is ever evaluated: CSV is read as strings
(``dtype=str``, ``keep_default_na=False``), JSON Lines with ``json.loads``, Parquet with pyarrow (no pandas
metadata), and a Hub id must look like ``owner/name`` so the datasets library never reads a local path.

Rows are counted as a user counts data rows: row 1 is the first row under the header. Labels become strings
(``str(int)`` for whole numbers); ``label_names`` are their sorted distinct forms and ``labels`` ids into them.
``data_hash`` is a sha256 of the canonical JSON of texts, pairs and label strings, in row order.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import os
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from data.errors import LeaderboardError

CSV_SUFFIXES = (".csv",)
JSONL_SUFFIXES = (".jsonl", ".json-lines", ".ndjson")
PARQUET_SUFFIXES = (".parquet",)
PARQUET_MAGIC = b"PAR1"
ACCEPTED = "a CSV (.csv), JSON Lines (.jsonl) or Parquet (.parquet) file"
_HUB_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,95}/[A-Za-z0-9][A-Za-z0-9._-]{0,95}$")
_CSV_WIDTH_RE = re.compile(r"Expected (\d+) fields in line (\d+), saw (\d+)")
_CSV_QUOTE_RE = re.compile(r"EOF inside string starting at row (\d+)")
_SHA_RE = re.compile(r"(?<![0-9a-f])[0-9a-f]{40}(?![0-9a-f])")


class UserDataError(LeaderboardError, ValueError):
    """A user's data cannot be used; ``reason`` is one sentence to show the user."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True, kw_only=True)
class UploadLimits:
    """How much data one user may bring, and how little makes a usable classification task."""

    max_bytes: int = 20 * 2**20
    max_rows: int = 20_000
    max_text_chars: int = 5_000  # per text cell
    min_classes: int = 2
    min_per_class: int = 2


DEFAULT_LIMITS = UploadLimits()


@dataclass(frozen=True, slots=True, kw_only=True)
class Columns:
    """Which columns hold the text, the label and (for sentence-pair tasks) the second text."""

    text: str
    label: str
    pair: str | None = None


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
        return json.dumps(asdict(self), ensure_ascii=True, separators=(",", ":"))

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
        raise UserDataError(f"The file {_quote(name)} looks like a binary file, not {ACCEPTED}.")
    raise UserDataError(f"The file {_quote(name)} is not {ACCEPTED}: save it in one of those formats.")


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
    loaded = _load_hub(repo_id, config, revision, cache_dir)
    name = repo_id + (f"/{config}" if config else "")
    if split not in loaded:
        raise UserDataError(f"The dataset {_quote(name)} has no split {_quote(split)}; its splits are "
                            f"{_listing(loaded)}.")
    table = loaded[split]
    source = f"hub:{name}:{split}@{_resolved_revision(table) or revision or 'main'}"
    _check_rows(table.num_rows, _where(source), limits)
    _check_columns(table.column_names, columns, _where(source))
    values = table.select_columns(list(dict.fromkeys(_picked(columns)))).to_dict()
    names = getattr(table.features[columns.label], "names", None)
    if names is not None:  # ClassLabel: ids to names, -1 (no gold label) to missing
        values[columns.label] = [names[v] if isinstance(v, int) and 0 <= v < len(names) else None
                                 for v in values[columns.label]]
    return user_data(values, columns, source=source, limits=limits)


def user_data(rows: Sequence[Mapping[str, object]] | Mapping[str, Sequence[object]], columns: Columns, *,
              source: str, limits: UploadLimits = DEFAULT_LIMITS) -> UserData:
    """The shared validation: rows (dicts) or a dict of columns, checked cell by cell, then class by class."""
    where = _where(source)
    _check_distinct(columns)
    table = _as_columns(rows, columns, where, limits)
    texts = tuple(_text(v, i, columns.text, where, limits) for i, v in enumerate(table[columns.text]))
    pairs = None if columns.pair is None else tuple(
        _text(v, i, columns.pair, where, limits) for i, v in enumerate(table[columns.pair]))
    labels = [_label(v, i, columns.label, where) for i, v in enumerate(table[columns.label])]
    _check_classes(Counter(labels), columns.label, where, limits)
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
        size = os.stat(path).st_size
    except OSError as e:
        raise UserDataError(f"The file {_quote(name)} could not be opened.") from e
    if size > limits.max_bytes:
        raise UserDataError(f"The file {_quote(name)} is {_size(size)}, over the limit of {_size(limits.max_bytes)}.")
    if size == 0:
        raise UserDataError(f"The file {_quote(name)} is empty.")
    kind = file_format(path, name)
    if kind == "parquet":
        return _read_parquet(path, name, limits, wanted)
    text = _decode(_read_bytes(path, name), name)
    return (_read_csv if kind == "csv" else _read_jsonl)(text, name, limits, wanted)


def _read_bytes(path: Path, name: str, size: int = -1) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read(size)
    except OSError as e:
        raise UserDataError(f"The file {_quote(name)} could not be read.") from e


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
        raise UserDataError(f"The file {_quote(name)} looks like a binary file, not {ACCEPTED}.")
    bom = 3 if data.startswith(b"\xef\xbb\xbf") else 0
    try:
        return data[bom:].decode("utf-8")
    except UnicodeDecodeError as e:
        at = bom + e.start
        line = data[:at].count(b"\n") + 1
        raise UserDataError(f"The file {_quote(name)} is not UTF-8 text: byte {at} (line {line}) cannot be read; "
                            f"save it as UTF-8 and try again.") from e


def _read_csv(text: str, name: str, limits: UploadLimits, wanted: Columns | None) -> tuple[list[str], Any]:
    """Every cell a string; the header is read as a row so that a row wider than it is an error, not an index."""
    import pandas as pd

    try:
        frame = pd.read_csv(io.StringIO(text), header=None, dtype=str, keep_default_na=False,
                            nrows=limits.max_rows + 2)
    except pd.errors.EmptyDataError as e:
        raise UserDataError(f"The file {_quote(name)} is empty.") from e
    except pd.errors.ParserError as e:
        raise UserDataError(_csv_problem(name, str(e))) from e
    header, *rows = frame.values.tolist()
    _check_rows(len(rows), _file(name), limits)
    for column in _picked(wanted) if wanted else ():
        if header.count(column) > 1:
            raise UserDataError(f"The file {_quote(name)} has more than one column named {_quote(column)}.")
    first = {column: header.index(column) for column in dict.fromkeys(header)}
    return list(first), {column: [row[j] for row in rows] for column, j in first.items()}


def _csv_problem(name: str, message: str) -> str:
    """The parser's complaint, in words: a row wider than the header, a quote never closed, or else a hint."""
    width, quote = _CSV_WIDTH_RE.search(message), _CSV_QUOTE_RE.search(message)
    problem = "check its quotes and commas"
    if width:
        expected, line, saw = width.groups()
        problem = f"line {line} has {saw} fields but the header has {expected}"
    elif quote:  # pandas counts this row from 0
        problem = f"a quotation mark opened on line {int(quote.group(1)) + 1} is never closed"
    return f"The file {_quote(name)} is not a well-formed CSV file: {problem}."


def _read_jsonl(text: str, name: str, limits: UploadLimits, wanted: Columns | None) -> tuple[list[str], Any]:
    """One JSON object per non-blank line."""
    rows = []
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except (ValueError, RecursionError):
            row = None
        if not isinstance(row, dict):
            raise UserDataError(f"Line {number} of {_file(name)} is not a JSON object like "
                                f'{{"text": "...", "label": "..."}}.')
        rows.append(row)
        if len(rows) > limits.max_rows:
            break
    _check_rows(len(rows), _file(name), limits)
    return list(dict.fromkeys(key for row in rows for key in row)), rows


def _read_parquet(path: Path, name: str, limits: UploadLimits, wanted: Columns | None) -> tuple[list[str], Any]:
    """Only the picked columns are read, after the footer's row count and sizes passed; dictionary-encoded columns
    stay encoded until their longest value passed, so a small file cannot unpack into gigabytes."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    unreadable = f"The file {_quote(name)} could not be read as a Parquet file."
    picked = list(dict.fromkeys(_picked(wanted))) if wanted else []
    try:
        parquet = pq.ParquetFile(path)
        available, metadata = list(dict.fromkeys(parquet.schema_arrow.names)), parquet.metadata
    except (pa.ArrowException, OSError, ValueError) as e:
        raise UserDataError(unreadable) from e
    with parquet:
        _check_rows(metadata.num_rows, _file(name), limits)
        if wanted is None:
            return available, None
        _check_columns(available, wanted, _file(name))
        _check_parquet_types(parquet.schema_arrow, picked, name)
        _check_unpacked_size(metadata, picked, name, limits)
        try:
            with pq.ParquetFile(path, read_dictionary=picked) as flat:  # the picked columns are flat now
                table = flat.read(columns=picked)
        except (pa.ArrowException, OSError, ValueError) as e:
            raise UserDataError(unreadable) from e
        _check_longest_values(table, name, limits)
        return available, table.to_pydict()


def _check_parquet_types(schema: Any, picked: list[str], name: str) -> None:
    """Text, whole numbers or nulls only: a nested or binary column is refused before any of it is read."""
    import pyarrow as pa

    for column in picked:
        kind = schema.field(column).type
        kind = kind.value_type if pa.types.is_dictionary(kind) else kind
        if not any(is_kind(kind) for is_kind in (pa.types.is_string, pa.types.is_large_string, pa.types.is_integer,
                                                 pa.types.is_floating, pa.types.is_boolean, pa.types.is_null)):
            raise UserDataError(f"Column {_quote(column)} of {_file(name)} does not hold text or numbers.")


def _check_unpacked_size(metadata: Any, picked: list[str], name: str, limits: UploadLimits) -> None:
    """The picked columns' uncompressed size, from the footer, within what their rows may legitimately hold."""
    total = 0
    for r in range(metadata.num_row_groups):
        group = metadata.row_group(r)
        chunks = (group.column(c) for c in range(group.num_columns))
        total += sum(chunk.total_uncompressed_size for chunk in chunks if chunk.path_in_schema in picked)
    if total > metadata.num_rows * (4 * limits.max_text_chars + 16) * len(picked):
        raise UserDataError(f"The file {_quote(name)} unpacks to {_size(total)}, more than {metadata.num_rows:,} "
                            f"rows of at most {limits.max_text_chars:,} characters can hold.")


def _check_longest_values(table: Any, name: str, limits: UploadLimits) -> None:
    """No text value longer than 4 bytes per allowed character, checked while dictionary-encoded values are still
    stored once (``to_pydict`` copies them into every row)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    for column, values in zip(table.column_names, table.columns, strict=True):
        for chunk in values.chunks:
            chunk = chunk.dictionary if pa.types.is_dictionary(chunk.type) else chunk
            if not (pa.types.is_string(chunk.type) or pa.types.is_large_string(chunk.type)):
                continue
            longest = pc.max(pc.binary_length(chunk)).as_py()
            if longest is not None and longest > 4 * limits.max_text_chars:
                raise UserDataError(f"A value in column {_quote(column)} of {_file(name)} is longer than the limit "
                                    f"of {limits.max_text_chars:,} characters.")


# -- hub --------------------------------------------------------------------------------------------------------

def _load_hub(repo_id: str, config: str | None, revision: str | None, cache_dir: Path | None) -> Any:
    """``datasets.load_dataset``, its errors turned into sentences; a local path is never loaded."""
    if not _HUB_ID_RE.fullmatch(repo_id) or os.path.exists(repo_id):
        raise UserDataError(f"{_quote(repo_id)} is not a Hub dataset id: write it as owner/name.")
    import datasets

    try:
        return datasets.load_dataset(repo_id, config, revision=revision,
                                     cache_dir=str(cache_dir) if cache_dir is not None else None)
    except (datasets.exceptions.DatasetsError, OSError, ValueError, RuntimeError, ImportError) as e:
        raise UserDataError(_hub_problem(repo_id, config, revision, str(e))) from e


def _hub_problem(repo_id: str, config: str | None, revision: str | None, message: str) -> str:
    if revision and message.startswith("Revision "):
        return f"The dataset {_quote(repo_id)} has no revision {_quote(revision)}."
    if "doesn't exist on the Hub" in message:
        return f"There is no dataset {_quote(repo_id)} on the Hub, or it is private."
    if config and message.startswith("BuilderConfig "):
        return f"The dataset {_quote(repo_id)} has no configuration {_quote(config)}."
    if message.startswith("Config name is missing"):
        return f"The dataset {_quote(repo_id)} has several configurations: pick one."
    return f"The dataset {_quote(repo_id)} could not be loaded from the Hub ({_quote(message, 160)[1:-1]})."


def _resolved_revision(split: Any) -> str:
    """The commit sha: the datasets cache names a directory after it (best effort)."""
    for cache_file in getattr(split, "cache_files", ()):
        found = _SHA_RE.findall(str(cache_file.get("filename", "")))
        if found:
            return found[-1]
    return ""


# -- checks -----------------------------------------------------------------------------------------------------

def _picked(columns: Columns) -> list[str]:
    return [columns.text, *([columns.pair] if columns.pair is not None else []), columns.label]


def _check_distinct(columns: Columns) -> None:
    picked = _picked(columns)
    for column in picked:
        if picked.count(column) > 1:
            raise UserDataError(f"The column {_quote(column)} was picked twice: the text, second text and label "
                                f"must be different columns.")


def _check_columns(available: Sequence[str], columns: Columns, where: str) -> None:
    for column in _picked(columns):
        if column not in available:
            raise UserDataError(f"{_capital(where)} has no column {_quote(column)}; its columns are "
                                f"{_listing(available)}.")


def _check_rows(count: int, where: str, limits: UploadLimits) -> None:
    if count == 0:
        raise UserDataError(f"{_capital(where)} has no data rows.")
    if count > limits.max_rows:
        raise UserDataError(f"{_capital(where)} has more than {limits.max_rows:,} rows; the limit is "
                            f"{limits.max_rows:,}.")


def _as_columns(rows: Sequence[Mapping[str, object]] | Mapping[str, Sequence[object]], columns: Columns,
                where: str, limits: UploadLimits) -> dict[str, list[object]]:
    if isinstance(rows, Mapping):
        available = list(rows)
        count = max((len(values) for values in rows.values()), default=0)
    else:
        available = list(dict.fromkeys(key for row in rows for key in row))
        count = len(rows)
    _check_rows(count, where, limits)
    _check_columns(available, columns, where)
    if isinstance(rows, Mapping):
        return {column: list(rows[column]) for column in _picked(columns)}
    return {column: [row.get(column) for row in rows] for column in _picked(columns)}


def _text(value: object, i: int, column: str, where: str, limits: UploadLimits) -> str:
    at = f"Row {i + 1} of {where}"
    if value is None or (isinstance(value, str) and not value.strip()):
        raise UserDataError(f"{at} has no text in column {_quote(column)}.")
    if not isinstance(value, str):
        raise UserDataError(f"{at} has {_kind(value)} in column {_quote(column)}, where text was expected.")
    if len(value) > limits.max_text_chars:
        raise UserDataError(f"{at} has {len(value):,} characters of text in column {_quote(column)}; the limit "
                            f"is {limits.max_text_chars:,}.")
    return _valid_unicode(value, at, column)


def _label(value: object, i: int, column: str, where: str) -> str:
    at = f"Row {i + 1} of {where}"
    if value is None or (isinstance(value, float) and math.isnan(value)) or (isinstance(value, str)
                                                                            and not value.strip()):
        raise UserDataError(f"{at} has no label in column {_quote(column)}.")
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if not isinstance(value, str):
        raise UserDataError(f"{at} has {_kind(value)} in column {_quote(column)}; a label must be text or a whole "
                            f"number.")
    return _valid_unicode(value, at, column)


def _valid_unicode(value: str, at: str, column: str) -> str:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as e:  # a lone surrogate, possible in JSON ("\ud800")
        raise UserDataError(f"{at} has an invalid character in column {_quote(column)}.") from e
    return value


def _check_classes(counts: Counter[str], column: str, where: str, limits: UploadLimits) -> None:
    if len(counts) < limits.min_classes:
        raise UserDataError(f"{_capital(where)} has {len(counts)} distinct label(s) in column {_quote(column)} "
                            f"({_listing(sorted(counts))}); at least {limits.min_classes} are needed.")
    rare = sorted(label for label, n in counts.items() if n < limits.min_per_class)
    if rare:
        raise UserDataError(f"In {where}, the class(es) {_listing(rare)} have fewer than {limits.min_per_class} "
                            f"examples each; every class needs at least {limits.min_per_class}.")


# -- wording ----------------------------------------------------------------------------------------------------

def _where(source: str) -> str:
    """How a sentence names the data: "the file 'reviews.csv'" or "the 'train' split of 'org/name'"."""
    kind, _, rest = source.partition(":")
    if kind == "upload":
        return _file(rest)
    if kind == "hub" and ":" in rest:
        name, _, split = rest.rsplit("@", 1)[0].rpartition(":")
        return f"the {_quote(split)} split of {_quote(name)}"
    return _quote(source)


def _file(name: str) -> str:
    return f"the file {_quote(name)}"


def _capital(where: str) -> str:
    return where[:1].upper() + where[1:]


def _quote(value: object, limit: int = 60) -> str:
    """``repr`` (control and invisible characters escaped), cut to ``limit`` characters."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit - 2] + "…" + text[-1]


def _listing(values: Sequence[object] | Mapping[str, object], limit: int = 300) -> str:
    values = list(values)
    shown: list[str] = []
    for value in values:
        if sum(len(s) + 2 for s in shown) > limit:
            break
        shown.append(_quote(value))
    more = len(values) - len(shown)
    return (", ".join(shown) or "none") + (f" and {more} more" if more else "")


def _kind(value: object) -> str:
    if isinstance(value, bool):
        return "a true/false value"
    if isinstance(value, int | float):
        return f"the number {_quote(value, 30)}"
    if isinstance(value, list | tuple | dict):
        return "a list" if not isinstance(value, dict) else "an object"
    return f"a value of type {type(value).__name__}"


def _size(n_bytes: int) -> str:
    if n_bytes < 1024:
        return f"{n_bytes} bytes"
    return f"{n_bytes / 1024:.1f} KB" if n_bytes < 2**20 else f"{n_bytes / 2**20:.1f} MB"
