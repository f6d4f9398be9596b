"""A user's own data: every refusal is one sentence naming what is wrong, CSV/JSONL/Parquet read the same rows to
the same record and hash, the JSON form round-trips exactly, and the limits hold exactly at their boundaries."""

from __future__ import annotations

import builtins
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from data.errors import LeaderboardError
from data.user_data import (
    Columns,
    UploadLimits,
    UserData,
    UserDataError,
    file_format,
    read_columns,
    read_hub_dataset,
    read_upload,
    user_data,
)

FIXTURE = Path(__file__).resolve().parents[2] / "fixtures" / "user_data" / "reviews.csv"
COLS = Columns(text="text", label="label")
PAIR_COLS = Columns(text="text", pair="other", label="label")
ROWS = [{"text": "good film", "label": "pos"}, {"text": "bad film", "label": "neg"},
        {"text": "great, fun", "label": "pos"}, {"text": 'dull "plot"', "label": "neg"}]
LIMITS = UploadLimits()


def write(tmp_path: Path, name: str, content: bytes | str) -> Path:
    path = tmp_path / name
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    return path


def csv_text(rows: list[dict], header: str = "text,label") -> str:
    def cell(value: object) -> str:
        text = str(value)
        return '"' + text.replace('"', '""') + '"' if any(c in text for c in ',"\n') else text

    keys = header.split(",")
    return header + "\n" + "".join(",".join(cell(row[k]) for k in keys) + "\n" for row in rows)


def jsonl_text(rows: list[dict]) -> str:
    return "".join(json.dumps(row) + "\n" for row in rows)


def write_parquet(tmp_path: Path, name: str, rows: list[dict]) -> Path:
    path = tmp_path / name
    pq.write_table(pa.Table.from_pylist(rows), path)
    return path


def write_rows(tmp_path: Path, kind: str, rows: list[dict], header: str = "text,label") -> Path:
    if kind == "csv":
        return write(tmp_path, "data.csv", csv_text(rows, header))
    if kind == "jsonl":
        return write(tmp_path, "data.jsonl", jsonl_text(rows))
    return write_parquet(tmp_path, "data.parquet", rows)


def refusal(call) -> str:
    with pytest.raises(UserDataError) as caught:
        call()
    reason = caught.value.reason
    assert reason == str(caught.value) and "\n" not in reason and reason.endswith(".")
    assert reason.count(". ") == 0, f"more than one sentence: {reason}"
    return reason


def test_the_error_is_a_leaderboard_error_and_a_value_error():
    assert issubclass(UserDataError, LeaderboardError) and issubclass(UserDataError, ValueError)
    assert UserDataError("Why.").reason == "Why."


# -- refusals of files ------------------------------------------------------------------------------------------

