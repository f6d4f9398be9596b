"""An uploaded CSV or JSON Lines file, already decoded to text, read into rows with its limits checked while it is
read: a CSV's header row (its width and names) before pandas parses any row, every cell a string; a JSON line's
length and keys as it is parsed, and the keys of all rows together."""

from __future__ import annotations

import io
import json
import re
from typing import Any

from data.user_limits import (
    Columns,
    UploadLimits,
    UserDataError,
    check_header,
    check_rows,
    check_unique,
    file_named,
    quote,
    size,
)

_CSV_WIDTH_RE = re.compile(r"Expected (\d+) fields in line (\d+), saw (\d+)")
_CSV_QUOTE_RE = re.compile(r"EOF inside string starting at row (\d+)")


def read_csv(text: str, name: str, limits: UploadLimits, wanted: Columns | None) -> tuple[list[str], Any]:
    """Every cell a string; the header is read as a row so that a row wider than it is an error, not an index."""
    import pandas as pd

    _check_csv_header(text, name, limits)
    try:
        frame = pd.read_csv(io.StringIO(text), header=None, dtype=str, keep_default_na=False,
                            nrows=limits.max_rows + 2)
    except pd.errors.EmptyDataError as e:
        raise UserDataError(f"The file {quote(name)} is empty.") from e
    except pd.errors.ParserError as e:
        raise UserDataError(_csv_problem(name, str(e))) from e
    header, *rows = frame.values.tolist()
    check_rows(len(rows), file_named(name), limits)
    check_unique(header, wanted, file_named(name))
    first: dict[str, int] = {}
    for j, column in enumerate(header):
        first.setdefault(column, j)
    return list(first), {column: [row[j] for row in rows] for column, j in first.items()}


def _check_csv_header(text: str, name: str, limits: UploadLimits) -> None:
    """The header row's width and names, read alone from the text's start before pandas parses any row: a header
    that does not end within what ``max_columns`` names of ``max_column_name_chars`` can take is refused as such."""
    import csv

    head = text[: (limits.max_columns + 1) * (limits.max_column_name_chars + 3)]
    rows = csv.reader(io.StringIO(head))
    try:
        names = next(rows, [])
    except csv.Error:  # a field longer than the csv module's field limit
        names = []
    whole = len(head) == len(text) or rows.line_num <= head.count("\n")  # a line of the head is past the header
    if not whole and len(names) > limits.max_columns:
        raise UserDataError(f"The file {quote(name)} has more than {limits.max_columns:,} columns; the limit is "
                            f"{limits.max_columns:,}.")
    if not whole:
        raise UserDataError(f"The header row of {file_named(name)} is longer than {limits.max_columns:,} column "
                            f"names of at most {limits.max_column_name_chars:,} characters can be.")
    check_header(names, file_named(name), limits)


def _csv_problem(name: str, message: str) -> str:
    """The parser's complaint, in words: a row wider than the header, a quote never closed, or else a hint."""
    width, unclosed = _CSV_WIDTH_RE.search(message), _CSV_QUOTE_RE.search(message)
    problem = "check its quotes and commas"
    if width:
        expected, line, saw = width.groups()
        problem = f"line {line} has {saw} fields but the header has {expected}"
    elif unclosed:  # pandas counts this row from 0
        problem = f"a quotation mark opened on line {int(unclosed.group(1)) + 1} is never closed"
    return f"The file {quote(name)} is not a well-formed CSV file: {problem}."


def read_jsonl(text: str, name: str, limits: UploadLimits, wanted: Columns | None) -> tuple[list[str], Any]:
    """One JSON object per non-blank line; a line, an object's keys and the keys of all rows are bounded while
    they are read."""
    rows, keys = [], {}
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        if len(line) > limits.max_line_bytes:
            raise UserDataError(f"Line {number} of {file_named(name)} is longer than the limit of "
                                f"{size(limits.max_line_bytes)}.")
        row = _json_object(line, number, name, limits)
        keys.update(dict.fromkeys(row))
        if len(keys) > limits.max_columns:
            check_header(list(keys), file_named(name), limits)
        rows.append(row)
        if len(rows) > limits.max_rows:
            break
    check_rows(len(rows), file_named(name), limits)
    check_header(list(keys), file_named(name), limits)
    return list(keys), rows


def _json_object(line: str, number: int, name: str, limits: UploadLimits) -> dict:
    def bounded(pairs: list) -> dict:
        if len(pairs) > limits.max_columns:
            raise UserDataError(f"Line {number} of {file_named(name)} has {len(pairs):,} keys; the limit is "
                                f"{limits.max_columns:,} columns.")
        return dict(pairs)

    try:
        row = json.loads(line, object_pairs_hook=bounded)
    except (ValueError, RecursionError) as e:
        if isinstance(e, UserDataError):
            raise
        row = None
    if not isinstance(row, dict):
        raise UserDataError(f"Line {number} of {file_named(name)} is not a JSON object like "
                            f'{{"text": "...", "label": "..."}}.')
    return row
