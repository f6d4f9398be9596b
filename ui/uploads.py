"""The files users upload: only a regular file that Gradio saved under its upload folder is ever opened, whatever
path an event's payload names, and no upload outlives its use.

Gradio's own check of a payload's path is skipped when the Blocks are mounted into FastAPI without ``launch()``
(app.py marks them launched); this is the second, independent check. An upload is deleted once its rows are queued
(the store keeps them from then on), and ``sweep`` deletes whatever is left in the folder after ``keep_s``.
"""

from __future__ import annotations

import logging
import os
import stat
import tempfile
import time
from pathlib import Path

from data.user_limits import UserDataError

logger = logging.getLogger(__name__)

NOT_AN_UPLOAD = "The file could not be opened: upload it again."


def upload_root() -> Path:
    """Where Gradio saves uploads (``gradio.utils.get_upload_folder``, without importing gradio)."""
    return Path(os.environ.get("GRADIO_TEMP_DIR") or Path(tempfile.gettempdir()) / "gradio").resolve()


def uploaded_file(file_path: str | os.PathLike, root: Path) -> Path:
    """``file_path`` resolved (symlinks followed) when it is a regular file inside ``root``; else UserDataError
    with one sentence that names nothing of the path."""
    try:
        path = Path(file_path).resolve(strict=True)
        path.relative_to(root.resolve())
        is_file = stat.S_ISREG(path.stat().st_mode)
    except (OSError, ValueError, RuntimeError) as e:
        logger.warning("refused a file payload outside the upload folder: %r (%s)", str(file_path)[:200], e)
        raise UserDataError(NOT_AN_UPLOAD) from e
    if not is_file:
        logger.warning("refused a file payload that is not a regular file: %r", str(file_path)[:200])
        raise UserDataError(NOT_AN_UPLOAD)
    return path


def delete_upload(path: Path, root: Path) -> None:
    """Delete an upload (and its folder when that empties); anything outside ``root`` is left alone."""
    try:
        path.relative_to(root)
        path.unlink(missing_ok=True)
        if path.parent != root:
            path.parent.rmdir()
    except (OSError, ValueError):
        pass


def sweep(root: Path, keep_s: float, now: float | None = None) -> int:
    """Delete every file under ``root`` last changed more than ``keep_s`` seconds ago, then the folders it empties;
    returns how many files went."""
    if not root.is_dir():
        return 0
    cutoff = (time.time() if now is None else now) - keep_s
    gone = 0
    for folder, dirs, files in os.walk(root, topdown=False):
        for name in files:
            gone += _delete_if_older(Path(folder) / name, cutoff)
        for name in dirs:
            try:
                (Path(folder) / name).rmdir()
            except OSError:
                pass  # not empty
    return gone


def _delete_if_older(path: Path, cutoff: float) -> int:
    try:
        if path.lstat().st_mtime < cutoff:
            path.unlink()
            return 1
    except OSError:
        pass
    return 0