FILE_REFUSALS = {
    "empty": ("a.csv", b"", LIMITS, ["'a.csv'", "is empty"]),
    "blank lines only": ("a.csv", b"\n\n  \n", LIMITS, ["'a.csv'", "is empty"]),
    "header only": ("a.csv", b"text,label\n", LIMITS, ["'a.csv'", "no data rows"]),
    "blank jsonl": ("a.jsonl", b"\n \n", LIMITS, ["'a.jsonl'", "no data rows"]),
    "too large": ("big.csv", csv_text(ROWS).encode(), UploadLimits(max_bytes=40),
                  ["'big.csv'", f"is {len(csv_text(ROWS))} bytes", "limit of 40 bytes"]),
    "too large in MB": ("big.csv", b"x" * (3 * 2**20), UploadLimits(max_bytes=2 * 2**20),
                        ["'big.csv'", "is 3.0 MB", "limit of 2.0 MB"]),
    "NUL bytes in csv": ("a.csv", b"text,label\nab\x00\x01,pos\n", LIMITS, ["'a.csv'", "looks like a binary file"]),
    "NUL bytes in jsonl": ("a.jsonl", b'{"text": "a"}\n\x00\x00\x00', LIMITS,
                           ["'a.jsonl'", "looks like a binary file"]),
    "image named .png": ("cat.png", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", LIMITS,
                         ["'cat.png'", "looks like a binary file", "CSV", "JSON Lines", "Parquet"]),
    "latin-1 bytes, unknown kind": ("a.dat", b"caf\xe9 \xe9t\xe9", LIMITS, ["'a.dat'", "looks like a binary file"]),
    "invalid utf-8": ("a.csv", b"text,label\nok,pos\ncaf\xe9,neg\n", LIMITS,
                      ["'a.csv'", "not UTF-8", "byte 21", "line 3"]),
    "invalid utf-8 after a BOM": ("a.jsonl", b"\xef\xbb\xbf" + b'{"text": "\xff"}\n', LIMITS,
                                  ["'a.jsonl'", "not UTF-8", "byte 13", "line 1"]),
    "text file": ("notes.txt", b"text,label\na,pos\n", LIMITS,
                  ["'notes.txt'", "is not a CSV (.csv), JSON Lines (.jsonl) or Parquet (.parquet) file"]),
    "plain json": ("data.json", b'[{"text": "a", "label": "pos"}]', LIMITS, ["'data.json'", "is not a CSV"]),
    "ragged csv": ("a.csv", b"text,label\na,pos\nb,neg,extra\n", LIMITS,
                   ["'a.csv'", "not a well-formed CSV", "line 3 has 3 fields", "header has 2"]),
    "every row wider than the header": ("a.csv", b"text,label\na,pos,x\nb,neg,y\n", LIMITS,
                                        ["line 2 has 3 fields", "header has 2"]),
    "unclosed quote": ("a.csv", b'text,label\n"a,pos\nb,neg\n', LIMITS,
                       ["'a.csv'", "not a well-formed CSV", "quotation mark opened on line 2"]),
    "jsonl list line": ("a.jsonl", b'{"text": "a", "label": "pos"}\n[1, 2]\n', LIMITS,
                        ["Line 2 of the file 'a.jsonl'", "not a JSON object"]),
    "jsonl broken line": ("a.jsonl", b'{"text": "a", "label": "pos"}\n\n{"text": \n', LIMITS,
                          ["Line 3 of the file 'a.jsonl'", "not a JSON object"]),
    "jsonl deep nesting": ("a.jsonl", b"[" * 100_000, LIMITS, ["Line 1 of the file 'a.jsonl'", "not a JSON object"]),
    "jsonl huge number": ("a.jsonl", b'{"text": "a", "label": ' + b"9" * 5000 + b"}\n", LIMITS,
                          ["Line 1 of the file 'a.jsonl'", "not a JSON object"]),
    "broken parquet": ("a.parquet", b"PAR1 this is not really parquet PAR1", LIMITS,
                       ["'a.parquet'", "could not be read as a Parquet file"]),
    "text named parquet": ("a.parquet", b"text,label\na,pos\n", LIMITS,
                           ["'a.parquet'", "could not be read as a Parquet file"]),
    "duplicate picked column": ("a.csv", b"text,text,label\na,b,pos\n", LIMITS,
                                ["'a.csv'", "more than one column named 'text'"]),
    "hostile file name": ("x\u202e\nvsc.csv", b"", LIMITS, ["'x\\u202e\\nvsc.csv'", "is empty"]),
}


@pytest.mark.parametrize("case", FILE_REFUSALS)
def test_a_bad_file_is_refused_with_one_sentence(tmp_path, case):
    name, content, limits, words = FILE_REFUSALS[case]
    path = write(tmp_path, "upload.bin", content)
    reason = refusal(lambda: read_upload(path, COLS, name=name, limits=limits))
    assert all(word in reason for word in words), reason
    if case != "duplicate picked column":  # the column pickers refuse the file alike
        assert refusal(lambda: read_columns(path, name, limits)) == reason


def test_a_file_too_large_is_refused_before_it_is_opened(tmp_path, monkeypatch):
    path = write(tmp_path, "big.csv", csv_text(ROWS * 100))

    def no_reading(*args, **kwargs):
        raise AssertionError("the file was opened")

    monkeypatch.setattr(builtins, "open", no_reading)
    monkeypatch.setattr(Path, "read_bytes", no_reading)
    monkeypatch.setattr(Path, "open", no_reading)
    assert "limit" in refusal(lambda: read_upload(path, COLS, limits=UploadLimits(max_bytes=100)))


