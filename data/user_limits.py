"""What a user's upload may be, and the sentences that refuse it: the limits, the picked columns, the checks every
reader shares (rows, header, decoded size) and the wording (file and column names quoted and clipped).

Every limit is checked before the work it bounds: a header's width before its rows are parsed, a Parquet file's
decoded text before its values are copied into Python strings, a Hub dataset's size before it is downloaded.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from data.errors import LeaderboardError


class UserDataError(LeaderboardError, ValueError):
    """A user's data cannot be used; ``reason`` is one sentence to show the user."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True, kw_only=True)
class UploadLimits:
    """How much data one user may bring, and how little makes a usable classification task."""

    max_bytes: int = 20 * 2**20  # the file (or the Hub dataset's files) as stored
    max_rows: int = 20_000
    max_text_chars: int = 5_000  # per text cell
    max_decoded_bytes: int = 32 * 2**20  # UTF-8 bytes of the picked columns' values, all rows together
    max_columns: int = 1_000
    max_column_name_chars: int = 200
    max_classes: int = 256  # the estimators' cost grows with the classes (LogME fits one model per class)
    max_label_chars: int = 200
    max_line_bytes: int = 2**20  # one JSON Lines row
    min_classes: int = 2
    min_per_class: int = 2


DEFAULT_LIMITS = UploadLimits()


@dataclass(frozen=True, slots=True, kw_only=True)
class Columns:
    """Which columns hold the text, the label and (for sentence-pair tasks) the second text."""

    text: str
    label: str
    pair: str | None = None


def picked(columns: Columns) -> list[str]:
    return [columns.text, *([columns.pair] if columns.pair is not None else []), columns.label]


# -- checks -----------------------------------------------------------------------------------------------------

def check_rows(count: int, where: str, limits: UploadLimits) -> None:
    if count == 0:
        raise UserDataError(f"{capital(where)} has no data rows.")
    if count > limits.max_rows:
        raise UserDataError(f"{capital(where)} has more than {limits.max_rows:,} rows; the limit is "
                            f"{limits.max_rows:,}.")


def check_header(names: Sequence[str], where: str, limits: UploadLimits) -> None:
    """The number of columns and the length of each name, before any row is read."""
    if len(names) > limits.max_columns:
        raise UserDataError(f"{capital(where)} has {len(names):,} columns; the limit is {limits.max_columns:,}.")
    longest = max(names, key=lambda n: len(str(n)), default="")
    if len(str(longest)) > limits.max_column_name_chars:
        raise UserDataError(f"{capital(where)} has a column name of {len(str(longest)):,} characters; the limit is "
                            f"{limits.max_column_name_chars:,}.")


def check_unique(names: Sequence[str], wanted: Columns | None, where: str) -> None:
    """A picked column must be named once (counted in one pass: a wide header costs linear time)."""
    counts = Counter(names)
    for column in picked(wanted) if wanted else ():
        if counts[column] > 1:
            raise UserDataError(f"{capital(where)} has more than one column named {quote(column)}.")


def check_columns(available: Sequence[str], columns: Columns, where: str) -> None:
    have = set(available)
    for column in picked(columns):
        if column not in have:
            raise UserDataError(f"{capital(where)} has no column {quote(column)}; its columns are "
                                f"{listing(available)}.")


def check_decoded_size(table: Any, where: str, limits: UploadLimits) -> None:
    """The UTF-8 bytes an Arrow table's text columns hold once decoded, counted without decoding them: a
    dictionary-encoded column is summed through its indices, so a 1 KB file cannot unpack into gigabytes here."""
    import pyarrow as pa
    import pyarrow.compute as pc

    total = 0
    for values in table.columns:
        for chunk in values.chunks:
            total += _chunk_text_bytes(chunk, pa, pc)
            if total > limits.max_decoded_bytes:
                raise UserDataError(f"{capital(where)} holds more than {size(limits.max_decoded_bytes)} of text "
                                    f"in the picked columns, the limit.")


def _chunk_text_bytes(chunk: Any, pa: Any, pc: Any) -> int:
    if pa.types.is_dictionary(chunk.type):
        if not _is_text(chunk.type.value_type, pa):
            return 0
        lengths = pc.binary_length(chunk.dictionary).cast(pa.int64())
        return int(pc.sum(pc.take(lengths, chunk.indices)).as_py() or 0)
    if not _is_text(chunk.type, pa):
        return 8 * len(chunk)
    return int(pc.sum(pc.binary_length(chunk).cast(pa.int64())).as_py() or 0)


def _is_text(kind: Any, pa: Any) -> bool:
    return pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_binary(kind) or \
        pa.types.is_large_binary(kind)


# -- wording ----------------------------------------------------------------------------------------------------

def where_of(source: str) -> str:
    """How a sentence names the data: "the file 'reviews.csv'" or "the 'train' split of 'org/name'"."""
    kind, _, rest = source.partition(":")
    if kind == "upload":
        return file_named(rest)
    if kind == "hub" and ":" in rest:
        name, _, split = rest.rsplit("@", 1)[0].rpartition(":")
        return f"the {quote(split)} split of {quote(name)}"
    return quote(source)


def file_named(name: str) -> str:
    return f"the file {quote(name)}"


def capital(where: str) -> str:
    return where[:1].upper() + where[1:]


def quote(value: object, limit: int = 60) -> str:
    """``repr`` (control and invisible characters escaped), cut to ``limit`` characters."""
    text = repr(value if not isinstance(value, str) else value[: 4 * limit])
    return text if len(text) <= limit else text[:limit - 2] + "…" + text[-1]


def listing(values: Sequence[object] | Mapping[str, object], limit: int = 300) -> str:
    values = list(values)
    shown: list[str] = []
    for value in values:
        if sum(len(s) + 2 for s in shown) > limit:
            break
        shown.append(quote(value))
    more = len(values) - len(shown)
    return (", ".join(shown) or "none") + (f" and {more:,} more" if more else "")


def kind_of(value: object) -> str:
    if isinstance(value, bool):
        return "a true/false value"
    if isinstance(value, int | float):
        return f"the number {quote(value, 30)}"
    if isinstance(value, list | tuple | dict):
        return "a list" if not isinstance(value, dict) else "an object"
    return f"a value of type {type(value).__name__}"


def size(n_bytes: int) -> str:
    if n_bytes < 1024:
        return f"{n_bytes} bytes"
    return f"{n_bytes / 1024:.1f} KB" if n_bytes < 2**20 else f"{n_bytes / 2**20:.1f} MB"
