"""Atomic file writes: the bytes go to a temporary file in the target's folder, then ``os.replace`` puts it in place.

A reader sees the old file or the whole new one, never a part: a crash, a full disk or a killed process leaves at
most a hidden ``.NAME.*.tmp`` beside the target (deleted when the write fails in-process), never a truncated target.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def atomic_path(path: Path | str) -> Iterator[Path]:
    """A temporary path beside ``path`` to write to (``torch.save(x, tmp)``); when the block ends without an
    error it is synced to disk and renamed onto ``path``, otherwise deleted (``path`` is left as it was)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def atomic_write_bytes(path: Path | str, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (``atomic_path``)."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