def test_a_missing_file_is_a_sentence(tmp_path):
    assert "could not be opened" in refusal(lambda: read_upload(tmp_path / "gone.csv", COLS))


# -- refusals of columns and cells ------------------------------------------------------------------------------

CELL_REFUSALS = {
    "missing column": ("csv", "text,label\na,pos\n", Columns(text="txt", label="label"),
                       ["'data.csv' has no column 'txt'", "its columns are 'text', 'label'"]),
    "missing label column in jsonl": ("jsonl", '{"text": "a", "y": "pos"}\n', COLS,
                                      ["no column 'label'", "'text', 'y'"]),
    "same column twice": ("csv", "text,label\na,pos\n", Columns(text="text", label="text"),
                          ["'text'", "picked twice"]),
    "pair same as text": ("csv", "text,label\na,pos\n", Columns(text="text", pair="text", label="label"),
                          ["'text'", "picked twice"]),
    "empty text": ("csv", "text,label\na,pos\n,neg\n", COLS,
                   ["Row 2 of the file 'data.csv'", "no text in column 'text'"]),
    "blank text": ("csv", "text,label\na,pos\n   ,neg\n", COLS, ["Row 2 of the file 'data.csv'", "no text"]),
    "short row": ("csv", "text,label\na,pos\nb\n", COLS,
                  ["Row 2 of the file 'data.csv'", "no label in column 'label'"]),
    "missing label": ("csv", "text,label\na,\n", COLS, ["Row 1 of the file 'data.csv'", "no label in column 'label'"]),
    "missing label key": ("jsonl", '{"text": "a", "label": "x"}\n{"text": "b"}\n', COLS, ["Row 2", "no label"]),
    "null label": ("jsonl", '{"text": "a", "label": null}\n', COLS, ["Row 1", "no label"]),
    "NaN label": ("jsonl", '{"text": "a", "label": NaN}\n', COLS, ["Row 1", "no label"]),
    "null text": ("jsonl", '{"text": null, "label": "x"}\n', COLS, ["Row 1", "no text in column 'text'"]),
    "empty pair": ("csv", "text,other,label\na,,pos\n", PAIR_COLS, ["Row 1", "no text in column 'other'"]),
    "text too long": ("csv", "text,label\nabcdef,pos\n", COLS,
                      ["Row 1 of the file 'data.csv'", "6 characters", "limit is 5"]),
    "number as text": ("jsonl", '{"text": 12, "label": "x"}\n', COLS, ["Row 1", "the number 12", "text was expected"]),
    "list label": ("jsonl", '{"text": "a", "label": ["x"]}\n', COLS, ["Row 1", "a list", "text or a whole number"]),
    "object label": ("jsonl", '{"text": "a", "label": {"x": 1}}\n', COLS, ["Row 1", "an object", "whole number"]),
    "fractional label": ("jsonl", '{"text": "a", "label": 1.5}\n', COLS, ["Row 1", "the number 1.5", "whole number"]),
    "fractional label in a CSV": ("csv", "text,label\na,0.5\nb,1.5\n", COLS,
                                  ["Row 1", "the number 0.5", "whole number"]),
    "infinite label": ("jsonl", '{"text": "a", "label": Infinity}\n', COLS, ["Row 1", "the number inf"]),
    "bool label": ("jsonl", '{"text": "a", "label": true}\n', COLS, ["Row 1", "a true/false value"]),
    "lone surrogate": ("jsonl", '{"text": "a\\ud800", "label": "x"}\n', COLS, ["Row 1", "invalid character"]),
    "one class": ("csv", "text,label\na,pos\nb,pos\nc,pos\n", COLS,
                  ["'data.csv'", "1 distinct label(s) in column 'label'", "('pos')", "at least 2"]),
    "rare class": ("csv", "text,label\na,pos\nb,pos\nc,neg\nd,odd\n", COLS,
                   ["'data.csv'", "'neg', 'odd'", "fewer than 2 examples", "at least 2"]),
}


@pytest.mark.parametrize("case", CELL_REFUSALS)
def test_a_bad_column_or_cell_is_refused_with_one_sentence(tmp_path, case):
    kind, content, columns, words = CELL_REFUSALS[case]
    path = write(tmp_path, f"data.{kind}", content)
    reason = refusal(lambda: read_upload(path, columns, limits=UploadLimits(max_text_chars=5)))
    assert all(word in reason for word in words), reason


