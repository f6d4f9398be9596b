"""HubClient: the only importer of huggingface_hub, and the one place its errors become ours.

It talks to ``settings.hub_endpoint`` (the real Hub, or the project's local Hub-compatible server) and
owns its retry policy: 429 and 5xx answers, dropped connections and truncated JSON are retried with
exponential backoff that honours ``Retry-After``. huggingface_hub's own ``list_models`` restarts from the
first page on an error it does not retry and sleeps at least a second per retry, so listings are
paginated here, with the client's session, headers, error mapping and ``ModelInfo`` parser.
"""

from __future__ import annotations

import json
import logging
import random
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import TypeVar

import httpx2
from huggingface_hub import HfApi, ModelInfo, hf_hub_url, snapshot_download
from huggingface_hub.errors import (
    GatedRepoError,
    HfHubHTTPError,
    HFValidationError,
    LocalEntryNotFoundError,
    NotASafetensorsRepoError,
    OfflineModeIsEnabled,
    RemoteEntryNotFoundError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
    SafetensorsParsingError,
)
from huggingface_hub.utils import build_hf_headers, get_session, hf_raise_for_status

from data.errors import (
    EntryNotFound,
    FileTooLarge,
    GatedModel,
    HubError,
    HubTimeout,
    HubUnreachable,
    InvalidRepoId,
    ModelNotFound,
    RevisionNotFound,
)
from data.hub_datasets import DatasetListing, listing_of
from data.records import ModelRef
from data.settings import Settings

logger = logging.getLogger(__name__)

T = TypeVar("T")

RETRY_STATUS = frozenset({408, 429, 500, 502, 503, 504})
MAX_FILE_BYTES = 4 * 1024 * 1024  # read_file's default cap: real config.json files are a few kB
MAX_LICENSE_CHARS = 200  # a card's license field, as stored and shown
MAX_TAGS, MAX_TAG_CHARS = 500, 300
LISTING_EXPAND = (
    "sha", "lastModified", "createdAt", "downloads", "likes", "tags", "pipeline_tag", "library_name",
    "gated", "private", "disabled", "siblings", "cardData", "safetensors",
)


@dataclass(frozen=True, slots=True, kw_only=True)
class HubModelInfo:
    """What the Hub says about a model at one commit (from a listing or a model_info call)."""

    repo_id: str
    sha: str | None
    last_modified: datetime | None = None
    created_at: datetime | None = None
    downloads: int = 0
    likes: int = 0
    tags: tuple[str, ...] = ()
    pipeline_tag: str | None = None
    library_name: str | None = None
    gated: bool | str = False
    private: bool = False
    disabled: bool = False
    filenames: tuple[str, ...] | None = None
    license: str | None = None
    num_params: int | None = None

    @classmethod
    def from_api(cls, item: dict) -> HubModelInfo:
        """Parse one JSON object of /api/models with huggingface_hub's own ModelInfo."""
        return cls.from_model_info(ModelInfo(**{"siblings": None, **item}))

    @classmethod
    def from_model_info(cls, info: ModelInfo) -> HubModelInfo:
        license_ = getattr(info.card_data, "license", None) if info.card_data is not None else None
        if isinstance(license_, list):
            license_ = ",".join(str(x) for x in license_)
        if license_ is not None:
            license_ = _clip(str(license_), MAX_LICENSE_CHARS)
        return cls(
            repo_id=info.id,
            sha=info.sha,
            last_modified=info.last_modified,
            created_at=info.created_at,
            downloads=info.downloads or 0,
            likes=info.likes or 0,
            tags=tuple(_clip(str(t), MAX_TAG_CHARS) for t in (info.tags or ())[:MAX_TAGS]),
            pipeline_tag=info.pipeline_tag,
            library_name=info.library_name,
            gated=info.gated or False,
            private=bool(info.private),
            disabled=bool(info.disabled),
            filenames=None if info.siblings is None else tuple(s.rfilename for s in info.siblings),
            license=license_,
            num_params=info.safetensors.total if info.safetensors is not None else None,
        )


