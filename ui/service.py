"""LeaderboardService: built leaderboards, cached until the store changes (checked at most every few seconds)."""

from __future__ import annotations

import logging
import threading
import time

from data.metrics import PROJECT_SOURCE
from data.selection import canonical_id
from data.store import Store
from ranking.leaderboard import Leaderboard
from ranking.source import available_leaderboards, load_leaderboard

logger = logging.getLogger(__name__)


class LeaderboardService:
    """Thread-safe: Gradio handlers run on worker threads."""

    def __init__(self, store: Store, *, recheck_s: float = 2.0):
        self.store = store
        self.recheck_s = recheck_s
        self._lock = threading.Lock()
        self._boards: dict[tuple[str, str], Leaderboard] = {}
        self._version: tuple | None = None
        self._checked_at = 0.0
        self._available: list[tuple[str, str, int]] | None = None

    def _refresh(self) -> None:
        now = time.monotonic()
        if self._version is not None and now - self._checked_at < self.recheck_s:
            return
        version = self.store.data_version()
        self._checked_at = now
        if version != self._version:
            self._version = version
            self._boards.clear()
            self._available = None

    def invalidate(self) -> None:
        with self._lock:
            self._version = None
            self._boards.clear()
            self._available = None

    def available(self) -> list[tuple[str, str, int]]:
        """(base_id, source, models) of every leaderboard the store can build."""
        with self._lock:
            self._refresh()
            if self._available is None:
                self._available = available_leaderboards(self.store)
            return list(self._available)

    def bases(self) -> list[str]:
        return sorted({base for base, _, _ in self.available()})

    def sources(self, base_id: str) -> list[str]:
        found = [source for base, source, _ in self.available() if base == base_id]
        return found or [PROJECT_SOURCE]

    def board(self, base_id: str, source: str) -> Leaderboard:
        with self._lock:
            self._refresh()
            key = (canonical_id(base_id), source)
            if key not in self._boards:
                started = time.perf_counter()
                self._boards[key] = load_leaderboard(self.store, key[0], source)
                logger.info("built leaderboard %s (%s): %d models in %.2fs", base_id, source,
                            len(self._boards[key].rows), time.perf_counter() - started)
            return self._boards[key]
