"""A user's Hub dataset, fetched only after the Hub's metadata says it fits: the size of its data files is read from
the Hub's listing (``HubClient.dataset_listing``) before anything is downloaded, and the rows loaded are those of
the commit that listing named (data/hub_datasets.py). Errors become one sentence each; what the client said (it
can name hosts and paths) goes to the log only.
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path
from typing import Any

from data.errors import GatedModel, HubError, InvalidRepoId, ModelNotFound, RevisionNotFound
from data.hub_datasets import DatasetListing, DatasetUnavailable, load_dataset
from data.user_limits import UploadLimits, UserDataError, quote, size

logger = logging.getLogger(__name__)

HUB_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,95}/[A-Za-z0-9][A-Za-z0-9._-]{0,95}$")


def load_hub(repo_id: str, config: str | None, revision: str | None, cache_dir: Path | None,
             limits: UploadLimits, hub=None) -> tuple[Any, str]:
    """The dataset (``datasets.DatasetDict``) at the commit the Hub lists for ``revision``, whose data files total at
    most ``limits.max_bytes``, and that commit. ``hub``: a data.hub.HubClient (default: one for a person waiting,
    on the environment's endpoint)."""
    if not HUB_ID_RE.fullmatch(repo_id) or os.path.exists(repo_id):
        raise UserDataError(f"{quote(repo_id)} is not a Hub dataset id: write it as owner/name.")
    listing = check_hub_size(repo_id, revision, limits, hub)
    try:
        loaded, got = load_dataset(repo_id, config, listing.sha or revision, cache_dir)
    except DatasetUnavailable as e:
        raise UserDataError(hub_problem(repo_id, config, revision, e.kind)) from e
    return loaded, got or listing.sha


def check_hub_size(repo_id: str, revision: str | None, limits: UploadLimits, hub=None) -> DatasetListing:
    """The dataset's listing at ``revision`` (its commit and the bytes of its data files); refused over the limit."""
    if hub is None:
        from data.hub import HubClient
        from data.settings import Settings

        hub = HubClient.interactive(Settings.from_env())
    try:
        listing = hub.dataset_listing(repo_id, revision)
    except RevisionNotFound as e:
        raise UserDataError(f"The dataset {quote(repo_id)} has no revision {quote(revision)}.") from e
    except (ModelNotFound, InvalidRepoId) as e:
        raise UserDataError(f"There is no dataset {quote(repo_id)} on the Hub, or it is private.") from e
    except GatedModel as e:
        raise UserDataError(f"The dataset {quote(repo_id)} is gated: this server has no access to it.") from e
    except HubError as e:
        logger.info("the Hub's listing of %r failed: %s", repo_id, e)
        raise UserDataError(f"The Hub did not answer for the dataset {quote(repo_id)}; try again later.") from e
    if listing.data_bytes > limits.max_bytes:
        raise UserDataError(f"The dataset {quote(repo_id)} has {size(listing.data_bytes)} of data files on the Hub, "
                            f"over the limit of {size(limits.max_bytes)}.")
    return listing


def hub_problem(repo_id: str, config: str | None, revision: str | None, kind: str) -> str:
    """The sentence for a dataset that could not be loaded (``DatasetUnavailable.kind``)."""
    sentences = {
        "no_revision": f"The dataset {quote(repo_id)} has no revision {quote(revision)}.",
        "not_found": f"There is no dataset {quote(repo_id)} on the Hub, or it is private.",
        "no_config": f"The dataset {quote(repo_id)} has no configuration {quote(config)}.",
        "needs_config": f"The dataset {quote(repo_id)} has several configurations: pick one.",
    }
    return sentences.get(kind, f"The dataset {quote(repo_id)} could not be loaded from the Hub in a form this app "
                               "reads.")