def _clip(text: str, limit: int) -> str:
    """At most ``limit`` characters of a Hub-supplied string (a card can put megabytes in any field)."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


class HubClient:
    """Read-only access to a Hub endpoint with retries and typed errors."""

    def __init__(self, settings: Settings, *, sleep: Callable[[float], None] = time.sleep,
                 timeout_s: float | None = None):
        self.endpoint = settings.hub_endpoint.rstrip("/")
        self.token = settings.hub_token
        self.cache_dir = Path(settings.cache_dir) / "hub"
        self.page_size = settings.crawl_page_size
        self.max_retries = settings.crawl_max_retries
        self.backoff_base_s = settings.crawl_backoff_base_s
        self.backoff_max_s = settings.crawl_backoff_max_s
        self._sleep = sleep
        self._api = HfApi(endpoint=self.endpoint, token=self.token or False)
        self._rng = random.Random()
        self._rng_lock = threading.Lock()
        self.retries = 0  # how many retries this client has made (for reports and benchmarks)
        self.timeout_s = timeout_s  # a budget for everything this client asks (interactive use); None: no limit
        self._deadline = None if timeout_s is None else time.monotonic() + timeout_s

    @classmethod
    def interactive(cls, settings: Settings) -> HubClient:
        """A client for a person waiting (Submit): one retry, a short backoff, and ``settings.submit_timeout_s``
        for all its requests together; past that it raises HubUnreachable saying how long it waited."""
        quick = replace(settings, crawl_max_retries=1, crawl_backoff_max_s=min(1.0, settings.crawl_backoff_max_s))
        return cls(quick, timeout_s=settings.submit_timeout_s)

    def _request_timeout(self) -> float | None:
        """Seconds the next request may take: what is left of the budget (None: no budget)."""
        if self._deadline is None:
            return None
        left = self._deadline - time.monotonic()
        if left <= 0:
            raise HubTimeout(f"the Hub did not answer in {self.timeout_s:g} s")
        return left

    @property
    def has_token(self) -> bool:
        return bool(self.token)

    # ----------------------------------------------------------------- requests
    def _headers(self) -> dict[str, str]:
        return build_hf_headers(token=self.token or False)

    def _get(self, url: str, params=None) -> httpx2.Response:
        response = get_session().get(url, params=params, headers=self._headers(), follow_redirects=True,
                                     timeout=self._request_timeout())
        hf_raise_for_status(response)
        return response

    def _backoff_s(self, attempt: int, error: Exception) -> float:
        retry_after = _retry_after_s(error)
        if retry_after is not None:
            return min(retry_after, self.backoff_max_s)
        with self._rng_lock:
            jitter = 0.5 + self._rng.random()
        return min(self.backoff_max_s, self.backoff_base_s * 2**attempt * jitter)

    def _with_retries(self, what: str, call: Callable[[], T], noun: str = "model") -> T:
        """Run ``call``; retry transient failures; translate huggingface_hub errors to ours (``noun``: what the repo
        is, in the sentence of a repo not found)."""
        for attempt in range(self.max_retries + 1):
            try:
                return call()
            except GatedRepoError as e:
                raise GatedModel(f"{what}: the repo is gated and no token with access is configured") from e
            except RepositoryNotFoundError as e:
                raise ModelNotFound(f"{what}: no such {noun} on the Hub (or it is private)") from e
            except OfflineModeIsEnabled as e:
                raise HubUnreachable(f"{what}: the Hub is switched off on this machine (HF_HUB_OFFLINE)") from e
            except RevisionNotFoundError as e:
                raise RevisionNotFound(f"{what}: no such revision") from e
            except RemoteEntryNotFoundError as e:
                raise EntryNotFound(f"{what}: no such file") from e
            except LocalEntryNotFoundError as e:  # snapshot_download: no answer, and not in this machine's cache
                error = e
            except HFValidationError as e:
                raise InvalidRepoId(f"{what}: not a valid Hub id or revision ({e})") from e
            except HfHubHTTPError as e:
                status = e.response.status_code if e.response is not None else None
                if status not in RETRY_STATUS:
                    raise HubError(f"{what}: the Hub answered HTTP {status}") from e
                error: Exception = e
            except (httpx2.TransportError, json.JSONDecodeError) as e:
                error = e
            delay = 0.0 if attempt == self.max_retries else self._backoff_s(attempt, error)
            if self._deadline is not None and time.monotonic() + delay >= self._deadline:
                raise HubTimeout(f"{what}: the Hub did not answer in {self.timeout_s:g} s") from error
            if attempt == self.max_retries:
                if isinstance(error, LocalEntryNotFoundError):
                    raise HubUnreachable(f"{what}: the Hub cannot be reached and this machine's cache does not "
                                         "hold it") from error
                raise HubUnreachable(
                    f"{what}: no usable answer after {self.max_retries + 1} attempts ({_describe(error)})"
                ) from error
            self.retries += 1
            logger.debug("%s: %s; retry %d in %.2fs", what, _describe(error), attempt + 1, delay)
            self._sleep(delay)
        raise AssertionError("unreachable")

    # ------------------------------------------------------------------ listing
    def iter_models(
        self, *, filter: Sequence[str] = (), search: str | None = None, sort: str = "downloads",
        limit: int | None = None, on_bad_item: Callable[[str, str], None] | None = None,
    ) -> Iterator[HubModelInfo]:
        """Every model matching all ``filter`` tags, page by page, with the metadata the crawler needs. An item
        huggingface_hub cannot parse is skipped and passed to ``on_bad_item(repo_id, reason)``."""
        params: list[tuple[str, str]] = [("filter", f) for f in filter]
        if search:
            params.append(("search", search))
        params += [("sort", sort), ("limit", str(min(self.page_size, limit or self.page_size)))]
        params += [("expand", field) for field in LISTING_EXPAND]
        url: str | None = f"{self.endpoint}/api/models"
        yielded = 0
        page = 0
        while url is not None:
            page_url, page_params = url, params if page == 0 else None

            def fetch(u=page_url, p=page_params):
                response = self._get(u, p)
                return response.json(), response.links.get("next", {}).get("url")

            items, url = self._with_retries(f"list models {filter or search} page {page + 1}", fetch)
            page += 1
            for item in items:
                try:
                    info = HubModelInfo.from_api(item)
                except Exception as e:  # a hostile listing entry: skip it, say which
                    repo_id = str(item.get("id", "?"))[:200] if isinstance(item, dict) else "?"
                    logger.warning("%s: unusable listing entry (%s)", repo_id, type(e).__name__)
                    if on_bad_item is not None:
                        on_bad_item(repo_id, f"unusable listing entry: {type(e).__name__}")
                    continue
                yield info
                yielded += 1
                if limit is not None and yielded >= limit:
                    return

    # --------------------------------------------------------------- one model
    def model_info(self, repo_id: str, revision: str | None = None) -> HubModelInfo:
        """Full metadata at a revision (default: main), with the resolved commit sha."""

        def call():
            info = self._api.model_info(repo_id, revision=revision, expand=list(LISTING_EXPAND),
                                        timeout=self._request_timeout())
            return HubModelInfo.from_model_info(info)

        return self._with_retries(f"{repo_id}@{revision or 'main'}", call)

    def read_file(self, repo_id: str, filename: str, revision: str, *, max_bytes: int = MAX_FILE_BYTES) -> bytes:
        """One file's bytes at a revision (no cache; for small files such as config.json). A file over
        ``max_bytes`` raises FileTooLarge after reading at most that much."""
        what = f"{repo_id}@{revision[:8]}/{filename}"

        def call() -> bytes:
            url = hf_hub_url(repo_id, filename, revision=revision, endpoint=self.endpoint)  # validates the id
            return self._get_capped(url, max_bytes, what)

        return self._with_retries(what, call)

    def _get_capped(self, url: str, max_bytes: int, what: str) -> bytes:
        with get_session().stream("GET", url, headers=self._headers(), follow_redirects=True,
                                  timeout=self._request_timeout()) as response:
            if response.status_code >= 400:
                response.read()
                hf_raise_for_status(response)
            length = response.headers.get("Content-Length")
            if length is not None and length.isdigit() and int(length) > max_bytes:
                raise FileTooLarge(f"{what} is {int(length):,} bytes, more than the {max_bytes:,} bytes read")
            chunks, size = [], 0
            for chunk in response.iter_bytes():
                size += len(chunk)
                if size > max_bytes:
                    raise FileTooLarge(f"{what} is more than the {max_bytes:,} bytes read")
                chunks.append(chunk)
            return b"".join(chunks)

    def count_parameters(self, repo_id: str, revision: str) -> int | None:
        """The parameter count from the safetensors headers at a revision (read with range requests, the
        weights themselves never downloaded); None when the repo has no readable safetensors header."""

        def call() -> int | None:
            try:
                metadata = self._api.get_safetensors_metadata(repo_id, revision=revision,
                                                              timeout=self._request_timeout())
            except (NotASafetensorsRepoError, SafetensorsParsingError) as e:
                logger.info("%s@%s: no parameter count from the safetensors headers: %s", repo_id, revision[:8], e)
                return None
            return sum(metadata.parameter_count.values())

        return self._with_retries(f"{repo_id}@{revision[:8]} safetensors headers", call)

    def dataset_listing(self, repo_id: str, revision: str | None = None) -> DatasetListing:
        """A dataset's commit at ``revision`` (None: main) and the size of its data files, before anything is
        downloaded; the client's retries and typed errors (data/hub_datasets.py loads it)."""
        info = self._with_retries(f"dataset {repo_id}", lambda: self._api.dataset_info(
            repo_id, revision=revision, files_metadata=True, timeout=self._request_timeout() or 20), noun="dataset")
        return listing_of(repo_id, info)

    def snapshot(self, ref: ModelRef, allow_patterns: Sequence[str] | None = None) -> Path:
        """Download the repo at its pinned sha into the cache; returns the local directory."""
        return Path(
            self._with_retries(
                f"snapshot {ref}",
                lambda: snapshot_download(
                    ref.repo_id, revision=ref.revision, endpoint=self.endpoint, token=self.token or False,
                    cache_dir=self.cache_dir, allow_patterns=list(allow_patterns) if allow_patterns else None,
                ),
            )
        )


def _retry_after_s(error: Exception) -> float | None:
    response = getattr(error, "response", None)
    if response is None:
        return None
    value = response.headers.get("Retry-After")
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None


def _describe(error: Exception) -> str:
    response = getattr(error, "response", None)
    if response is not None and getattr(response, "status_code", None):
        return f"HTTP {response.status_code}"
    return type(error).__name__
