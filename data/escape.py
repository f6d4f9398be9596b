"""Text from the Hub or a user, escaped for where it lands: a CSV cell, a log line, Markdown.

Every place that shows such text goes through one of these (a unit test feeds each the same hostile strings).
"""

from __future__ import annotations

import html
import re

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+!|~>:<.@-])")  # . @ : stop GFM autolinks (www., x@y, http:)
_CONTROL = re.compile(r"[\x00-\x1f\x7f\u2028\u2029]")


def csv_cell(value):
    """A text cell a spreadsheet would run as a formula (OWASP's CSV-injection rule), prefixed with ``'`` so it
    opens as text; anything else unchanged."""
    return "'" + value if isinstance(value, str) and value.startswith(FORMULA_STARTS) else value


def log_text(value: object, limit: int = 200) -> str:
    """``value`` for one log line: control characters (a newline would forge a line) shown as escapes, and at
    most ``limit`` characters."""
    text = _CONTROL.sub(lambda m: m.group().encode("unicode_escape").decode(), str(value))
    return text if len(text) <= limit else text[:limit] + "…"


def table_text(value: object) -> str:
    """A repo id or label as readable text in a Markdown table cell: HTML escaped, table pipes and emphasis stars
    neutralised (lighter than ``markdown_text``, for the project's reports where ids stay legible)."""
    return html.escape(str(value), quote=False).replace("|", "\\|").replace("*", "\\*")


def markdown_text(value: object) -> str:
    """``value`` as literal text inside Markdown: HTML-escaped, then every Markdown special character
    backslash-escaped, so no link, image, emphasis or markup can form. Quotes stay quotes: with ``<`` and ``>``
    escaped no tag (so no attribute) can open, and an entity such as ``&#x27;`` would show as its characters once
    its ``#`` is escaped."""
    return _MARKDOWN_SPECIAL.sub(r"\\\1", html.escape(str(value), quote=False))
