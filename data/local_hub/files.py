"""File endpoints: ``/{repo_id}/resolve/{rev}/{path}`` on the main origin and ``/blobs/{etag}`` on the CDN."""

from __future__ import annotations

import re
from urllib.parse import quote

from data.local_hub.api import Request, find_commit, find_repo
from data.local_hub.repos import Blob, Registry
from data.local_hub.responses import DISABLED_MESSAGE, ErrorCode, HubError, Response, entry_not_found

_RANGE = re.compile(r"bytes=(\d*)-(\d*)")
_OCTET_STREAM = "application/octet-stream"


def resolve_file(registry: Registry, request: Request, *, cdn_url: str, cdn_threshold_bytes: int) -> Response:
    """A file at a revision: its bytes (200, or 206 for a Range), or a 302 to the CDN for large files.

    Checks in the Hub's order: repo visible, not disabled, not gated for this caller, revision, path.
    """
    repo = find_repo(registry, request)
    if repo.meta.disabled:
        raise HubError(403, DISABLED_MESSAGE)
    if repo.meta.gated is not False and not request.has_access:
        message = f"Access to {repo.repo_type} {repo.repo_id} is restricted. You must be authenticated to access it."
        raise HubError(401, message, ErrorCode.GATED_REPO)
    commit = find_commit(repo, request.route.revision)
    blob = commit.files.get(request.route.path)
    if blob is None:
        raise entry_not_found(request.route.path, commit.sha)
    headers = {"X-Repo-Commit": commit.sha, "ETag": _quoted(blob.etag), "Accept-Ranges": "bytes"}
    if blob.size > cdn_threshold_bytes:
        filename = request.route.path.rsplit("/", 1)[-1]
        headers |= {
            "Location": f"{cdn_url}/blobs/{blob.etag}?filename={quote(filename, safe='')}",
            "X-Linked-Etag": _quoted(blob.etag),
            "X-Linked-Size": str(blob.size),
        }
        return Response(302, headers)
    return file_response(blob, request.range_header, headers)


def serve_blob(registry: Registry, request: Request) -> Response:
    """The CDN: a blob by ETag, named by the ``filename`` parameter in Content-Disposition."""
    blob = registry.blob(request.route.path)
    if blob is None:
        raise HubError(404, "Blob not found")
    filename = request.params.get("filename", [request.route.path])[0]
    headers = {
        "ETag": _quoted(blob.etag),
        "Accept-Ranges": "bytes",
        "Content-Disposition": f"attachment; filename*=UTF-8''{quote(filename)}; filename=\"{filename}\";",
    }
    return file_response(blob, request.range_header, headers)


def file_response(blob: Blob, range_header: str | None, headers: dict[str, str]) -> Response:
    """The whole blob (200) or the requested byte range (206); 416 for a range past the end."""
    headers = {"Content-Type": _OCTET_STREAM, **headers}
    span = _parse_range(range_header, blob.size)
    if span is None:
        return Response(200, headers, memoryview(blob.data), is_file=True)
    start, end = span
    headers["Content-Range"] = f"bytes {start}-{end}/{blob.size}"
    return Response(206, headers, memoryview(blob.data)[start : end + 1], is_file=True)


def _parse_range(range_header: str | None, size: int) -> tuple[int, int] | None:
    """Inclusive (start, end) of a single ``bytes=`` range, or None to send everything."""
    match = _RANGE.fullmatch(range_header.strip()) if range_header else None
    if match is None or match.groups() == ("", ""):
        return None
    first, last = match.groups()
    if first:
        start, end = int(first), min(int(last), size - 1) if last else size - 1
    else:  # suffix range: the last N bytes
        start, end = max(size - int(last), 0), size - 1
    if start >= size or start > end:
        raise HubError(416, "Requested range not satisfiable", headers={"Content-Range": f"bytes */{size}"})
    return start, end


def _quoted(etag: str) -> str:
    return f'"{etag}"'