@pytest.mark.parametrize("kind", ["csv", "jsonl", "parquet"])
def test_a_missing_column_is_named_in_every_format(tmp_path, kind):
    path = write_rows(tmp_path, kind, ROWS)
    reason = refusal(lambda: read_upload(path, Columns(text="review", label="label")))
    assert reason == f"The file 'data.{kind}' has no column 'review'; its columns are 'text', 'label'."


def test_the_available_columns_are_escaped_and_the_list_is_cut_short(tmp_path):
    header = ",".join(["a\u202eb", "evil\x1b[31m"] + [f"column_{i}" for i in range(500)])
    path = write(tmp_path, "wide.csv", header + "\n" + ",".join(["x"] * 502) + "\n")
    reason = refusal(lambda: read_upload(path, COLS))
    assert "'a\\u202eb'" in reason and "'evil\\x1b[31m'" in reason and "\x1b" not in reason
    assert len(reason) < 500 and reason.endswith("more.")


def test_a_long_class_name_is_cut_short(tmp_path):
    path = write(tmp_path, "a.csv", "text,label\na,pos\nb,pos\nc," + "n" * 199 + "\n")
    reason = refusal(lambda: read_upload(path, COLS))
    assert "fewer than 2" in reason and len(reason) < 300 and "…" in reason


def test_a_parquet_dictionary_bomb_is_refused_before_it_unpacks(tmp_path):
    """A few hundred bytes whose one long text, stored once, every row points at: 2,000 rows of 1 MB each."""
    text = pa.DictionaryArray.from_arrays(pa.array([0] * 2000, pa.int32()), pa.array(["x" * 1_000_000]))
    table = pa.table({"text": text, "label": ["a", "b"] * 1000})
    pq.write_table(table, tmp_path / "bomb.parquet", compression="zstd")
    assert (tmp_path / "bomb.parquet").stat().st_size < 2000
    reason = refusal(lambda: read_upload(tmp_path / "bomb.parquet", COLS))
    assert reason == "A value in column 'text' of the file 'bomb.parquet' is longer than the limit of 5,000 characters."


def test_a_parquet_compression_bomb_is_refused_from_its_footer(tmp_path, monkeypatch):
    table = pa.table({"text": ["y" * 100_000] * 200, "label": ["a", "b"] * 100})
    pq.write_table(table, tmp_path / "zbomb.parquet", compression="zstd", use_dictionary=False)

    def no_reading(*args, **kwargs):
        raise AssertionError("the data was read")

    monkeypatch.setattr(pq.ParquetFile, "read", no_reading)
    reason = refusal(lambda: read_upload(tmp_path / "zbomb.parquet", COLS))
    assert "'zbomb.parquet' unpacks to 19.1 MB" in reason and "200 rows of at most 5,000 characters" in reason


@pytest.mark.parametrize("values", [[["a"], ["b"]], [b"a", b"b"], [{"x": 1}, {"x": 2}]])
def test_a_parquet_column_of_lists_bytes_or_records_is_refused(tmp_path, values):
    path = write_parquet(tmp_path, "a.parquet", [{"text": "t", "label": v} for v in values])
    reason = refusal(lambda: read_upload(path, COLS))
    assert reason == "Column 'label' of the file 'a.parquet' does not hold text or numbers."


def test_dictionary_encoded_and_null_parquet_columns_are_read(tmp_path):
    table = pa.table({"text": pa.array([r["text"] for r in ROWS]).dictionary_encode(),
                      "label": pa.array([r["label"] for r in ROWS]).dictionary_encode(), "empty": [None] * 4})
    pq.write_table(table, tmp_path / "a.parquet")
    assert read_upload(tmp_path / "a.parquet", COLS).data_hash == user_data(ROWS, COLS, source="x").data_hash
    assert "no text in column 'empty'" in refusal(lambda: read_upload(tmp_path / "a.parquet",
                                                                      Columns(text="empty", label="label")))


# -- limits at their boundaries ---------------------------------------------------------------------------------

def many_rows(n: int) -> list[dict]:
    return [{"text": f"row {i}", "label": "ab"[i % 2]} for i in range(n)]


