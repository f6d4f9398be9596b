"""The cached features of users' rows (``<cache_dir>/personal-features/<data hash>/``), without torch: the web
process purges them as the worker does. Features of a user's rows (from which their text could be approximated)
live no longer than the rows."""

from __future__ import annotations

import shutil
from pathlib import Path

from data.store import Store

FEATURES_DIR = "personal-features"  # under the cache dir: one folder per data hash, one file per (model, config)


def drop_unkept_features(store: Store, cache_dir: Path | None) -> int:
    """Delete the cached features of every data hash whose rows the store no longer keeps; returns how many
    folders went."""
    root = Path(cache_dir) / FEATURES_DIR if cache_dir else None
    if root is None or not root.is_dir():
        return 0
    gone = [d for d in root.iterdir() if d.is_dir() and store.personal_rows(d.name) is None]
    for d in gone:
        shutil.rmtree(d, ignore_errors=True)
    return len(gone)
