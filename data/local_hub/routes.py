"""Which endpoint a request path names, and for which repo.

Paths are split while still percent-encoded: the client encodes revisions with ``quote(rev, safe="")``,
so a ``/`` inside a revision (``refs/pr/1``) arrives as ``%2F`` and stays inside one segment.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from urllib.parse import unquote

from data.local_hub.repos import RepoType

_API_TYPES = {repo_type.plural: repo_type for repo_type in RepoType}
_URL_PREFIXES = {"datasets": RepoType.DATASET}
_API_KEYWORDS = ("revision", "tree")


class RouteKind(StrEnum):
    """The endpoints the local Hub answers."""

    LIST = "list"  # GET /api/models
    INFO = "info"  # GET /api/models/{repo_id}[/revision/{rev}]
    TREE = "tree"  # GET /api/models/{repo_id}/tree/{rev}[/{path}]
    RESOLVE = "resolve"  # HEAD|GET /{repo_id}/resolve/{rev}/{path}
    BLOB = "blob"  # HEAD|GET {cdn}/blobs/{etag} (the second origin)


@dataclass(frozen=True, slots=True)
class Route:
    """A parsed request path. `repo_id` is as requested (maybe a legacy alias); `path` is a path in the repo."""

    kind: RouteKind
    repo_type: RepoType = RepoType.MODEL
    repo_id: str | None = None
    revision: str | None = None
    path: str = ""


IsKnown = Callable[[RepoType, str], bool]


def parse_api_route(raw_path: str, is_known: IsKnown) -> Route | None:
    """The route of a path on the main origin, or None for an unknown path.

    `is_known` tells whether a repo id exists, to split ``/api/models/a/b/...`` into a one- or two-part id.
    """
    if not raw_path.startswith("/"):
        return None
    segments = raw_path.split("/")[1:]
    if segments[0] == "api":
        return _parse_api(segments[1:], is_known)
    repo_type = _URL_PREFIXES.get(segments[0])
    return _parse_resolve(segments[1:] if repo_type else segments, repo_type or RepoType.MODEL, is_known)


def parse_cdn_route(raw_path: str) -> Route | None:
    """The route of a path on the CDN origin: ``/blobs/{etag}``."""
    segments = raw_path.split("/")[1:]
    if len(segments) == 2 and segments[0] == "blobs" and segments[1]:
        return Route(RouteKind.BLOB, path=segments[1])
    return None


def _parse_api(segments: Sequence[str], is_known: IsKnown) -> Route | None:
    repo_type = _API_TYPES.get(segments[0]) if segments else None
    if repo_type is None:
        return None
    rest = [segment for segment in segments[1:] if segment]
    if not rest:
        return Route(RouteKind.LIST, repo_type)
    repo_id, tail = _split_repo_id(repo_type, rest, is_known)
    if not tail:
        return Route(RouteKind.INFO, repo_type, repo_id)
    if tail[0] == "revision" and len(tail) >= 2:
        return Route(RouteKind.INFO, repo_type, repo_id, revision=unquote("/".join(tail[1:])))
    if tail[0] == "tree" and len(tail) >= 2:
        path = unquote("/".join(tail[2:])).strip("/")
        return Route(RouteKind.TREE, repo_type, repo_id, revision=unquote(tail[1]), path=path)
    return None


def _split_repo_id(
    repo_type: RepoType, segments: Sequence[str], is_known: IsKnown
) -> tuple[str, Sequence[str]]:
    """Split ``[ns, name, *tail]`` or ``[name, *tail]``: known ids first, then by the keyword that follows."""
    one = unquote(segments[0])
    two = f"{one}/{unquote(segments[1])}" if len(segments) >= 2 else None
    if two is not None and is_known(repo_type, two):
        return two, segments[2:]
    if is_known(repo_type, one) or two is None or segments[1] in _API_KEYWORDS:
        return one, segments[1:]
    return two, segments[2:]


def _parse_resolve(segments: Sequence[str], repo_type: RepoType, is_known: IsKnown) -> Route | None:
    """``{repo_id}/resolve/{rev}/{path...}`` with a one- or two-part repo id."""
    candidates = [
        Route(
            RouteKind.RESOLVE,
            repo_type,
            "/".join(unquote(segment) for segment in segments[:id_length]),
            revision=unquote(segments[id_length + 1]),
            path=unquote("/".join(segments[id_length + 2 :])),
        )
        for id_length in (2, 1)
        if len(segments) > id_length + 2 and segments[id_length] == "resolve"
    ]
    known = [route for route in candidates if is_known(repo_type, route.repo_id or "")]
    return (known or candidates or [None])[0]
