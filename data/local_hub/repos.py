"""The local Hub's storage: repos, their commits and files, and the indexes that make listing fast.

Everything here is plain data. A `Registry` owns the repos behind one lock; commits and blobs are
immutable once made, so readers may keep references to them after the lock is released.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import struct
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

logger = logging.getLogger(__name__)

# Files the Hub stores with git-lfs: their ETag is the sha256 of the content, not the git blob sha1.
LFS_SUFFIXES = frozenset(
    {".safetensors", ".bin", ".pt", ".pth", ".ckpt", ".h5", ".onnx", ".msgpack", ".gguf", ".parquet", ".arrow"}
)  # fmt: skip
# The deterministic clock: commit n is dated CLOCK_START + n * CLOCK_STEP unless a date is given.
CLOCK_START = datetime(2024, 1, 1, tzinfo=UTC)
CLOCK_STEP = timedelta(minutes=1)
# Keys of config.json the Hub repeats in model info (the real Hub never echoes hidden sizes).
REDUCED_CONFIG_KEYS = ("architectures", "model_type", "auto_map")
_QUERY_CACHE_SIZE = 64


class RepoType(StrEnum):
    """The kinds of repo the local Hub serves."""

    MODEL = "model"
    DATASET = "dataset"

    @property
    def plural(self) -> str:
        """The word used in API paths: ``models`` or ``datasets``."""
        return f"{self.value}s"


@dataclass(frozen=True, slots=True)
class Blob:
    """One file's content and the hashes the Hub reports for it."""

    data: bytes
    oid: str  # git blob sha1: of the content, or of the LFS pointer for LFS files
    lfs_sha256: str | None = None
    lfs_pointer_size: int | None = None

    @classmethod
    def for_file(cls, path_in_repo: str, data: bytes) -> Blob:
        """Hash `data` the way the Hub would store it under `path_in_repo`."""
        if not any(path_in_repo.endswith(suffix) for suffix in LFS_SUFFIXES):
            return cls(data=data, oid=_git_blob_sha1(data))
        sha256 = hashlib.sha256(data).hexdigest()
        pointer = (
            f"version https://git-lfs.github.com/spec/v1\noid sha256:{sha256}\nsize {len(data)}\n".encode()
        )
        return cls(data=data, oid=_git_blob_sha1(pointer), lfs_sha256=sha256, lfs_pointer_size=len(pointer))

    @property
    def size(self) -> int:
        """Size of the content in bytes."""
        return len(self.data)

    @property
    def etag(self) -> str:
        """The unquoted ETag of the file: sha256 for LFS files, git blob sha1 otherwise."""
        return self.lfs_sha256 or self.oid


@dataclass(frozen=True, slots=True)
class Commit:
    """An immutable snapshot of a repo's files plus what the Hub derives from them."""

    sha: str
    date: datetime
    title: str
    files: Mapping[str, Blob]  # path in repo -> blob, sorted by path
    card_data: Mapping[str, Any] | None = None
    config: Mapping[str, Any] | None = None  # reduced config.json
    safetensors: Mapping[str, Any] | None = None  # {"parameters": {dtype: n}, "total": n}


@dataclass(frozen=True, slots=True, kw_only=True)
class RepoMeta:
    """Repo-level metadata: it belongs to the repo, not to a commit."""

    tags: tuple[str, ...] = ()
    pipeline_tag: str | None = None
    library_name: str | None = None
    downloads: int = 0
    likes: int = 0
    trending_score: int = 0
    gated: bool | str = False  # False | "auto" | "manual"
    private: bool = False
    disabled: bool = False

    def __post_init__(self) -> None:
        if self.gated not in (False, "auto", "manual"):
            raise ValueError(f"gated must be False, 'auto' or 'manual', not {self.gated!r}")

    @property
    def terms(self) -> frozenset[str]:
        """Values a list ``filter`` matches: the tags, the library and the pipeline tag."""
        extra = (term for term in (self.library_name, self.pipeline_tag) if term)
        return frozenset((*self.tags, *extra))


