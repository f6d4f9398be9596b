"""The JSON endpoints: list repos, repo info, repo tree. Each takes a `Request` and returns a `Response`."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

from data.local_hub.payloads import (
    INFO_ONLY_FIELDS,
    format_datetime,
    info_fields,
    list_fields,
    render_item,
    repo_properties,
    select,
    to_json,
)
from data.local_hub.repos import SORT_KEYS, Commit, ListQuery, Registry, Repo
from data.local_hub.responses import (
    Response,
    bad_request,
    entry_not_found,
    json_response,
    raw_json_response,
    repo_not_found,
    revision_not_found,
)
from data.local_hub.routes import Route

_TRUE = ("true", "1")


@dataclass(frozen=True, slots=True)
class Request:
    """What an endpoint needs to know about one request."""

    route: Route
    params: Mapping[str, list[str]]  # decoded query parameters, repeated ones in order
    has_access: bool  # carries a token allowed to read private and gated repos
    base_url: str  # origin of this server, for absolute ``Link`` urls
    range_header: str | None = None


def find_repo(registry: Registry, request: Request) -> Repo:
    """The repo the request names, if the caller may see it; else raise a RepoNotFound error."""
    route = request.route
    repo = registry.get(route.repo_type, route.repo_id or "")
    if repo is None or (repo.meta.private and not request.has_access):
        raise repo_not_found(route.repo_id or "")
    return repo


def find_commit(repo: Repo, revision: str | None) -> Commit:
    """The commit `revision` (default ``main``) points to; else raise a RevisionNotFound error."""
    commit = repo.find_commit(revision or "main")
    if commit is None:
        raise revision_not_found(repo.repo_id, revision or "main")
    return commit


def list_repos(registry: Registry, request: Request, page_size: int) -> Response:
    """``GET /api/models`` (or datasets): one page of matching repos, ``Link: rel="next"`` if more remain."""
    params, repo_type = request.params, request.route.repo_type
    sort = _single(params, "sort")
    if sort is not None and sort not in SORT_KEYS:
        raise bad_request(f"Invalid sort {sort!r}: expected one of {sorted(SORT_KEYS)}")
    expand = params.get("expand", [])
    if info_only := sorted(INFO_ONLY_FIELDS.intersection(expand)):
        raise bad_request(f"expand {info_only} is only allowed in repo info")
    query = ListQuery(
        filters=(*params.get("filter", ()), *params.get("pipeline_tag", ())),
        search=tuple(params.get("search", ())),
        author=_single(params, "author"),
        gated=_flag(params, "gated") if "gated" in params else None,
        sort=sort,
        include_private=request.has_access,
    )
    fields = list_fields(
        repo_type,
        expand=expand,
        full=_flag(params, "full"),
        card_data=_flag(params, "cardData"),
        config=_flag(params, "config"),
    )
    limit = _int(params, "limit")
    repos = registry.list_repos(repo_type, query)
    page, headers = _paginate(request, repos, min(page_size, limit) if limit else page_size)
    return raw_json_response(
        "[" + ",".join(render_item(repo.listing, fields) for repo in page) + "]", headers=headers
    )


def repo_info(registry: Registry, request: Request) -> Response:
    """``GET /api/models/{repo_id}[/revision/{rev}]``: the repo at that revision, honouring ``expand``."""
    repo = find_repo(registry, request)
    commit = find_commit(repo, request.route.revision)
    properties = repo_properties(repo, commit, blobs=_flag(request.params, "blobs"))
    return json_response(
        select(properties, info_fields(repo.repo_type, expand=request.params.get("expand", ())))
    )


def repo_tree(registry: Registry, request: Request, page_size: int) -> Response:
    """``GET /api/models/{repo_id}/tree/{rev}[/{path}]``: files and folders, paginated like lists."""
    repo = find_repo(registry, request)
    commit = find_commit(repo, request.route.revision)
    entries = _tree_entries(
        repo,
        commit,
        request.route.path,
        recursive=_flag(request.params, "recursive"),
        expand=_flag(request.params, "expand"),
    )
    page, headers = _paginate(request, entries, page_size)
    return raw_json_response(to_json(page), headers=headers)


def _tree_entries(
    repo: Repo, commit: Commit, path: str, *, recursive: bool, expand: bool
) -> list[dict[str, Any]]:
    prefix = f"{path}/" if path else ""
    below = [file_path for file_path in commit.files if file_path.startswith(prefix)]
    if path and not below:
        raise entry_not_found(path, commit.sha)
    directories: set[str] = set()
    entries = []
    for file_path in below:
        parts = file_path[len(prefix) :].split("/")
        folder_depths = range(1, len(parts)) if recursive else range(1, min(len(parts), 2))
        directories.update(prefix + "/".join(parts[:depth]) for depth in folder_depths)
        if recursive or len(parts) == 1:
            entries.append(_file_entry(repo, commit, file_path, expand=expand))
    entries += [_folder_entry(commit, folder) for folder in directories]
    return sorted(entries, key=lambda entry: entry["path"])


def _file_entry(repo: Repo, commit: Commit, path: str, *, expand: bool) -> dict[str, Any]:
    blob = commit.files[path]
    entry: dict[str, Any] = {"type": "file", "oid": blob.oid, "size": blob.size, "path": path}
    if blob.lfs_sha256:
        entry["lfs"] = {"oid": blob.lfs_sha256, "size": blob.size, "pointerSize": blob.lfs_pointer_size}
    if expand:
        last = repo.introducing_commit(commit, path)
        entry["lastCommit"] = {"id": last.sha, "title": last.title, "date": format_datetime(last.date)}
    return entry


def _folder_entry(commit: Commit, folder: str) -> dict[str, Any]:
    digest = hashlib.sha1(folder.encode())
    for file_path, blob in commit.files.items():
        if file_path.startswith(f"{folder}/"):
            digest.update(f"\0{file_path}\0{blob.oid}".encode())
    return {"type": "directory", "oid": digest.hexdigest(), "size": 0, "path": folder}


def _paginate(request: Request, items: Sequence[Any], size: int) -> tuple[Sequence[Any], dict[str, str]]:
    """The page at ``cursor`` (an offset) and, if more items follow, a ``Link`` header to the next page."""
    offset = _int(request.params, "cursor") or 0
    page = items[offset : offset + size]
    if offset + size >= len(items):
        return page, {}
    pairs = [(name, value) for name, values in request.params.items() if name != "cursor" for value in values]
    route = request.route
    path = f"/api/{route.repo_type.plural}"
    if route.repo_id is not None:  # a tree listing: repeat the path as requested
        path += f"/{quote(route.repo_id)}/tree/{quote(route.revision or 'main', safe='')}"
        path += f"/{quote(route.path, safe='')}" if route.path else ""
    next_url = f"{request.base_url}{path}?{urlencode([*pairs, ('cursor', offset + size)])}"
    return page, {"Link": f'<{next_url}>; rel="next"'}


def _single(params: Mapping[str, list[str]], name: str) -> str | None:
    values = params.get(name)
    return values[0] if values else None


def _flag(params: Mapping[str, list[str]], name: str) -> bool:
    value = _single(params, name)
    return value is not None and value.lower() in _TRUE


def _int(params: Mapping[str, list[str]], name: str) -> int | None:
    value = _single(params, name)
    if value is None:
        return None
    try:
        number = int(value)
    except ValueError:
        raise bad_request(f"{name} must be an integer, not {value!r}") from None
    if number < 0:
        raise bad_request(f"{name} must be >= 0, not {number}")
    return number