@pytest.mark.parametrize("kind", ["csv", "jsonl", "parquet"])
def test_max_rows_rows_are_accepted_and_one_more_is_refused(tmp_path, kind):
    limits = UploadLimits(max_rows=10)
    assert read_upload(write_rows(tmp_path, kind, many_rows(10)), COLS, limits=limits).num_rows == 10
    reason = refusal(lambda: read_upload(write_rows(tmp_path, kind, many_rows(11)), COLS, limits=limits))
    assert reason == f"The file 'data.{kind}' has more than 10 rows; the limit is 10."


def test_max_bytes_bytes_are_accepted_and_one_more_is_refused(tmp_path):
    content = csv_text(ROWS)
    path = write(tmp_path, "a.csv", content)
    assert read_upload(path, COLS, limits=UploadLimits(max_bytes=len(content))).num_rows == 4
    assert "limit" in refusal(lambda: read_upload(path, COLS, limits=UploadLimits(max_bytes=len(content) - 1)))


def test_max_text_chars_characters_are_accepted_and_one_more_is_refused(tmp_path):
    rows = [{"text": "é" * 7, "label": "a"}, {"text": "x", "label": "a"}, {"text": "y", "label": "b"},
            {"text": "z", "label": "b"}]
    path = write(tmp_path, "a.csv", csv_text(rows))
    assert read_upload(path, COLS, limits=UploadLimits(max_text_chars=7)).texts[0] == "é" * 7  # characters, not bytes
    assert "Row 1" in refusal(lambda: read_upload(path, COLS, limits=UploadLimits(max_text_chars=6)))


def test_class_limits_are_exact(tmp_path):
    rows = [{"text": t, "label": lab} for t, lab in [("a", "x"), ("b", "x"), ("c", "y"), ("d", "y"), ("e", "z")]]
    path = write(tmp_path, "a.csv", csv_text(rows))
    assert read_upload(path, COLS, limits=UploadLimits(min_per_class=1, min_classes=3)).num_classes == 3
    assert "'z'" in refusal(lambda: read_upload(path, COLS, limits=UploadLimits(min_per_class=2)))
    assert "at least 4" in refusal(lambda: read_upload(path, COLS, limits=UploadLimits(min_classes=4,
                                                                                       min_per_class=1)))


# -- what is accepted -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["jsonl", "parquet"])
def test_every_format_reads_the_same_rows_to_the_same_record(tmp_path, kind):
    from_csv = read_upload(write_rows(tmp_path, "csv", ROWS), COLS)
    other = read_upload(write_rows(tmp_path, kind, ROWS), COLS)
    assert other.source == f"upload:data.{kind}" and from_csv.source == "upload:data.csv"
    assert other.data_hash == from_csv.data_hash and len(other.data_hash) == 64
    assert {**_fields(other), "source": ""} == {**_fields(from_csv), "source": ""}
    assert from_csv.texts == tuple(r["text"] for r in ROWS) and from_csv.pairs is None
    assert from_csv.label_names == ("neg", "pos") and from_csv.labels == (1, 0, 1, 0)


def _fields(data: UserData) -> dict:
    return json.loads(data.to_json())


@pytest.mark.parametrize("kind", ["csv", "jsonl", "parquet"])
def test_integer_labels_become_their_string_forms(tmp_path, kind):
    rows = [{"text": f"t{i}", "label": v} for i, v in enumerate([0, 1, 10, 2, 0, 1, 10, 2])]
    data = read_upload(write_rows(tmp_path, kind, rows), COLS)
    assert data.label_names == ("0", "1", "10", "2")  # sorted as strings
    assert data.class_counts() == {"0": 2, "1": 2, "10": 2, "2": 2}
    assert data.data_hash == read_upload(write_rows(tmp_path, "csv", rows), COLS).data_hash


def test_whole_float_labels_are_integers_and_strings_are_kept_verbatim(tmp_path):
    rows = [{"text": "a", "label": 1.0}, {"text": "b", "label": 1}, {"text": "c", "label": "NA"},
            {"text": "d", "label": "NA"}]
    data = read_upload(write(tmp_path, "a.jsonl", jsonl_text(rows)), COLS)
    assert data.label_names == ("1", "NA") and data.labels == (0, 0, 1, 1)