@dataclass(slots=True)
class Repo:
    """A repo and its history. Mutated only by `Registry`, which replaces fields rather than editing them."""

    repo_type: RepoType
    repo_id: str
    created_at: datetime
    meta: RepoMeta
    history: list[Commit]  # oldest first
    refs: dict[str, str]  # branch -> sha
    listing: Mapping[str, str] = field(default_factory=dict)  # precomputed JSON members, see payloads.py

    @property
    def head(self) -> Commit:
        """The commit ``main`` points to."""
        return self.find_commit("main")  # type: ignore[return-value]  # main always exists

    @property
    def author(self) -> str | None:
        """The namespace of the repo id, or None for legacy ids without one."""
        return self.repo_id.split("/")[0] if "/" in self.repo_id else None

    @property
    def used_storage(self) -> int:
        """Bytes of all distinct blobs in the history."""
        blobs = {blob.etag: blob.size for commit in self.history for blob in commit.files.values()}
        return sum(blobs.values())

    def find_commit(self, revision: str) -> Commit | None:
        """The commit a branch name or full commit sha points to, or None."""
        sha = self.refs.get(revision, revision)
        return next((commit for commit in self.history if commit.sha == sha), None)

    def introducing_commit(self, commit: Commit, path: str) -> Commit:
        """The oldest commit up to `commit` from which the blob at `path` stayed the same."""
        index = self.history.index(commit)
        blob = commit.files.get(path)
        while index > 0 and self.history[index - 1].files.get(path) == blob:
            index -= 1
        return self.history[index]


@dataclass(frozen=True, slots=True, kw_only=True)
class ListQuery:
    """What a list request asks for, normalised so it can key a cache."""

    filters: tuple[str, ...] = ()
    search: tuple[str, ...] = ()
    author: str | None = None
    gated: bool | None = None
    sort: str | None = None
    include_private: bool = False

    def accepts(self, repo: Repo) -> bool:
        """Whether `repo` passes every condition except the indexed ``filters``."""
        repo_id = repo.repo_id.lower()
        return (
            (self.include_private or not repo.meta.private)
            and all(term.lower() in repo_id for term in self.search)
            and (self.author is None or (repo.author or "").lower() == self.author.lower())
            and (self.gated is None or (repo.meta.gated is not False) == self.gated)
        )


SORT_KEYS: dict[str, Callable[[Repo], Any]] = {
    "downloads": lambda repo: repo.meta.downloads,
    "likes": lambda repo: repo.meta.likes,
    "trendingScore": lambda repo: repo.meta.trending_score,
    "lastModified": lambda repo: repo.head.date,
    "createdAt": lambda repo: repo.created_at,
}


