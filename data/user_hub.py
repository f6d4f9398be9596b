"""A user's Hub dataset, fetched only after the Hub's metadata says it fits: the size of its data files is read with
``HfApi.dataset_info`` before ``datasets.load_dataset`` downloads anything. Errors become one sentence each; what
the client said (it can name hosts and paths) goes to the log only.
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path
from typing import Any

from data.user_limits import UploadLimits, UserDataError, quote, size

logger = logging.getLogger(__name__)

HUB_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,95}/[A-Za-z0-9][A-Za-z0-9._-]{0,95}$")
DATA_SUFFIXES = (".parquet", ".csv", ".json", ".jsonl", ".arrow", ".txt", ".tsv", ".gz", ".zst", ".bz2", ".xz",
                 ".zip", ".tar", ".ndjson")
_SHA_RE = re.compile(r"(?<![0-9a-f])[0-9a-f]{40}(?![0-9a-f])")


def load_hub(repo_id: str, config: str | None, revision: str | None, cache_dir: Path | None,
             limits: UploadLimits) -> Any:
    """``datasets.load_dataset`` of a dataset whose data files the Hub says total at most ``limits.max_bytes``."""
    if not HUB_ID_RE.fullmatch(repo_id) or os.path.exists(repo_id):
        raise UserDataError(f"{quote(repo_id)} is not a Hub dataset id: write it as owner/name.")
    check_hub_size(repo_id, revision, limits)
    import datasets

    try:
        return datasets.load_dataset(repo_id, config, revision=revision,
                                     cache_dir=str(cache_dir) if cache_dir is not None else None)
    except (datasets.exceptions.DatasetsError, OSError, ValueError, RuntimeError, ImportError) as e:
        logger.info("loading the dataset %r failed: %s", repo_id, e)
        raise UserDataError(hub_problem(repo_id, config, revision, str(e))) from e


def check_hub_size(repo_id: str, revision: str | None, limits: UploadLimits) -> int:
    """The bytes of the dataset's data files at ``revision``, from the Hub's file listing; refused over the limit."""
    from huggingface_hub import HfApi
    from huggingface_hub.errors import HfHubHTTPError, RepositoryNotFoundError, RevisionNotFoundError

    try:
        info = HfApi().dataset_info(repo_id, revision=revision, files_metadata=True, timeout=20)
    except RevisionNotFoundError as e:
        raise UserDataError(f"The dataset {quote(repo_id)} has no revision {quote(revision)}.") from e
    except RepositoryNotFoundError as e:
        raise UserDataError(f"There is no dataset {quote(repo_id)} on the Hub, or it is private.") from e
    except (HfHubHTTPError, OSError, ValueError) as e:
        logger.info("the Hub's listing of %r failed: %s", repo_id, e)
        raise UserDataError(f"The Hub did not answer for the dataset {quote(repo_id)}; try again later.") from e
    total = sum(int(s.size or 0) for s in info.siblings or () if s.rfilename.lower().endswith(DATA_SUFFIXES))
    if total > limits.max_bytes:
        raise UserDataError(f"The dataset {quote(repo_id)} has {size(total)} of data files on the Hub, over the "
                            f"limit of {size(limits.max_bytes)}.")
    return total


def hub_problem(repo_id: str, config: str | None, revision: str | None, message: str) -> str:
    if revision and message.startswith("Revision "):
        return f"The dataset {quote(repo_id)} has no revision {quote(revision)}."
    if "doesn't exist on the Hub" in message:
        return f"There is no dataset {quote(repo_id)} on the Hub, or it is private."
    if config and message.startswith("BuilderConfig "):
        return f"The dataset {quote(repo_id)} has no configuration {quote(config)}."
    if message.startswith("Config name is missing"):
        return f"The dataset {quote(repo_id)} has several configurations: pick one."
    return f"The dataset {quote(repo_id)} could not be loaded from the Hub in a form this app reads."


def resolved_revision(split: Any) -> str:
    """The commit sha: the datasets cache names a directory after it (best effort)."""
    for cache_file in getattr(split, "cache_files", ()):
        found = _SHA_RE.findall(str(cache_file.get("filename", "")))
        if found:
            return found[-1]
    return ""
