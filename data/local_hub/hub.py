"""`LocalHub`: an in-memory, Hub-compatible HTTP server that the real huggingface_hub client can talk to."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Self
from urllib.parse import parse_qs

from data.local_hub import api, files
from data.local_hub.faults import FaultInjector, FaultPlan
from data.local_hub.payloads import render_listing
from data.local_hub.repos import Registry, RepoType
from data.local_hub.requests_log import RequestLog, RequestRecord
from data.local_hub.responses import Response
from data.local_hub.routes import Route, RouteKind, parse_api_route, parse_cdn_route
from data.local_hub.server import Incoming, RunningServer, Site

logger = logging.getLogger(__name__)

FileContent = bytes | str | Path  # str is encoded as UTF-8; a Path is read when added
DEFAULT_CDN_THRESHOLD_BYTES = 10 * 1024 * 1024
_SKIPPED_DIRS = frozenset({".git", ".cache"})  # never uploaded by add_files_from_dir


class LocalHub:
    """A fake Hugging Face Hub on 127.0.0.1 holding models and datasets in memory.

    It answers what ``HfApi(endpoint=hub.url)`` sends: list, info and tree endpoints, ``resolve`` with
    ETags, ranges and a 302 to a second origin (the "CDN") for files over `cdn_threshold_bytes`, and the
    Hub's error headers, so the client raises its real typed errors. Tokens in `tokens` may read private
    and gated repos. Requests are logged in `requests`; faults are injected with `set_faults`.

    Metadata arguments left as None keep the repo's current value (or the default for a new repo).
    """

    def __init__(
        self, *, page_size: int = 1000, cdn_threshold_bytes: int = DEFAULT_CDN_THRESHOLD_BYTES
    ) -> None:
        if page_size < 1:
            raise ValueError(f"page_size must be >= 1, not {page_size}")
        self.page_size = page_size
        self.cdn_threshold_bytes = cdn_threshold_bytes
        self.tokens: set[str] = set()
        self._registry = Registry(render_listing)
        self._faults = FaultInjector()
        self._log = RequestLog()
        self._api_server: RunningServer | None = None
        self._cdn_server: RunningServer | None = None

    # -- content -------------------------------------------------------------------------------------

    def add_model(
        self,
        repo_id: str,
        files: Mapping[str, FileContent] | None = None,
        *,
        tags: Iterable[str] | None = None,
        downloads: int | None = None,
        likes: int | None = None,
        trending_score: int | None = None,
        gated: bool | str | None = None,
        private: bool | None = None,
        disabled: bool | None = None,
        pipeline_tag: str | None = None,
        library_name: str | None = None,
        card_data: Mapping[str, Any] | None = None,
        parameters: int | None = None,
        last_modified: datetime | None = None,
        created_at: datetime | None = None,
        aliases: Iterable[str] = (),
    ) -> str:
        """Commit `files` to model `repo_id` on ``main`` (creating it if needed) and return the commit sha.

        `files` replaces all files (None keeps the current ones). `parameters` sets ``safetensors.total``
        (as F32) when the repo has ``*.safetensors`` files; None counts them from the safetensors headers.
        `last_modified` dates the commit (default: a deterministic clock advancing per commit) and
        `aliases` are legacy ids that resolve to this repo. Older commits stay resolvable by sha.
        """
        meta = _meta_changes(tags=tags, downloads=downloads, likes=likes, trending_score=trending_score, gated=gated,
                             private=private, disabled=disabled, pipeline_tag=pipeline_tag, library_name=library_name)
        return self._registry.commit(RepoType.MODEL, repo_id, _read_files(files), meta=meta, card_data=card_data,
                                     parameters=parameters, date=last_modified, created_at=created_at, aliases=aliases)

    def add_dataset(self, repo_id: str, files: Mapping[str, FileContent] | None = None, **metadata: Any) -> str:
        """Like `add_model`, for a dataset repo (served under ``/api/datasets`` and ``/datasets/...``): the same
        keyword arguments but `pipeline_tag`, `library_name` and `parameters`."""
        _refuse_unknown("add_dataset", metadata, DATASET_METADATA)
        card_data, last_modified, created_at, aliases = (metadata.pop(k, None) for k in
                                                         ("card_data", "last_modified", "created_at", "aliases"))
        return self._registry.commit(RepoType.DATASET, repo_id, _read_files(files), meta=_meta_changes(**metadata),
                                     card_data=card_data, parameters=None, date=last_modified, created_at=created_at,
                                     aliases=aliases or ())

    def add_files_from_dir(
        self, repo_id: str, directory: str | Path, *, repo_type: str = "model", **metadata: Any
    ) -> str:
        """Commit every file under `directory` (recursively, relative POSIX paths as names; no .git/.cache).

        `metadata` takes the keyword arguments of `add_model` (or `add_dataset` for ``repo_type="dataset"``).
        """
        directory = Path(directory)
        found = {
            path.relative_to(directory).as_posix(): path
            for path in sorted(directory.rglob("*"))
            if path.is_file() and not _SKIPPED_DIRS.intersection(path.relative_to(directory).parts)
        }
        add = self.add_dataset if RepoType(repo_type) is RepoType.DATASET else self.add_model
        return add(repo_id, found, **metadata)

    def update_metadata(self, repo_id: str, *, repo_type: str = "model", **meta: Any) -> None:
        """Change repo-level metadata without a commit (the sha stays the same): `add_model`'s tags, downloads,
        likes, trending_score, gated, private, disabled, pipeline_tag and library_name."""
        _refuse_unknown("update_metadata", meta, REPO_META)
        self._registry.update_meta(RepoType(repo_type), repo_id, _meta_changes(**meta))

    def create_branch(
        self, repo_id: str, branch: str, *, revision: str = "main", repo_type: str = "model"
    ) -> str:
        """Point `branch` (may contain ``/``) at `revision` and return the commit sha it resolves to."""
        return self._registry.create_branch(RepoType(repo_type), repo_id, branch, revision)

    # -- serving -------------------------------------------------------------------------------------

    def start(self, port: int = 0) -> str:
        """Serve on 127.0.0.1 (`port`, 0 for a free one, plus a free one for the CDN) if not already
        serving; return `url`."""
        if self._api_server is None:
            self._cdn_server = RunningServer(self._site(parse_cdn_route), "local-hub-cdn")
            self._api_server = RunningServer(self._site(self._route), "local-hub", port)
            logger.info("local hub serving on %s (CDN %s)", self._api_server.url, self._cdn_server.url)
        return self._api_server.url

    def stop(self) -> None:
        """Stop both servers (a no-op if not serving)."""
        for server in (self._api_server, self._cdn_server):
            if server is not None:
                server.stop()
        self._api_server = self._cdn_server = None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """The endpoint to give ``HfApi(endpoint=...)``, e.g. ``http://127.0.0.1:54321``."""
        if self._api_server is None:
            raise RuntimeError("the local hub is not started: call start() first")
        return self._api_server.url

    @property
    def cdn_url(self) -> str:
        """The second origin large files are redirected to."""
        if self._cdn_server is None:
            raise RuntimeError("the local hub is not started: call start() first")
        return self._cdn_server.url

    def set_faults(self, plan: FaultPlan | None) -> None:
        """Inject faults following `plan` from the next request on (None: no faults)."""
        self._faults.set_plan(plan)

    # -- reading back ---------------------------------------------------------------------------------

    def model_ids(self) -> list[str]:
        """The canonical ids of every model repo, sorted."""
        return self._registry.repo_ids(RepoType.MODEL)

    def sha_of(self, repo_id: str, revision: str = "main", *, repo_type: str = "model") -> str:
        """The commit sha a revision of a repo resolves to (KeyError if either is unknown)."""
        repo = self._registry.get(RepoType(repo_type), repo_id)
        commit = repo.find_commit(revision) if repo is not None else None
        if commit is None:
            raise KeyError(f"{repo_type} {repo_id!r} has no revision {revision!r}")
        return commit.sha

    # -- request log ---------------------------------------------------------------------------------

    @property
    def requests(self) -> list[RequestRecord]:
        """Every request answered since the last `reset_requests`, oldest first (a copy)."""
        return self._log.snapshot()

    def reset_requests(self) -> None:
        """Forget the logged requests."""
        self._log.clear()

    def model_requests(self) -> Counter[str]:
        """Requests per model (canonical id) that concern one model: info, tree and resolve, faulted included."""
        return self._log.count_by_repo(RepoType.MODEL)

    # -- internals -----------------------------------------------------------------------------------

    def _site(self, route: Callable[[str], Route | None]) -> Site:
        return Site(
            route=route, respond=self._respond, subject=self._subject, faults=self._faults, log=self._log
        )

    def _route(self, raw_path: str) -> Route | None:
        return parse_api_route(
            raw_path, lambda repo_type, repo_id: self._registry.get(repo_type, repo_id) is not None
        )

    def _subject(self, route: Route) -> tuple[RepoType, str] | None:
        if route.repo_id is None or route.kind is RouteKind.LIST:
            return None
        return route.repo_type, self._registry.canonical_id(route.repo_type, route.repo_id)

    def _respond(self, incoming: Incoming) -> Response:
        route = incoming.route
        request = api.Request(
            route=route,
            params=parse_qs(incoming.query, keep_blank_values=True),
            has_access=_bearer_token(incoming.authorization) in self.tokens,
            base_url=self.url,
            range_header=incoming.range_header,
        )
        if route.kind is RouteKind.LIST:
            return api.list_repos(self._registry, request, self.page_size)
        if route.kind is RouteKind.INFO:
            return api.repo_info(self._registry, request)
        if route.kind is RouteKind.TREE:
            return api.repo_tree(self._registry, request, self.page_size)
        if route.kind is RouteKind.RESOLVE:
            return files.resolve_file(
                self._registry, request, cdn_url=self.cdn_url, cdn_threshold_bytes=self.cdn_threshold_bytes
            )
        return files.serve_blob(self._registry, request)


