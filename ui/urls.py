"""Shareable page URLs: ``?base=...&source=...`` opens a leaderboard, ``&model=ID`` its model page and
``&compare=A,B,C`` a comparison; ``&include_seen=1`` shows mean gains that include the targets a model was
trained on (by default they are left out: the zero-shot estimand), ``&include_suspect=1`` ones that include
suspect imported cells (left out by default). Pure functions: build the query of a view,
read one back.

Links are relative (``?base=...``), so they work wherever the app is served. Values are URL-encoded, keeping
``/`` (in every repo id) and the ``,`` between compared ids readable.

The leaderboard's view travels too, each parameter only when it differs from the default (``ViewQuery()``):
``q`` (search), ``license`` (comma-separated), ``min_downloads``, ``fully_scored=1``, ``hide_below=1``,
``columns`` (column groups), ``sort``, ``rows`` and ``sizes`` (``none``: no bucket). A value the page does not offer
is ignored (the default stands), and a filter the board lacks falls back when the board is built.

``?personal=TOKEN`` opens the "Your data" tab on that personal ranking (its token is the only key to it).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from urllib.parse import quote

from ranking.columns import GROUPS
from ui.views import ROW_LIMITS, SIZE_CHOICES, ViewQuery

MAX_PARAM_CHARS = 2000  # longer values are ignored (no Hub id is that long)
FLAG_VALUES = {"1": True, "true": True, "0": False, "false": False}  # a yes/no query parameter, any case


@dataclass(frozen=True, slots=True)
class PageParams:
    """What a page URL asks for; empty strings and tuples where it asks nothing."""

    base: str = ""
    source: str = ""
    model: str = ""
    compare: tuple[str, ...] = ()
    include_seen: bool = False  # mean gains include the targets a model was trained on
    include_suspect: bool = False  # mean gains include suspect imported cells
    personal: str = ""  # a personal ranking's token
    view: ViewQuery = field(default_factory=ViewQuery)  # the leaderboard's search, filters, columns, sort, rows

    @property
    def tab(self) -> str:
        """The tab the URL opens: a personal ranking, else the comparison, else the model page, else the
        leaderboard."""
        if self.personal:
            return "personal"
        return "compare" if self.compare else "model" if self.model else "leaderboard"


def parse_ids(value: str | Iterable[str] | None) -> tuple[str, ...]:
    """Model ids from ``"a, b,c"`` or a list: stripped, blanks dropped, each once, in order."""
    if value is None:
        return ()
    parts = value.split(",") if isinstance(value, str) else [str(v) for v in value]
    return tuple(dict.fromkeys(p.strip() for p in parts if p and p.strip()))


def parse_flag(value: str | None) -> bool | None:
    """A yes/no query parameter: ``1``/``true`` True, ``0``/``false`` False (any case), anything else None."""
    return FLAG_VALUES.get(str(value if value is not None else "").strip().lower())


def page_params(query: Mapping[str, str] | None) -> PageParams:
    """Read a request's query parameters (already URL-decoded, as ``gr.Request.query_params`` gives them)."""
    query = query or {}

    def value(key: str) -> str:
        text = str(query.get(key) or "").strip()
        return text if len(text) <= MAX_PARAM_CHARS else ""

    return PageParams(base=value("base"), source=value("source"), model=value("model"),
                      compare=parse_ids(value("compare")), include_seen=bool(parse_flag(value("include_seen"))),
                      include_suspect=bool(parse_flag(value("include_suspect"))), personal=value("personal"),
                      view=view_of(value))


def view_of(value) -> ViewQuery:
    """The view a URL's parameters name (``value(key)``: the parameter's text, "" when absent); what the page does
    not offer is left at its default."""
    default = ViewQuery()
    downloads = _number(value("min_downloads"))
    groups = tuple(g for g in parse_ids(value("columns")) if g in GROUPS)
    sizes = () if value("sizes") == "none" else tuple(s for s in parse_ids(value("sizes")) if s in SIZE_CHOICES)
    return ViewQuery(search=value("q")[:200], licenses=parse_ids(value("license")),
                     min_downloads=downloads if downloads is not None and downloads >= 0 else 0,
                     fully_scored_only=bool(parse_flag(value("fully_scored"))),
                     hide_below_base=bool(parse_flag(value("hide_below"))),
                     groups=groups or default.groups, sort_by=value("sort")[:200] or default.sort_by,
                     max_rows=value("rows") if value("rows") in ROW_LIMITS else default.max_rows,
                     sizes=sizes if sizes or value("sizes") == "none" else default.sizes)


def view_params(view: ViewQuery | None) -> list[tuple[str, str]]:
    """The URL parameters of ``view``: those that differ from the default, in a fixed order."""
    if view is None:
        return []
    default, params = ViewQuery(), []
    for key, value, base in (("q", view.search.strip(), default.search), ("license", ",".join(view.licenses), ""),
                             ("min_downloads", _compact(view.min_downloads), _compact(default.min_downloads)),
                             ("fully_scored", "1" if view.fully_scored_only else "", ""),
                             ("hide_below", "1" if view.hide_below_base else "", ""),
                             ("columns", ",".join(view.groups), ",".join(default.groups)),
                             ("sort", view.sort_by, default.sort_by), ("rows", view.max_rows, default.max_rows),
                             ("sizes", ",".join(view.sizes) or "none", ",".join(default.sizes))):
        if value != base:
            params.append((key, value))
    return params


def _number(text: str) -> float | None:
    try:
        number = float(text)
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def _compact(number: float) -> str:
    return str(int(number)) if float(number).is_integer() else str(number)


def page_query(base: str, source: str, *, model: str = "", compare: Iterable[str] = (),
               include_seen: bool = False, include_suspect: bool = False, view: ViewQuery | None = None) -> str:
    """The relative URL (``?base=...&source=...[&include_seen=1][&include_suspect=1][view...][&model=...|
    &compare=...]``) that reopens this view."""
    params = [("base", base), ("source", source), *view_params(view)]
    if include_seen:
        params.append(("include_seen", "1"))
    if include_suspect:
        params.append(("include_suspect", "1"))
    if model:
        params.append(("model", model))
    ids = parse_ids(compare)
    if ids:
        params.append(("compare", ",".join(ids)))
    return "?" + "&".join(f"{key}={quote(str(value), safe='/,')}" for key, value in params)


def personal_query(token: str) -> str:
    """The relative URL (``?personal=TOKEN``) of a personal ranking."""
    return f"?personal={quote(str(token), safe='')}"


def share_markdown(query: str, what: str = "this page") -> str:
    """A markdown line linking to ``query`` (as ``page_query`` builds it: only URL-safe characters)."""
    return f"**Link to {what}:** [`{query}`]({query})"
