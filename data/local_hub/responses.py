"""Answers as plain values, built by the endpoints and written to the socket by the server."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from enum import StrEnum

JSON_TYPE = "application/json; charset=utf-8"


class ErrorCode(StrEnum):
    """Values of the ``X-Error-Code`` header that huggingface_hub turns into typed errors."""

    REPO_NOT_FOUND = "RepoNotFound"  # -> RepositoryNotFoundError
    REVISION_NOT_FOUND = "RevisionNotFound"  # -> RevisionNotFoundError
    ENTRY_NOT_FOUND = "EntryNotFound"  # -> RemoteEntryNotFoundError
    GATED_REPO = "GatedRepo"  # -> GatedRepoError


# The exact message huggingface_hub maps to DisabledRepoError.
DISABLED_MESSAGE = "Access to this resource is disabled."


@dataclass(slots=True)
class Response:
    """Status, headers and body of one answer. `is_file` marks file content (truncated differently)."""

    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes | memoryview = b""
    is_file: bool = False


class HubError(Exception):
    """An error answer: the status, the ``X-Error-Code`` (if any) and a message."""

    def __init__(
        self, status: int, message: str, code: ErrorCode | None = None, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code
        self.headers = headers or {}

    def to_response(self) -> Response:
        """The answer the Hub gives for this error: JSON ``{"error": message}`` plus the error headers."""
        headers = {"X-Error-Message": self.message, **self.headers}
        if self.code is not None:
            headers["X-Error-Code"] = self.code.value
        return json_response({"error": self.message}, status=self.status, headers=headers)


def json_response(payload: object, *, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """A JSON answer."""
    return raw_json_response(json.dumps(payload, separators=(",", ":")), status=status, headers=headers)


def raw_json_response(text: str, *, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """A JSON answer from already-encoded text."""
    return Response(status, {"Content-Type": JSON_TYPE, **(headers or {})}, text.encode())


def repo_not_found(repo_id: str) -> HubError:
    """404 for a repo that does not exist or that the caller may not see."""
    return HubError(404, f"Repository {repo_id} not found", ErrorCode.REPO_NOT_FOUND)


def revision_not_found(repo_id: str, revision: str) -> HubError:
    """404 for a revision the repo does not have."""
    return HubError(404, f"Invalid rev id: {revision} for {repo_id}", ErrorCode.REVISION_NOT_FOUND)


def entry_not_found(path: str, sha: str) -> HubError:
    """404 for a path missing at a commit; carries ``X-Repo-Commit`` so the client can cache the absence."""
    return HubError(404, f"Entry not found: {path}", ErrorCode.ENTRY_NOT_FOUND, {"X-Repo-Commit": sha})


def bad_request(message: str) -> HubError:
    """400 for invalid query parameters."""
    return HubError(400, message)
