"""A parse in the sandbox (ui/sandbox.py): its value or its user's sentence comes back; past the time budget or the
memory cap the child is killed and the user gets one sentence; a crash is logged, never shown; and while a child
works the parent's threads keep running (the GIL is not held)."""

from __future__ import annotations

import functools
import threading
import time

import pytest

from data.user_limits import UserDataError
from ui.sandbox import SandboxFailed, run_bounded


def double(x: int) -> int:
    return 2 * x


def refuse() -> None:
    raise UserDataError("The file 'a.csv' has no data rows.")


def crash() -> None:
    raise RuntimeError("secret detail at /root/server/path.py")


def spin(seconds: float) -> int:
    end, n = time.monotonic() + seconds, 0
    while time.monotonic() < end:
        n += 1
    return n


def hog(megabytes: int) -> int:
    blocks = [bytearray(2**20) for _ in range(megabytes)]
    return len(blocks)


def test_the_value_and_the_users_sentence_come_back():
    assert run_bounded(functools.partial(double, 21)) == 42
    with pytest.raises(UserDataError) as refused:
        run_bounded(refuse)
    assert refused.value.reason == "The file 'a.csv' has no data rows."
    assert not isinstance(refused.value, SandboxFailed)


def test_a_crash_is_one_fixed_sentence_and_its_detail_is_only_logged(caplog):
    with pytest.raises(SandboxFailed) as failed:
        run_bounded(crash, what="the file")
    assert failed.value.reason == "The file could not be read; it has been logged."
    assert "secret detail" in caplog.text and "secret" not in failed.value.reason


def test_past_its_time_budget_the_child_is_stopped():
    started = time.monotonic()
    with pytest.raises(SandboxFailed, match="took longer than 1 seconds"):
        run_bounded(functools.partial(spin, 30), time_s=1)
    assert time.monotonic() - started < 3


def test_past_its_memory_cap_the_child_is_stopped_and_a_smaller_one_passes():
    with pytest.raises(SandboxFailed, match="needed more memory than an upload may use"):
        run_bounded(functools.partial(hog, 600), memory_bytes=200 * 2**20)
    assert run_bounded(functools.partial(hog, 50), memory_bytes=400 * 2**20) == 50


def test_the_parents_threads_run_while_a_child_works():
    ticks, stop = [], threading.Event()

    def tick():
        while not stop.wait(0.01):
            ticks.append(time.monotonic())

    ticker = threading.Thread(target=tick, daemon=True)
    ticker.start()
    assert run_bounded(functools.partial(spin, 1.0)) > 0
    stop.set()
    ticker.join()
    gaps = [b - a for a, b in zip(ticks, ticks[1:], strict=False)]
    assert len(ticks) > 50 and max(gaps) < 0.5
