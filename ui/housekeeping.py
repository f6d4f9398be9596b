"""The app's periodic purge: a daemon thread that, every ``settings.personal_purge_every_s`` seconds (and once at
start, so a restart keeps the same promise), deletes what README says is gone by then: expired personal rankings,
rows no open job needs, their cached features, and uploaded or downloaded files older than
``settings.personal_upload_keep_s``. It never waits for the next request to do so.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path

from data.errors import LeaderboardError
from data.settings import Settings
from data.store import Store
from ui.uploads import sweep

logger = logging.getLogger(__name__)


def purge_once(store: Store, settings: Settings, uploads: Path) -> int:
    """One purge of the store, the feature cache and the upload folder; returns how many files went."""
    from data.personal_cache import purge_personal_data

    gone = purge_personal_data(store, Path(settings.cache_dir))
    return gone + sweep(uploads, settings.personal_upload_keep_s)


class Housekeeper:
    """``start()`` runs ``purge_once`` now and then every ``every_s`` seconds in a daemon thread; ``stop()`` ends it.
    A failing purge (a busy or read-only store) is logged and tried again at the next turn."""

    def __init__(self, purge: Callable[[], int], every_s: float):
        self.purge, self.every_s = purge, every_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="housekeeping", daemon=True)

    def start(self) -> Housekeeper:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)

    def _run(self) -> None:
        while True:
            try:
                gone = self.purge()
                if gone:
                    logger.info("purged %d files past their time", gone)
            except (LeaderboardError, OSError):
                logger.exception("the periodic purge failed; it runs again in %.0f s", self.every_s)
            if self._stop.wait(self.every_s):
                return