class Registry:
    """All repos of one local Hub, with a tag index and a small cache of list results."""

    def __init__(self, render_listing: Callable[[Repo], Mapping[str, str]]) -> None:
        self._lock = threading.RLock()
        self._render_listing = render_listing
        self._repos: dict[tuple[RepoType, str], Repo] = {}
        self._aliases: dict[tuple[RepoType, str], str] = {}
        self._index: dict[tuple[RepoType, str], set[str]] = {}
        self._blobs: dict[str, Blob] = {}
        self._query_cache: OrderedDict[tuple[RepoType, ListQuery], list[Repo]] = OrderedDict()
        self._ticks = 0

    def commit(
        self,
        repo_type: RepoType,
        repo_id: str,
        files: Mapping[str, bytes] | None,
        *,
        meta: Mapping[str, Any],
        card_data: Mapping[str, Any] | None,
        parameters: int | None,
        date: datetime | None,
        created_at: datetime | None,
        aliases: Iterable[str],
    ) -> str:
        """Make a new commit on ``main`` (creating the repo if needed) and return its sha.

        `files` replaces the repo's files (None keeps them); `meta` holds the `RepoMeta` fields to change;
        `card_data` defaults to the previous commit's; `parameters` None counts them from the safetensors headers.
        """
        _check_repo_id(repo_id)
        with self._lock:
            self._check_new_names(repo_type, repo_id, aliases)
            repo = self._repos.get((repo_type, repo_id))
            new_meta = replace(repo.meta if repo else RepoMeta(), **meta)  # validate before changing anything
            self._ticks += 1
            parent = repo.head if repo else None
            blobs = self._store_blobs(files) if files is not None else dict(parent.files if parent else {})
            date = _as_utc(date) if date else CLOCK_START + self._ticks * CLOCK_STEP
            commit = Commit(
                sha=_commit_sha(repo_type, repo_id, parent, self._ticks, blobs),
                date=date,
                title="Initial commit" if parent is None else f"Update {repo_id}",
                files=blobs,
                card_data=card_data if card_data is not None else (parent.card_data if parent else None),
                config=_reduced_config(blobs.get("config.json")) if repo_type is RepoType.MODEL else None,
                safetensors=_safetensors_summary(blobs, parameters) if repo_type is RepoType.MODEL else None,
            )
            if repo is None:
                created = _as_utc(created_at) if created_at else date
                repo = Repo(repo_type, repo_id, created_at=created, meta=RepoMeta(), history=[], refs={})
                self._repos[(repo_type, repo_id)] = repo
            elif created_at:
                repo.created_at = _as_utc(created_at)
            repo.history = [*repo.history, commit]
            repo.refs = {**repo.refs, "main": commit.sha}
            for alias in aliases:
                self._aliases[(repo_type, alias)] = repo_id
            self._set_meta(repo, new_meta)
            logger.debug("%s %s: commit %s with %d files", repo_type, repo_id, commit.sha, len(blobs))
            return commit.sha

    def update_meta(self, repo_type: RepoType, repo_id: str, meta: Mapping[str, Any]) -> None:
        """Change repo-level metadata without making a commit."""
        with self._lock:
            repo = self._require(repo_type, repo_id)
            self._set_meta(repo, replace(repo.meta, **meta))

    def create_branch(self, repo_type: RepoType, repo_id: str, branch: str, revision: str) -> str:
        """Point `branch` at the commit `revision` resolves to and return that sha."""
        with self._lock:
            repo = self._require(repo_type, repo_id)
            commit = repo.find_commit(revision)
            if commit is None:
                raise KeyError(f"{repo_id} has no revision {revision!r}")
            repo.refs = {**repo.refs, branch: commit.sha}
            return commit.sha

    def get(self, repo_type: RepoType, repo_id: str) -> Repo | None:
        """The repo with this id or legacy alias, or None."""
        with self._lock:
            return self._repos.get((repo_type, self.canonical_id(repo_type, repo_id)))

    def canonical_id(self, repo_type: RepoType, repo_id: str) -> str:
        """The id a legacy alias stands for; any other id unchanged."""
        return self._aliases.get((repo_type, repo_id), repo_id)

    def blob(self, etag: str) -> Blob | None:
        """A stored blob by its ETag, for the CDN."""
        return self._blobs.get(etag)

    def repo_ids(self, repo_type: RepoType) -> list[str]:
        with self._lock:
            return sorted(repo_id for kind, repo_id in self._repos if kind is repo_type)

    def list_repos(self, repo_type: RepoType, query: ListQuery) -> list[Repo]:
        """Repos matching `query`, sorted; cached until the next change to the registry."""
        key = (repo_type, query)
        with self._lock:
            repos = self._query_cache.get(key)
            if repos is None:
                repos = self._run_query(repo_type, query)
                self._query_cache[key] = repos
                if len(self._query_cache) > _QUERY_CACHE_SIZE:
                    self._query_cache.popitem(last=False)
            return repos

    def _run_query(self, repo_type: RepoType, query: ListQuery) -> list[Repo]:
        if query.filters:
            matching = sorted((self._index.get((repo_type, term), set()) for term in query.filters), key=len)
            ids: Iterable[str] = set.intersection(*matching) if matching[0] else ()
            repos = [self._repos[(repo_type, repo_id)] for repo_id in ids]
        else:
            repos = [repo for (kind, _), repo in self._repos.items() if kind is repo_type]
        repos = sorted((repo for repo in repos if query.accepts(repo)), key=lambda repo: repo.repo_id)
        if query.sort is not None:
            repos.sort(key=SORT_KEYS[query.sort], reverse=True)  # stable: ties stay in id order
        return repos

    def _require(self, repo_type: RepoType, repo_id: str) -> Repo:
        repo = self.get(repo_type, repo_id)
        if repo is None:
            raise KeyError(f"no {repo_type} {repo_id!r}")
        return repo

    def _check_new_names(self, repo_type: RepoType, repo_id: str, aliases: Iterable[str]) -> None:
        """Ids and aliases share one namespace: refuse a clash instead of shadowing a repo."""
        if self.canonical_id(repo_type, repo_id) != repo_id:
            raise ValueError(f"{repo_id!r} is an alias of {self.canonical_id(repo_type, repo_id)!r}")
        for alias in aliases:
            if (repo_type, alias) in self._repos or self.canonical_id(repo_type, alias) not in (
                alias,
                repo_id,
            ):
                raise ValueError(f"alias {alias!r} of {repo_id!r} is already taken")

    def _set_meta(self, repo: Repo, meta: RepoMeta) -> None:
        """Replace the repo's metadata, keeping the tag index, the listing and the query cache in step."""
        for term in repo.meta.terms:
            self._index[(repo.repo_type, term)].discard(repo.repo_id)
        repo.meta = meta
        for term in meta.terms:
            self._index.setdefault((repo.repo_type, term), set()).add(repo.repo_id)
        repo.listing = self._render_listing(repo)
        self._query_cache.clear()

    def _store_blobs(self, files: Mapping[str, bytes]) -> dict[str, Blob]:
        blobs = {}
        for path in sorted(files):
            blob = Blob.for_file(path, files[path])
            blobs[path] = self._blobs.setdefault(blob.etag, blob)
        return blobs