REPO_META = frozenset({"tags", "downloads", "likes", "trending_score", "gated", "private", "disabled",
                       "pipeline_tag", "library_name"})
# add_dataset: a dataset has no pipeline tag or library, and takes add_model's commit keywords
DATASET_METADATA = REPO_META - {"pipeline_tag", "library_name"} | {"card_data", "last_modified", "created_at",
                                                                    "aliases"}


def _refuse_unknown(function: str, given, known: frozenset[str]) -> None:
    unknown = set(given) - known
    if unknown:
        raise TypeError(f"{function}() got unexpected keyword arguments {sorted(unknown)}")


def _meta_changes(**values: Any) -> dict[str, Any]:
    """The `RepoMeta` fields actually given, tags as a tuple."""
    changes = {name: value for name, value in values.items() if value is not None}
    if "tags" in changes:
        changes["tags"] = tuple(changes["tags"])
    return changes


def _read_files(files: Mapping[str, FileContent] | None) -> dict[str, bytes] | None:
    if files is None:
        return None
    return {path: _read(content) for path, content in files.items()}


def _read(content: FileContent) -> bytes:
    if isinstance(content, Path):
        return content.read_bytes()
    return content.encode() if isinstance(content, str) else bytes(content)


def _bearer_token(authorization: str | None) -> str | None:
    scheme, _, token = (authorization or "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None
