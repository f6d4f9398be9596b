"""Datasets on the Hub, through the same client as models (data/hub.py): the listing of a dataset's files at a
revision (``HubClient.dataset_listing``: the client's retries, timeouts and error translation) and
``load_dataset``, the one call of ``datasets.load_dataset`` in the project, which records the commit it loaded and
never hands back another revision's rows than the one pinned. Its failures are one ``DatasetUnavailable`` with a
``kind`` that callers turn into their own sentence (a user's data, a study target); the library's message, which can
name hosts and paths, goes to the log only."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from data.errors import HubError
from data.records import SHA_RE

logger = logging.getLogger(__name__)

_SHA_IN_PATH = re.compile(r"(?<![0-9a-f])[0-9a-f]{40}(?![0-9a-f])")
DATA_SUFFIXES = (".parquet", ".csv", ".json", ".jsonl", ".arrow", ".txt", ".tsv", ".gz", ".zst", ".bz2", ".xz",
                 ".zip", ".tar", ".ndjson")


@dataclass(frozen=True, slots=True)
class DatasetListing:
    repo_id: str
    sha: str
    data_bytes: int  # the size of its data files (DATA_SUFFIXES), from the Hub's listing


class DatasetUnavailable(HubError):
    """A dataset that could not be loaded. ``kind``: "no_revision", "not_found", "no_config", "needs_config",
    "swapped" (the library gave another revision than the one pinned: a cached copy, the Hub unreachable), or
    "unreadable"."""

    def __init__(self, kind: str, message: str):
        super().__init__(message)
        self.kind = kind


def listing_of(repo_id: str, info: Any) -> DatasetListing:
    """The listing of ``HfApi.dataset_info(..., files_metadata=True)``."""
    total = sum(int(s.size or 0) for s in info.siblings or () if s.rfilename.lower().endswith(DATA_SUFFIXES))
    return DatasetListing(repo_id=repo_id, sha=str(info.sha or ""), data_bytes=total)


def load_dataset(repo_id: str, config: str | None, revision: str | None, cache_dir: Path | None) -> tuple[Any, str]:
    """``datasets.load_dataset`` of the repo at ``revision`` (a branch, tag or commit; None: main) and the commit it
    loaded ("" when the cache does not say). A pinned commit is never swapped for another: datasets falls back to
    "the latest cached version" when the Hub is offline or unreachable, whatever revision was asked for."""
    import datasets

    try:
        loaded = datasets.load_dataset(repo_id, config, revision=revision or None,
                                       cache_dir=str(cache_dir) if cache_dir is not None else None)
    except (datasets.exceptions.DatasetsError, OSError, ValueError, RuntimeError, ImportError) as e:
        logger.info("loading the dataset %r (config %r, revision %r) failed: %s", repo_id, config, revision, e)
        raise DatasetUnavailable(_kind(str(e), config, revision), f"{repo_id} could not be loaded") from e
    got = next((r for r in map(resolved_revision, loaded.values()) if r), "")
    if revision and SHA_RE.fullmatch(revision) and got and got != revision:
        raise DatasetUnavailable("swapped", f"{repo_id} is pinned to revision {revision}, but the datasets library "
                                            f"gave revision {got} (a cached copy: the Hub was offline or unreachable)")
    return loaded, got


def resolved_revision(split: Any) -> str:
    """The commit sha of a loaded split: the datasets cache names a directory after it (best effort)."""
    for cache_file in getattr(split, "cache_files", ()):
        found = _SHA_IN_PATH.findall(str(cache_file.get("filename", "")))
        if found:
            return found[-1]
    return ""


def _kind(message: str, config: str | None, revision: str | None) -> str:
    if revision and message.startswith("Revision "):
        return "no_revision"
    if "doesn't exist on the Hub" in message:
        return "not_found"
    if config and message.startswith("BuilderConfig "):
        return "no_config"
    if message.startswith("Config name is missing"):
        return "needs_config"
    return "unreadable"