def test_csv_cells_are_never_interpreted(tmp_path):
    rows = [{"text": "=1+1", "label": "null"}, {"text": "NaN", "label": "null"}, {"text": "1e3", "label": "True"},
            {"text": " 007 ", "label": "True"}, {"text": "x", "label": "1.0"}, {"text": "y", "label": "1.0"}]
    data = read_upload(write(tmp_path, "a.csv", csv_text(rows)), COLS)
    assert data.texts == ("=1+1", "NaN", "1e3", " 007 ", "x", "y") and data.label_names == ("1.0", "True", "null")


def test_the_pair_column_is_optional(tmp_path):
    rows = [{**row, "other": f"second {i}"} for i, row in enumerate(ROWS)]
    path = write(tmp_path, "a.csv", csv_text(rows, "text,other,label"))
    single, paired = read_upload(path, COLS), read_upload(path, PAIR_COLS)
    assert single.pairs is None and paired.pairs == ("second 0", "second 1", "second 2", "second 3")
    assert single.texts == paired.texts and single.data_hash != paired.data_hash


@pytest.mark.parametrize("kind", ["csv", "jsonl"])
def test_a_utf8_byte_order_mark_is_fine(tmp_path, kind):
    text = csv_text(ROWS) if kind == "csv" else jsonl_text(ROWS)
    with_bom = read_upload(write(tmp_path, f"bom.{kind}", b"\xef\xbb\xbf" + text.encode()), COLS)
    assert with_bom.data_hash == read_upload(write(tmp_path, f"plain.{kind}", text), COLS).data_hash


def test_crlf_line_ends_and_quoted_newlines_are_fine(tmp_path):
    rows = [{"text": "two\nlines", "label": "a"}, {"text": "b", "label": "a"}, {"text": "c", "label": "b"},
            {"text": "d", "label": "b"}]
    csv_data = read_upload(write(tmp_path, "a.csv", csv_text(rows).replace("\n", "\r\n").replace("two\r\n", "two\n")),
                           COLS)
    jsonl_data = read_upload(write(tmp_path, "a.jsonl", jsonl_text(rows).replace("\n", "\r\n")), COLS)
    assert csv_data.texts[0] == "two\nlines" and csv_data.data_hash == jsonl_data.data_hash


def test_rows_and_columns_give_the_same_record():
    as_columns = {"text": [r["text"] for r in ROWS], "label": [r["label"] for r in ROWS], "extra": [1, 2, 3, 4]}
    assert user_data(ROWS, COLS, source="x") == user_data(as_columns, COLS, source="x")


def test_the_hash_is_the_sha256_of_the_canonical_rows():
    import hashlib

    data = user_data(ROWS, COLS, source="upload:a.csv")
    canonical = json.dumps([[r["text"] for r in ROWS], None, [r["label"] for r in ROWS]], separators=(",", ":"))
    assert data.data_hash == hashlib.sha256(canonical.encode()).hexdigest()


def _changed(change: str) -> list[dict]:
    rows = [dict(row) for row in ROWS]
    if change == "text":
        rows[2]["text"] += " "
    elif change == "label":
        rows[0]["label"], rows[1]["label"] = "neg", "pos"
    elif change == "order":
        rows[0], rows[1] = rows[1], rows[0]
    elif change == "row added":
        rows.append({"text": "one more", "label": "pos"})
    return rows


@pytest.mark.parametrize("change", ["text", "label", "order", "row added"])
def test_the_hash_changes_with_any_cell_or_the_row_order(change):
    assert user_data(_changed(change), COLS, source="x").data_hash != user_data(ROWS, COLS, source="x").data_hash


def test_the_hash_does_not_depend_on_the_source():
    assert user_data(ROWS, COLS, source="upload:a.csv").data_hash == user_data(ROWS, COLS, source="hub:b").data_hash


def test_read_columns_lists_the_header(tmp_path):
    assert read_columns(write(tmp_path, "a.csv", "text,label,extra\na,b,c\n")) == ["text", "label", "extra"]
    assert read_columns(write(tmp_path, "a.jsonl", '{"a": 1}\n{"b": 2, "a": 3}\n')) == ["a", "b"]
    assert read_columns(write_parquet(tmp_path, "a.parquet", [{"z": 1, "y": "s"}])) == ["z", "y"]


