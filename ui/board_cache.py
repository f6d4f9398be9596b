"""LeaderboardService: built leaderboards and their rendered exports, cached until the store changes.

The store's data version is checked at most every ``recheck_s`` seconds. When it has changed, a
leaderboard already built keeps being served while a fresh one is built in the background
(stale-while-revalidate), so a busy scoring worker never makes the page wait for a rebuild.

A board is built per (base, source, include_seen, include_suspect): ``include_seen`` False (the default) is the
zero-shot estimand, each model's mean gain leaving out the suite targets its model card says it was trained on;
True puts them back; ``include_suspect`` likewise for imported cells stored as suspect (column-shifted rows of a
published file). ``ranking.leaderboard.build_leaderboard``; each is cached and served on its own.

Both caches are bounded (least recently used out, by entries and by bytes) and hold only leaderboards that
exist: a request for an unknown base gets an empty board that is not kept, and an export's row limit is
normalised (a limit at or above the board's size is "all"), so strangers' requests cannot grow the process.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import threading
import time
from typing import NamedTuple

from data.metrics import PROJECT_SOURCE
from data.selection import canonical_id
from data.store import Store
from ranking.export import render
from ranking.leaderboard import Leaderboard, build_leaderboard, empty_scores, leaderboard_from
from service.boards import list_boards, read_board
from ui.cache import BoundedCache

logger = logging.getLogger(__name__)

Key = tuple[str, str, bool, bool]  # (canonical base id, source, include_seen, include_suspect)


class BoardKey(NamedTuple):
    """The board a request is about: its base's canonical id, resolved once (``LeaderboardService.key``, or the
    page's ``AppHandlers.default_selection``), and its score source; everything after takes it as it is."""

    base_id: str | None  # None: no board exists yet
    source: str
MAX_BOARDS, MAX_BOARD_BYTES = 32, 512 * 2**20
MAX_RENDERS, MAX_RENDER_BYTES = 128, 256 * 2**20


