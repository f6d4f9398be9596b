"""How repos look on the wire: the JSON properties of model and dataset info, and which ones each request gets."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from data.local_hub.repos import Blob, Commit, Repo, RepoType

# Properties of a list item when the request names no `expand`.
LIST_FIELDS: dict[RepoType, tuple[str, ...]] = {
    RepoType.MODEL: (
        "_id", "id", "likes", "trendingScore", "private", "downloads", "tags",
        "pipeline_tag", "library_name", "createdAt", "modelId",
    ),
    RepoType.DATASET: (
        "_id", "id", "author", "sha", "lastModified", "private", "gated", "disabled",
        "downloads", "likes", "tags", "createdAt", "trendingScore",
    ),
}  # fmt: skip
# What `full=true` adds to a list item.
FULL_FIELDS: dict[RepoType, tuple[str, ...]] = {
    RepoType.MODEL: ("author", "sha", "lastModified", "gated", "disabled", "siblings"),
    RepoType.DATASET: ("cardData", "siblings"),
}
# Properties of repo info when the request names no `expand`.
INFO_FIELDS: dict[RepoType, tuple[str, ...]] = {
    RepoType.MODEL: (
        "_id", "id", "modelId", "author", "sha", "lastModified", "createdAt", "private", "gated", "disabled",
        "downloads", "likes", "trendingScore", "library_name", "tags", "pipeline_tag", "cardData", "config",
        "siblings", "safetensors", "usedStorage",
    ),
    RepoType.DATASET: (
        "_id", "id", "author", "sha", "lastModified", "createdAt", "private", "gated", "disabled",
        "downloads", "likes", "trendingScore", "tags", "cardData", "siblings", "usedStorage",
    ),
}  # fmt: skip
ALWAYS_FIELDS = ("_id", "id")
# Properties the Hub expands only in repo info; a list request naming them is refused with 400.
INFO_ONLY_FIELDS = frozenset({"baseModels", "childrenModelCount", "usedStorage"})
_SEPARATORS = (",", ":")


def list_fields(
    repo_type: RepoType, *, expand: Sequence[str], full: bool, card_data: bool, config: bool
) -> tuple[str, ...]:
    """The properties of each item of a list answer, in order."""
    if expand:
        return _dedupe((*ALWAYS_FIELDS, *expand))
    fields = list(LIST_FIELDS[repo_type])
    if full:
        fields += FULL_FIELDS[repo_type]
    if card_data:
        fields.append("cardData")
    if config and repo_type is RepoType.MODEL:
        fields.append("config")
    return _dedupe(fields)


def info_fields(repo_type: RepoType, *, expand: Sequence[str]) -> tuple[str, ...]:
    """The properties of a repo info answer, in order."""
    return _dedupe((*ALWAYS_FIELDS, *expand)) if expand else INFO_FIELDS[repo_type]


def repo_properties(repo: Repo, commit: Commit, *, blobs: bool = False) -> dict[str, Any]:
    """Every property the Hub can answer for `repo` at `commit`, under the Hub's names; absent ones left out.

    Repo-level metadata (downloads, tags, gating...) is the repo's current one; files, card data, config and
    dates are the commit's. `blobs` adds size, blob id and LFS details to each sibling.
    """
    meta = repo.meta
    properties: dict[str, Any] = {
        "_id": hashlib.sha1(f"{repo.repo_type}/{repo.repo_id}".encode()).hexdigest()[:24],
        "id": repo.repo_id,
        "author": repo.author,
        "sha": commit.sha,
        "lastModified": format_datetime(commit.date),
        "createdAt": format_datetime(repo.created_at),
        "private": meta.private,
        "gated": meta.gated,
        "disabled": meta.disabled,
        "downloads": meta.downloads,
        "likes": meta.likes,
        "trendingScore": meta.trending_score,
        "tags": list(meta.tags),
        "cardData": commit.card_data,
        "siblings": [_sibling(path, blob, blobs=blobs) for path, blob in commit.files.items()],
        "usedStorage": repo.used_storage,
    }
    if repo.repo_type is RepoType.MODEL:
        properties |= {
            "modelId": repo.repo_id,
            "library_name": meta.library_name,
            "pipeline_tag": meta.pipeline_tag,
            "config": commit.config,
            "safetensors": commit.safetensors,
            "baseModels": _base_models(meta.tags),
        }
    return {name: value for name, value in properties.items() if value is not None}


def render_listing(repo: Repo) -> dict[str, str]:
    """Each property of `repo` at its head as a ready JSON object member (``"name":value``)."""
    properties = repo_properties(repo, repo.head)
    return {name: f"{json.dumps(name)}:{to_json(value)}" for name, value in properties.items()}


def render_item(listing: Mapping[str, str], fields: Iterable[str]) -> str:
    """A JSON object made of the precomputed members `fields` (those the repo has)."""
    return "{" + ",".join(listing[name] for name in fields if name in listing) + "}"


def select(properties: Mapping[str, Any], fields: Iterable[str]) -> dict[str, Any]:
    """The subset `fields` of `properties`, in the order of `fields`."""
    return {name: properties[name] for name in fields if name in properties}


def to_json(value: Any) -> str:
    """Compact JSON, the way the Hub sends it."""
    return json.dumps(value, separators=_SEPARATORS)


def format_datetime(moment: datetime) -> str:
    """A UTC timestamp in the Hub's format, e.g. ``2024-01-01T00:01:00.000Z``."""
    moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _sibling(path: str, blob: Blob, *, blobs: bool) -> dict[str, Any]:
    if not blobs:
        return {"rfilename": path}
    sibling: dict[str, Any] = {"rfilename": path, "blobId": blob.oid, "size": blob.size}
    if blob.lfs_sha256:
        sibling["lfs"] = {"sha256": blob.lfs_sha256, "size": blob.size, "pointerSize": blob.lfs_pointer_size}
    return sibling


def _base_models(tags: Iterable[str]) -> dict[str, Any] | None:
    """``baseModels`` from ``base_model:<relation>:<id>`` tags, e.g. {"relation": "finetune", "models": [...]}."""
    relations: dict[str, list[str]] = {}
    for tag in tags:
        parts = tag.split(":", 2)
        if len(parts) == 3 and parts[0] == "base_model":
            relations.setdefault(parts[1], []).append(parts[2])
    if not relations:
        return None
    relation, repo_ids = next(iter(relations.items()))
    return {"relation": relation, "models": [{"id": repo_id} for repo_id in repo_ids]}


def _dedupe(fields: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(fields))
