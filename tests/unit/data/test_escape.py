"""Hub and user text escaped for where it lands: CSV cells, log lines, Markdown."""

from __future__ import annotations

import pytest

from data.escape import csv_cell, log_text, markdown_text

FORMULAS = ["=1+1", "+cmd|' /C calc'!A0", "-2+3", "@SUM(A1:A2)", "\t=1", "\r=1", '=HYPERLINK("http://x","y")']


@pytest.mark.parametrize("cell", FORMULAS)
def test_formula_cells_are_neutralised(cell):
    assert csv_cell(cell) == "'" + cell


@pytest.mark.parametrize("cell", ["org/model", "mit", "", "a=b", "1e-5", None, -0.25, 3, float("nan")])
def test_other_cells_are_unchanged(cell):
    out = csv_cell(cell)
    assert out is cell or out == cell


def test_a_log_value_cannot_forge_a_line_or_flood_the_log():
    assert log_text("FacebookAI/roberta-base\n2026-01-01 INFO app: forged") == \
        "FacebookAI/roberta-base\\n2026-01-01 INFO app: forged"
    assert "\n" not in log_text("a\r\nb\x00c\u2028d") and len(log_text("x" * 10_000)) == 201


@pytest.mark.parametrize(("text", "forbidden"), [
    ("[Download](http://evil.example/x)", "]("),
    ("![p](http://evil.example/pixel.png)", "!["),
    ("<img src=x onerror=alert(1)>", "<img"),
    ("**bold** _it_ `code`", "**"),
    ("<https://evil.example>", "<https"),
])
def test_markdown_text_forms_no_link_image_or_markup(text, forbidden):
    assert forbidden not in markdown_text(text)


@pytest.mark.parametrize("text", ["www.evil.example", "http://evil.example/x", "mail@evil.example"])
def test_markdown_text_breaks_gfm_autolinks(text):
    escaped = markdown_text(text)
    assert "www." not in escaped and "http://" not in escaped and "l@evil" not in escaped
