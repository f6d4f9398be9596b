"""Run one parse of a user's upload in a child process with a time budget and a memory cap.

The web process never parses a user's file itself: ``run_bounded(fn, *args)`` forks a child from a forkserver
(started once, single-threaded, with pandas, pyarrow and the readers imported), caps the child's address space, and
waits on a pipe, so the event loop and the GIL stay free for every other user. A child that runs past its budget is
killed; one that runs out of memory dies there, not in the app. What crosses back is the function's value or the
user's sentence (``UserDataError.reason``); anything else is logged here and said as one fixed sentence.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import resource
import threading
import time
import traceback
from collections.abc import Callable
from typing import Any

from data.user_limits import UserDataError

logger = logging.getLogger(__name__)

PRELOAD = ["data.user_data", "pandas", "pyarrow.parquet", "pyarrow.compute"]
TIME_BUDGET_S = 30.0  # one upload read
HUB_TIME_BUDGET_S = 120.0  # one Hub dataset: the listing, the download and the read
MEMORY_CAP_BYTES = 1024 * 2**20  # resident memory of the child (the largest accepted upload peaks near 400 MB)
BACKSTOP_BYTES = 4 * 2**30  # writable memory the kernel lets the child map at all, on top of what it starts with
WATCH_EVERY_S = 0.02
_lock = threading.Lock()
_context: Any = None


class SandboxFailed(UserDataError):
    """The child ran out of time or memory, or crashed; ``reason`` says which, in one sentence."""


def context() -> Any:
    """The forkserver context (POSIX), its server preloaded with the readers; None where there is none."""
    global _context
    with _lock:
        if _context is None and "forkserver" in multiprocessing.get_all_start_methods():
            _context = multiprocessing.get_context("forkserver")
            _context.set_forkserver_preload(PRELOAD)
        return _context


def run_bounded(fn: Callable[..., Any], *args: Any, what: str = "the file", time_s: float = TIME_BUDGET_S,
                memory_bytes: int = MEMORY_CAP_BYTES) -> Any:
    """``fn(*args)`` in a child: its value, or its UserDataError re-raised; SandboxFailed past the time budget or
    the memory cap, or on any other failure (logged). Without forkserver it runs here."""
    ctx = context()
    if ctx is None:
        return fn(*args)
    receive, send = ctx.Pipe(duplex=False)
    child = ctx.Process(target=_child, args=(send, fn, args, BACKSTOP_BYTES), daemon=True, name="upload-reader")
    child.start()
    send.close()
    try:
        _watch(receive, child, what, time_s, memory_bytes)
        return _outcome(receive, child, what)
    finally:
        receive.close()
        if child.is_alive():
            child.kill()
        child.join(5)


def _watch(receive: Any, child: Any, what: str, time_s: float, memory_bytes: int) -> None:
    """Wait for the child's answer, killing it past the time budget or when its resident memory passes the cap."""
    deadline = time.monotonic() + time_s
    while not receive.poll(WATCH_EVERY_S):
        if time.monotonic() > deadline:
            logger.warning("reading %s took over %.0f s: the reader was stopped", what, time_s)
            raise SandboxFailed(f"Reading {what} took longer than {time_s:.0f} seconds, the limit; try a smaller "
                                f"file.")
        if _resident_bytes(child.pid) > memory_bytes:
            child.kill()
            logger.warning("reading %s passed %d MB: the reader was stopped", what, memory_bytes // 2**20)
            raise SandboxFailed(f"Reading {what} needed more memory than an upload may use; try a smaller file.")
        if not child.is_alive() and not receive.poll(0):
            return  # died without a word: _outcome says so


def _resident_bytes(pid: int | None) -> int:
    try:
        with open(f"/proc/{pid}/status") as f:
            return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:")) * 1024
    except (OSError, StopIteration, ValueError):
        return 0


def _outcome(receive: Any, child: Any, what: str) -> Any:
    try:
        kind, value, peak_mb = receive.recv()
    except (EOFError, OSError) as e:
        child.join(5)
        logger.warning("the reader of %s died (exit code %s)", what, child.exitcode)
        raise SandboxFailed(f"Reading {what} needed more memory than an upload may use; try a smaller file.") from e
    logger.info("read %s in a child that peaked at %.0f MB", what, peak_mb)
    if kind == "ok":
        return value
    if kind == "refused":
        raise UserDataError(value)
    logger.error("reading %s failed:\n%s", what, value)
    raise SandboxFailed(f"{what[:1].upper() + what[1:]} could not be read; it has been logged.")


def _child(send: Any, fn: Callable[..., Any], args: tuple, memory_bytes: int) -> None:
    _cap_memory(memory_bytes)
    try:
        outcome = ("ok", fn(*args))
    except UserDataError as e:
        outcome = ("refused", e.reason)
    except MemoryError:
        outcome = None
    except BaseException:  # noqa: BLE001 (reported to the parent, which logs it)
        outcome = ("failed", traceback.format_exc(limit=20))
    if outcome is not None:
        try:
            send.send((*outcome, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024))
        except MemoryError:
            pass
    send.close()
    os._exit(0)


def _cap_memory(extra: int) -> None:
    """A backstop for a spike faster than the parent's watch: the child's writable private memory (RLIMIT_DATA)
    may grow by ``extra`` at most; Arrow reads on one thread, with the system allocator."""
    try:
        import pyarrow

        pyarrow.set_cpu_count(1)
        pyarrow.set_io_thread_count(1)
        pyarrow.set_memory_pool(pyarrow.system_memory_pool())  # jemalloc reserves far more than it uses
        with open("/proc/self/status") as f:  # VmData: the private writable memory the limit counts
            now = next(int(line.split()[1]) for line in f if line.startswith("VmData:")) * 1024
        resource.setrlimit(resource.RLIMIT_DATA, (now + extra, now + extra))
    except (OSError, ValueError, ImportError, StopIteration):
        logger.warning("could not cap an upload reader's memory")
