"""An uploaded Parquet file, read only as far as its limits allow: the footer's row count, column count and names,
then the picked columns' types and stored size, then (columns read still dictionary-encoded) the longest value and
the decoded text of all rows, and only then Python values. A footer can lie about its sizes: the reader runs in a
child process with a memory cap (ui/sandbox.py), so a file that decompresses past it fails there, not in the app.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from data.user_limits import (
    Columns,
    UploadLimits,
    UserDataError,
    check_columns,
    check_decoded_size,
    check_header,
    check_rows,
    file_named,
    picked,
    quote,
    size,
)


def read_parquet(path: Path, name: str, limits: UploadLimits, wanted: Columns | None) -> tuple[list[str], Any]:
    """(column names, the picked columns as lists); ``wanted`` None reads the names only."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    unreadable = f"The file {quote(name)} could not be read as a Parquet file."
    columns = list(dict.fromkeys(picked(wanted))) if wanted else []
    try:
        parquet = pq.ParquetFile(path)
        names, metadata = list(parquet.schema_arrow.names), parquet.metadata
    except (pa.ArrowException, OSError, ValueError) as e:
        raise UserDataError(unreadable) from e
    with parquet:
        check_rows(metadata.num_rows, file_named(name), limits)
        check_header(names, file_named(name), limits)
        available = list(dict.fromkeys(names))
        if wanted is None:
            return available, None
        check_columns(available, wanted, file_named(name))
        _check_types(parquet.schema_arrow, columns, name)
        _check_stored_size(metadata, columns, name, limits)
        try:
            with pq.ParquetFile(path, read_dictionary=columns) as flat:  # dictionary-encoded values stay so
                table = flat.read(columns=columns)
        except (pa.ArrowException, OSError, ValueError) as e:
            raise UserDataError(unreadable) from e
        _check_longest_values(table, name, limits)
        check_decoded_size(table, file_named(name), limits)
        return available, table.to_pydict()


def _check_types(schema: Any, columns: list[str], name: str) -> None:
    """Text, whole numbers or nulls only: a nested or binary column is refused before any of it is read."""
    import pyarrow as pa

    for column in columns:
        kind = schema.field(column).type
        kind = kind.value_type if pa.types.is_dictionary(kind) else kind
        if not any(is_kind(kind) for is_kind in (pa.types.is_string, pa.types.is_large_string, pa.types.is_integer,
                                                 pa.types.is_floating, pa.types.is_boolean, pa.types.is_null)):
            raise UserDataError(f"Column {quote(column)} of {file_named(name)} does not hold text or numbers.")


def _check_stored_size(metadata: Any, columns: list[str], name: str, limits: UploadLimits) -> None:
    """The picked columns' uncompressed pages, as the footer states them, within the decoded-text limit (plus the
    lengths and levels every value stores)."""
    total = 0
    for r in range(metadata.num_row_groups):
        group = metadata.row_group(r)
        chunks = (group.column(c) for c in range(group.num_columns))
        total += sum(max(chunk.total_uncompressed_size, 0) for chunk in chunks if chunk.path_in_schema in columns)
    rows, width = metadata.num_rows, len(columns)
    by_rows = rows * 4 * limits.max_text_chars * width
    if total <= min(by_rows, limits.max_decoded_bytes) + 16 * rows * width:
        return
    if by_rows < limits.max_decoded_bytes:
        raise UserDataError(f"The file {quote(name)} unpacks to {size(total)}, more than {rows:,} rows of at most "
                            f"{limits.max_text_chars:,} characters can hold.")
    raise UserDataError(f"The file {quote(name)} unpacks to {size(total)}, more than the limit of "
                        f"{size(limits.max_decoded_bytes)} of text.")


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
                raise UserDataError(f"A value in column {quote(column)} of {file_named(name)} is longer than the "
                                    f"limit of {limits.max_text_chars:,} characters.")
