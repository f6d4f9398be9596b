"""Every upload is bounded before the work it would cost: the header's width and names before rows are parsed, a
JSON line's keys while it is parsed, a Parquet file's decoded text before Python strings exist, classes and labels
before the estimators see them. Each refusal is one sentence; each limit holds at its boundary."""

from __future__ import annotations

import json
import time

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from data.user_data import Columns, UploadLimits, UserDataError, read_columns, read_upload

COLS = Columns(text="text", label="label")
EMOJI = "\U0001f600"


def refusal(call) -> str:
    with pytest.raises(UserDataError) as caught:
        call()
    return caught.value.reason


def write(tmp_path, name: str, content: str | bytes):
    path = tmp_path / name
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    return path


def test_a_csv_of_160000_columns_is_refused_from_its_header_in_well_under_a_second(tmp_path):
    header = ",".join(f"c{i}" for i in range(160_000))
    path = write(tmp_path, "wide.csv", header + "\n" + ",".join("x" * 160_000) + "\n")
    started = time.perf_counter()
    reason = refusal(lambda: read_columns(path))
    assert time.perf_counter() - started < 1.0
    assert reason == "The file 'wide.csv' has more than 1,000 columns; the limit is 1,000."


def test_the_column_limit_holds_at_its_boundary(tmp_path):
    limits = UploadLimits(max_columns=3)
    ok = write(tmp_path, "ok.csv", "text,label,c\na,x,1\nb,y,2\na,x,1\nb,y,2\n")
    assert read_columns(ok, limits=limits) == ["text", "label", "c"]
    wide = write(tmp_path, "wide.csv", "text,label,c,d\na,x,1,2\n")
    assert "has 4 columns; the limit is 3" in refusal(lambda: read_columns(wide, limits=limits))


def test_a_header_that_never_ends_is_refused(tmp_path):
    path = write(tmp_path, "long.csv", "text,label," + "n" * 400_000 + "\nx,y,z\n")
    reason = refusal(lambda: read_columns(path))
    assert "column name" in reason or "header row" in reason


def test_a_long_column_name_is_refused(tmp_path):
    path = write(tmp_path, "n.csv", "text,label," + "n" * 201 + "\na,x,1\n")
    assert "column name of 201 characters; the limit is 200" in refusal(lambda: read_columns(path))
    fine = write(tmp_path, "m.csv", "text,label," + "n" * 200 + "\na,x,1\n")
    assert len(read_columns(fine)) == 3


def test_a_jsonl_line_of_a_million_keys_is_refused_without_building_it(tmp_path):
    line = "{" + ",".join(f'"k{i}":1' for i in range(1_000_000)) + "}"
    path = write(tmp_path, "keys.jsonl", line[:2**20 - 10].rsplit(",", 1)[0] + "}\n")
    started = time.perf_counter()
    reason = refusal(lambda: read_columns(path))
    assert time.perf_counter() - started < 2.0
    assert "keys; the limit is 1,000 columns" in reason
    longer = write(tmp_path, "long.jsonl", line + "\n")
    assert "longer than the limit of 1.0 MB" in refusal(lambda: read_columns(longer))


def test_jsonl_rows_whose_keys_together_pass_the_column_limit_are_refused(tmp_path):
    rows = "".join(json.dumps({"text": "a", "label": "x", f"k{i}": 1}) + "\n" for i in range(20))
    path = write(tmp_path, "keys.jsonl", rows)
    assert "columns; the limit is 10" in refusal(lambda: read_columns(path, limits=UploadLimits(max_columns=10)))


def emoji_bomb(tmp_path, rows: int = 5_000, chars: int = 5_000):
    """About a kilobyte: two dictionary-encoded columns whose one value of ``chars`` emoji every row points at."""
    def column():
        return pa.DictionaryArray.from_arrays(pa.array([0] * rows, pa.int32()), pa.array([EMOJI * chars]))

    labels = pa.DictionaryArray.from_arrays(pa.array([i % 2 for i in range(rows)], pa.int32()), pa.array(["a", "b"]))
    path = tmp_path / "emoji.parquet"
    pq.write_table(pa.table({"text": column(), "pair": column(), "label": labels}), path, compression="zstd")
    return path


def test_a_1kb_parquet_that_decodes_to_200mb_is_refused_before_python_strings_exist(tmp_path):
    path = emoji_bomb(tmp_path)
    assert path.stat().st_size < 4096
    started = time.perf_counter()
    reason = refusal(lambda: read_upload(path, Columns(text="text", pair="pair", label="label")))
    assert time.perf_counter() - started < 2.0
    assert reason == "The file 'emoji.parquet' holds more than 32.0 MB of text in the picked columns, the limit."


def test_the_decoded_limit_holds_at_its_boundary(tmp_path):
    path = emoji_bomb(tmp_path, rows=100, chars=10)  # 100 rows x 2 columns x 40 bytes + 100 one-byte labels
    both = Columns(text="text", pair="pair", label="label")
    assert read_upload(path, both, limits=UploadLimits(max_decoded_bytes=8_100)).num_rows == 100
    assert "more than 7.9 KB of text" in refusal(lambda: read_upload(path, both,
                                                                     limits=UploadLimits(max_decoded_bytes=8_099)))


def test_a_csv_over_the_decoded_limit_is_refused(tmp_path):
    rows = "".join(f"{EMOJI * 100},{i % 2}\n" for i in range(50))
    path = write(tmp_path, "e.csv", "text,label\n" + rows)
    assert read_upload(path, COLS, limits=UploadLimits(max_decoded_bytes=20_050)).num_rows == 50
    assert "of text in the picked columns" in refusal(
        lambda: read_upload(path, COLS, limits=UploadLimits(max_decoded_bytes=20_049)))


def test_ten_thousand_classes_are_refused_before_any_model_runs(tmp_path):
    rows = "".join(f"t{i},c{i // 2}\n" for i in range(20_000))
    path = write(tmp_path, "many.csv", "text,label\n" + rows)
    reason = refusal(lambda: read_upload(path, COLS))
    assert reason == ("The file 'many.csv' has 10,000 distinct labels in column 'label'; the limit is 256 classes: "
                      "is it the label column?")
    few = write(tmp_path, "few.csv", "text,label\n" + "".join(f"t{i},c{i // 2}\n" for i in range(512)))
    assert read_upload(few, COLS).num_classes == 256


def test_a_label_of_4_5_mb_is_refused_and_clipped_in_its_sentence(tmp_path):
    path = write(tmp_path, "l.csv", "text,label\na," + "L" * 4_500_000 + "\nb,x\nc,x\nd,y\n")
    reason = refusal(lambda: read_upload(path, COLS))
    assert reason == ("Row 1 of the file 'l.csv' has a label of 4,500,000 characters in column 'label'; the limit "
                      "is 200: is it the label column?")


def test_a_device_a_folder_or_a_pipe_is_never_opened(tmp_path):
    import os

    fifo = tmp_path / "pipe.csv"
    os.mkfifo(fifo)
    for path in (tmp_path, fifo, "/dev/zero"):
        assert refusal(lambda p=path: read_columns(p, "data.csv")) == "The file 'data.csv' could not be opened."