def _check_repo_id(repo_id: str) -> None:
    parts = repo_id.split("/")
    if len(parts) > 2 or not all(parts) or any(part in (".", "..") for part in parts):
        raise ValueError(f"invalid repo id {repo_id!r}: expected 'name' or 'namespace/name'")


def _as_utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _git_blob_sha1(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def _commit_sha(
    repo_type: RepoType, repo_id: str, parent: Commit | None, tick: int, blobs: Mapping[str, Blob]
) -> str:
    digest = hashlib.sha1(f"{repo_type}\0{repo_id}\0{parent.sha if parent else ''}\0{tick}".encode())
    for path, blob in blobs.items():
        digest.update(f"\0{path}\0{blob.etag}".encode())
    return digest.hexdigest()


def _reduced_config(blob: Blob | None) -> dict[str, Any] | None:
    """The part of config.json the Hub repeats in model info, or None without a readable config."""
    if blob is None:
        return None
    try:
        config = json.loads(blob.data)
    except (ValueError, RecursionError):  # a hostile config.json is served as it is, not summarised
        return None
    if not isinstance(config, dict):
        return None
    return {key: config[key] for key in REDUCED_CONFIG_KEYS if key in config}


def _safetensors_summary(blobs: Mapping[str, Blob], parameters: int | None) -> dict[str, Any] | None:
    """The ``safetensors`` member of model info: `parameters` as F32 if given, else counted from the headers."""
    weights = [blob for path, blob in blobs.items() if path.endswith(".safetensors")]
    if not weights:
        return None
    if parameters is not None:
        return {"parameters": {"F32": parameters}, "total": parameters}
    counts: dict[str, int] = {}
    for blob in weights:
        file_counts = _count_parameters(blob.data)
        if file_counts is None:
            return None
        for dtype, count in file_counts.items():
            counts[dtype] = counts.get(dtype, 0) + count
    return {"parameters": counts, "total": sum(counts.values())}


def _count_parameters(data: bytes) -> dict[str, int] | None:
    """Parameters per dtype from a safetensors header, or None if `data` is not a safetensors file."""
    if len(data) < 8:
        return None
    (size,) = struct.unpack("<Q", data[:8])
    counts: dict[str, int] = {}
    try:
        header = json.loads(data[8 : 8 + size])
        for name, tensor in header.items():
            if name != "__metadata__":
                counts[tensor["dtype"]] = counts.get(tensor["dtype"], 0) + math.prod(tensor["shape"])
    except (ValueError, AttributeError, KeyError, TypeError):
        return None
    return counts
