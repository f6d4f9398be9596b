"""The API's ranking downloads as files: rendered once, compressed once, each with a strong ETag.

``ExportFiles.read(version, board, fmt, limit, gzip=...)`` renders a board's export (``ui.board_cache.render_board``)
once per (base, source, include_seen, store data version, format, limit) into a folder: the bytes and a
gzip-compressed sibling, each written to a temporary file then moved into place (``os.replace``), so no reader
ever sees part of one. Each file's ETag is the hash of its bytes. At most ``max_files`` exports are kept (least
recently used out, their files deleted), and a board's newer version drops its older versions' files.

A data version means something only for its own store, so each process writes under a folder of its own,
``<folder>/<pid>-<random>``; the folders of processes that no longer run are deleted when the next one starts.
``export_response`` answers a request with one: 304 when ``If-None-Match`` names its ETag, the gzip bytes when
the client accepts gzip.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import os
import secrets
import shutil
import tempfile
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

from ranking.leaderboard import Leaderboard
from ui.board_cache import normal_limit, render_board

Key = tuple[str, str, bool, bool, int, str, int | None]  # (base, source, include_seen, include_suspect, version,
# format, limit)
MAX_FILES = 64


@dataclass(frozen=True, slots=True)
class ExportFile:
    path: Path
    etag: str
    gzip_path: Path
    gzip_etag: str


class ExportFiles:
    """Thread-safe; concurrent first requests for one export render it once."""

    def __init__(self, folder: Path, max_files: int = MAX_FILES):
        remove_dead_folders(Path(folder))
        self.folder = Path(folder) / f"{os.getpid()}-{secrets.token_hex(4)}"
        self.max_files = max_files
        self._lock = threading.Lock()  # guards _files
        self._render_lock = threading.Lock()  # one render at a time
        self._files: OrderedDict[Key, ExportFile] = OrderedDict()

    def read(self, version: int, board: Leaderboard, fmt: str, limit: int | None, *,
             gzip: bool) -> tuple[bytes, str]:
        """(the export's bytes, their ETag): gzip-compressed when ``gzip``."""
        key = (board.base_id, board.source, board.include_seen, board.include_suspect, version, fmt,
               normal_limit(board, limit))
        for _ in range(3):
            export = self.get(key, board)
            try:
                if gzip:
                    return export.gzip_path.read_bytes(), export.gzip_etag
                return export.path.read_bytes(), export.etag
            except FileNotFoundError:  # dropped meanwhile (or deleted from outside): render it again
                self._forget(key, export)
        raise FileNotFoundError(f"the export of {board.base_id} keeps disappearing from {self.folder}")

    def get(self, key: Key, board: Leaderboard) -> ExportFile:
        found = self._lookup(key)
        if found is not None:
            return found
        with self._render_lock:
            found = self._lookup(key)
            if found is None:
                found = self._write(key, render_board(board, key[5], key[6]))
                self._keep(key, found)
        return found

    def __len__(self) -> int:
        return len(self._files)

    def _lookup(self, key: Key) -> ExportFile | None:
        with self._lock:
            found = self._files.get(key)
            if found is not None:
                self._files.move_to_end(key)
            return found

    def _write(self, key: Key, data: bytes) -> ExportFile:
        self.folder.mkdir(parents=True, exist_ok=True)
        stem = f"{hashlib.sha256(repr(key).encode()).hexdigest()[:32]}.{key[5]}"
        packed = gzip.compress(data, compresslevel=6, mtime=0)
        path, gzip_path = self.folder / stem, self.folder / f"{stem}.gz"
        write_atomically(gzip_path, packed)
        write_atomically(path, data)
        return ExportFile(path, etag_of(data), gzip_path, etag_of(packed))

    def _keep(self, key: Key, export: ExportFile) -> None:
        """Index ``export``; drop the board's older versions, then the least recently used past ``max_files``."""
        with self._lock:
            self._files[key] = export
            older = [k for k in self._files if k[:4] == key[:4] and k[4] < key[4]]
            dropped = [self._files.pop(k) for k in older]
            while len(self._files) > max(1, self.max_files):
                dropped.append(self._files.popitem(last=False)[1])
        for gone in dropped:
            _delete(gone)

    def _forget(self, key: Key, export: ExportFile) -> None:
        with self._lock:
            if self._files.get(key) is export:
                del self._files[key]


def export_response(files: ExportFiles, request, version: int, board: Leaderboard, fmt: str, limit: int | None,
                    media_type: str):
    """The export as a response to ``request``: 304 when its ETag matches, gzip when accepted."""
    from fastapi import Response

    packed = accepts_gzip(request.headers.get("accept-encoding", ""))
    data, etag = files.read(version, board, fmt, limit, gzip=packed)
    headers = {"ETag": etag, "Cache-Control": "no-cache", "Vary": "Accept-Encoding"}
    if etag_matches(request.headers.get("if-none-match", ""), etag):
        return Response(status_code=304, headers=headers)
    if packed:
        headers["Content-Encoding"] = "gzip"
    return Response(data, media_type=media_type, headers=headers)


def accepts_gzip(header: str) -> bool:
    """Whether an Accept-Encoding header accepts gzip (``gzip``, ``x-gzip`` or ``*`` with a q above 0)."""
    weights: dict[str, float] = {}
    for part in header.split(","):
        coding, _, params = part.partition(";")
        name, _, value = params.strip().partition("=")
        try:
            weight = float(value) if name.strip().lower() == "q" else 1.0
        except ValueError:
            weight = 0.0
        weights[coding.strip().lower()] = weight
    return weights.get("gzip", weights.get("x-gzip", weights.get("*", 0.0))) > 0


def etag_matches(header: str, etag: str) -> bool:
    """Whether an If-None-Match header names ``etag`` (weak comparison, as RFC 9110 says for it) or is ``*``."""
    tags = [t.strip().removeprefix("W/") for t in header.split(",")]
    return "*" in tags or etag in tags


def etag_of(data: bytes) -> str:
    return f'"{hashlib.sha256(data).hexdigest()[:32]}"'


def write_atomically(path: Path, data: bytes) -> None:
    """``data`` at ``path`` all at once: written beside it under a temporary name, then renamed over it."""
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as f:
            f.write(data)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


def remove_dead_folders(folder: Path) -> None:
    """Delete the ``<pid>-<random>`` folders under ``folder`` whose process no longer runs."""
    if not folder.is_dir():
        return
    for child in folder.iterdir():
        pid = child.name.split("-", 1)[0]
        if child.is_dir() and pid.isdigit() and not _running(int(pid)):
            shutil.rmtree(child, ignore_errors=True)


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _delete(export: ExportFile) -> None:
    export.path.unlink(missing_ok=True)
    export.gzip_path.unlink(missing_ok=True)