@pytest.mark.parametrize(("name", "kind"), [
    ("a.csv", "csv"), ("A.CSV", "csv"), ("a.jsonl", "jsonl"), ("a.ndjson", "jsonl"), ("a.json-lines", "jsonl"),
    ("a.parquet", "parquet"), ("a.Parquet", "parquet"),
])
def test_file_format_goes_by_the_name(tmp_path, name, kind):
    assert file_format(write(tmp_path, "upload.tmp", "text,label\n"), name) == kind
    assert file_format(write(tmp_path, name, "text,label\n")) == kind


def test_parquet_is_recognised_by_its_magic_bytes_whatever_the_name(tmp_path):
    path = write_parquet(tmp_path, "a.parquet", ROWS)
    renamed = path.rename(tmp_path / "export.csv")
    assert file_format(renamed) == "parquet" and file_format(renamed, "upload") == "parquet"
    assert read_upload(renamed, COLS).data_hash == user_data(ROWS, COLS, source="x").data_hash


def test_the_fixture_reviews_load(tmp_path):
    data = read_upload(FIXTURE, COLS)
    assert data.num_rows == 40 and data.label_names == ("neg", "pos")
    assert data.class_counts() == {"neg": 20, "pos": 20} and data.source == "upload:reviews.csv"
    assert len(set(data.texts)) == 40


# -- the JSON form ----------------------------------------------------------------------------------------------

def test_to_json_and_from_json_round_trip_exactly():
    rows = [{**row, "other": f"zweite Zeile {i} \u00e9\u4e2d\U0001f600"} for i, row in enumerate(ROWS)]
    for columns in (COLS, PAIR_COLS):
        data = user_data(rows, columns, source="hub:org/name/config:train@" + "a" * 40)
        text = data.to_json()
        assert UserData.from_json(text) == data and UserData.from_json(text).to_json() == text


def _tampered(how: str) -> str:
    saved = json.loads(user_data(ROWS, COLS, source="upload:a.csv").to_json())
    if how == "text":
        saved["texts"][0] = "changed"
    elif how == "label id":
        saved["labels"][0] = 1 - saved["labels"][0]
    elif how == "label name":
        saved["label_names"] = ["neg", "pos", "unused"]
    elif how == "hash":
        saved["data_hash"] = "0" * 64
    elif how == "source":
        saved["source"] = 3
    elif how == "number text":
        saved["texts"][0] = 1
    elif how == "missing key":
        del saved["pairs"]
    elif how == "label out of range":
        saved["labels"][0] = 7
    elif how == "pairs too short":
        saved["pairs"] = ["one"]
    return json.dumps(saved) if how != "not json" else "{not json"


@pytest.mark.parametrize("how", ["text", "label id", "label name", "hash", "source", "number text", "missing key",
                                 "label out of range", "pairs too short", "not json"])
def test_a_changed_or_damaged_record_is_refused(how):
    reason = refusal(lambda: UserData.from_json(_tampered(how)))
    assert "saved data" in reason


def test_a_changed_row_is_refused_because_of_its_hash():
    assert "does not match its hash" in refusal(lambda: UserData.from_json(_tampered("text")))


# -- hub ids ----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("repo_id", ["../etc", "/etc/passwd", "justname", "a/b/c", "org/", "org/na me", ""])
def test_a_hub_dataset_id_must_look_like_owner_name(repo_id):
    assert "not a Hub dataset id" in refusal(lambda: read_hub_dataset(repo_id, columns=COLS))


def test_a_hub_dataset_id_that_is_a_local_directory_is_never_read(tmp_path, monkeypatch):
    (tmp_path / "org" / "name").mkdir(parents=True)
    write_rows(tmp_path / "org" / "name", "csv", ROWS)
    monkeypatch.chdir(tmp_path)
    assert "not a Hub dataset id" in refusal(lambda: read_hub_dataset("org/name", columns=COLS))


def test_the_same_column_twice_is_refused_before_the_hub_is_asked():
    reason = refusal(lambda: read_hub_dataset("org/name", columns=Columns(text="a", pair="b", label="b")))
    assert "'b' was picked twice" in reason
