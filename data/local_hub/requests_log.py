"""A thread-safe log of the requests a local Hub answered."""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass
from urllib.parse import parse_qs

from data.local_hub.repos import RepoType


@dataclass(frozen=True, slots=True)
class RequestRecord:
    """One answered request. `path` is decoded and without query; `fault` is the injected fault, if any.

    `repo_type`/`repo_id` name the single repo the request concerns (canonical id), None for lists and the CDN.
    """

    method: str
    path: str
    query: str
    status: int
    fault: str | None = None
    repo_type: RepoType | None = None
    repo_id: str | None = None

    @property
    def params(self) -> dict[str, list[str]]:
        """The query string parsed, repeated parameters in order."""
        return parse_qs(self.query, keep_blank_values=True)


class RequestLog:
    """Append-only (until cleared) list of `RequestRecord`s, safe to use from handler threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._records: list[RequestRecord] = []

    def append(self, record: RequestRecord) -> None:
        """Add one record."""
        with self._lock:
            self._records.append(record)

    def snapshot(self) -> list[RequestRecord]:
        """A copy of the records so far, oldest first."""
        with self._lock:
            return list(self._records)

    def clear(self) -> None:
        """Forget every record."""
        with self._lock:
            self._records.clear()

    def count_by_repo(self, repo_type: RepoType) -> Counter[str]:
        """Requests per repo id of that type (faulted ones included)."""
        with self._lock:
            return Counter(
                record.repo_id
                for record in self._records
                if record.repo_type is repo_type and record.repo_id is not None
            )
