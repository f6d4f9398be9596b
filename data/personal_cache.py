"""The cached features of users' rows (``<cache_dir>/personal-features/<data hash>/``), without torch: the web
process purges them as the worker does. Features of a user's rows (from which their text could be approximated)
live no longer than the rows."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

from data.errors import StoreError
from data.store import Store

logger = logging.getLogger(__name__)

FEATURES_DIR = "personal-features"  # under the cache dir: one folder per data hash, one file per (model, config)


def drop_unkept_features(store: Store, cache_dir: Path | None) -> int:
    """Delete the cached features of every data hash whose rows the store no longer keeps; returns how many
    folders went."""
    root = Path(cache_dir) / FEATURES_DIR if cache_dir else None
    if root is None or not root.is_dir():
        return 0
    kept = set(store.requests.personal_data_hashes())
    gone = [d for d in root.iterdir() if d.is_dir() and d.name not in kept]
    for d in gone:
        shutil.rmtree(d, ignore_errors=True)
    return len(gone)


def purge_personal_data(store: Store, cache_dir: Path | None) -> int:
    """Delete every personal thing past its time: expired requests and their jobs, rows no open job needs, the
    cached features of data whose rows are gone, and the deleted rows' bytes from the store's WAL. Cheap (a few
    statements and one listing of the features folder): an idle worker calls it every ``personal_purge_every_s``
    (and the app may). A store that refuses (busy, full) or an unreadable folder is logged, not raised: the next
    call tries again. Returns how many row sets and feature folders went."""
    if store.read_only:  # this process cannot write it: the one that can purges
        return 0
    try:
        rows = store.requests.purge_personal()
        store.truncate_wal()  # without waiting: a reader in the way leaves it to the next call
        folders = drop_unkept_features(store, cache_dir)
    except (StoreError, OSError) as e:
        logger.warning("personal data could not be purged now: %s", e)
        return 0
    if rows or folders:
        logger.info("purged %d personal row sets and %d feature folders", rows, folders)
    return rows + folders