class LeaderboardService:
    """Thread-safe: Gradio handlers and API requests run on worker threads."""

    def __init__(self, store: Store, *, recheck_s: float = 2.0):
        self.store = store
        self.recheck_s = recheck_s
        self._lock = threading.Lock()
        self._boards = BoundedCache(MAX_BOARDS, MAX_BOARD_BYTES)  # key -> (data version built at, board)
        self._renders = BoundedCache(MAX_RENDERS, MAX_RENDER_BYTES)  # (key, "fmt:limit") -> (id(board), bytes)
        self._building: set[Key] = set()
        self._gates: dict[Key, threading.Lock] = {}  # per board: its cold build runs once
        self._version: int | None = None
        self._checked_at = 0.0
        self._available: tuple[int, list[tuple[str, str, int]]] | None = None

    def _current_version(self) -> int:
        now = time.monotonic()
        if self._version is None or now - self._checked_at >= self.recheck_s:
            self._version = self.store.data_version()
            self._checked_at = now
        return self._version

    def invalidate(self) -> None:
        """Forget the cached version: the next call checks the store again."""
        with self._lock:
            self._version = None

    def available(self) -> list[tuple[str, str, int]]:
        """(base_id, source, models) of every leaderboard the store can build."""
        with self._lock:
            version = self._current_version()
            if self._available is None or self._available[0] != version:
                self._available = (version, list_boards(self.store))
            return list(self._available[1])

    def bases(self) -> list[str]:
        return sorted({base for base, _, _ in self.available()})

    def key(self, base_id: str, source: str) -> BoardKey:
        """The key of (base, source): a legacy id (roberta-base) becomes its canonical one."""
        return BoardKey(canonical_id(base_id), source)

    def sources(self, base_id: str) -> list[str]:
        found = [source for base, source, _ in self.available() if base == canonical_id(base_id)]
        return found or [PROJECT_SOURCE]

    def board(self, board: BoardKey, include_seen: bool = False, include_suspect: bool = False) -> Leaderboard:
        """The leaderboard of (base, source); ``include_seen``: mean gains include the targets each model was
        trained on (default: left out, the zero-shot estimand); ``include_suspect``: and its suspect imported
        cells (default: left out)."""
        return self.versioned_board(board, include_seen, include_suspect)[1]

    def versioned_board(self, board: BoardKey, include_seen: bool = False, include_suspect: bool = False
                        ) -> tuple[int, Leaderboard]:
        """(the store's data version the board was built at, the board), as ``board`` serves it; an unknown
        board's version is -1."""
        key = (board.base_id, board.source, bool(include_seen), bool(include_suspect))
        if key[:2] not in {(b, s) for b, s, _ in self.available()}:  # unknown: an empty board, never kept
            return -1, dataclasses.replace(_empty_board(key[1]), base_id=key[0], include_seen=key[2],
                                           include_suspect=key[3])
        with self._lock:
            version = self._current_version()
            cached = self._boards.get(key)
            if cached is not None:
                if cached[0] != version and key not in self._building:
                    self._building.add(key)
                    threading.Thread(target=self._rebuild, args=(key, version), daemon=True).start()
                return cached
            gate = self._gates.setdefault(key, threading.Lock())
        with gate:  # one cold build per board: concurrent first requests wait for it instead of each building it
            with self._lock:
                cached = self._boards.get(key)
            return cached if cached is not None else (version, self._rebuild(key, version))

    def rendered(self, board_key: BoardKey, fmt: str, limit: int | None = None, include_seen: bool = False,
                 include_suspect: bool = False) -> bytes:
        """The ranking (baseline + the top ``limit`` models, or all) as CSV, JSON or Parquet bytes,
        rendered once per built leaderboard (``include_seen`` and ``include_suspect`` as for ``board``)."""
        board = self.board(board_key, include_seen, include_suspect)
        limit = normal_limit(board, limit)
        key = ((board.base_id, board_key.source, bool(include_seen), bool(include_suspect)), f"{fmt}:{limit}")
        with self._lock:
            cached = self._renders.get(key)
            if cached is not None and cached[0] == id(board):
                return cached[1]
        data = render_board(board, fmt, limit)
        with self._lock:
            self._renders.put(key, (id(board), data), len(data))
        return data

    def _rebuild(self, key: Key, version: int) -> Leaderboard:
        started = time.perf_counter()
        try:
            board = leaderboard_from(read_board(self.store, key[0], key[1]), include_seen=key[2],
                                     include_suspect=key[3])
        finally:
            with self._lock:
                self._building.discard(key)
        with self._lock:
            current = self._boards.get(key)
            if current is None or current[0] <= version:
                self._boards.put(key, (version, board), _size_of(board))
        extras = ", trained-on targets included" * key[2] + ", suspect cells included" * key[3]
        logger.info("built leaderboard %s (%s%s): %d models in %.2fs", key[0], key[1], extras, len(board.rows),
                    time.perf_counter() - started)
        return board


def normal_limit(board: Leaderboard, limit: int | None) -> int | None:
    """``limit`` with every limit at or past the board's end as None (all): the same file."""
    return None if limit is None or limit >= len(board.rows) else limit


def render_board(board: Leaderboard, fmt: str, limit: int | None = None) -> bytes:
    """The board's baseline and top ``limit`` models (None: all) as ``fmt`` bytes (ranking/export.py)."""
    frame = None if limit is None else board.to_frame().head(max(0, limit) + (0 if board.baseline.empty else 1))
    return render(board, fmt, frame)


@functools.lru_cache(maxsize=8)
def _empty_board(source: str) -> Leaderboard:
    return build_leaderboard(empty_scores(), base_id="", source=source)


def _size_of(board: Leaderboard) -> int:
    """Bytes a built leaderboard holds (its frames, strings included)."""
    return int(board.rows.memory_usage(deep=True).sum() + board.baseline.memory_usage(deep=True).sum())
