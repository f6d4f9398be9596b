"""Atomic writes (data/atomic.py): the target holds the old bytes or all of the new ones, never a part, and a
failed write leaves no temporary file behind."""

from __future__ import annotations

import errno

import pytest

from data.atomic import atomic_path, atomic_write_bytes


def test_a_write_replaces_the_file_whole_and_leaves_nothing_beside_it(tmp_path):
    target = tmp_path / "sub" / "x.bin"
    atomic_write_bytes(target, b"first")
    atomic_write_bytes(target, b"second")
    assert target.read_bytes() == b"second" and [p.name for p in target.parent.iterdir()] == ["x.bin"]


def test_a_disk_full_midway_leaves_the_old_file_and_no_partial_one(tmp_path):
    target = tmp_path / "x.bin"
    atomic_write_bytes(target, b"old")
    with pytest.raises(OSError, match="No space"), atomic_path(target) as tmp:
        assert tmp.parent == target.parent and tmp != target
        tmp.write_bytes(b"half of the new")
        raise OSError(errno.ENOSPC, "No space left on device")
    assert target.read_bytes() == b"old" and [p.name for p in tmp_path.iterdir()] == ["x.bin"]


def test_a_failed_first_write_leaves_no_file_at_all(tmp_path):
    target = tmp_path / "x.bin"
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_bytes(b"partial")
        raise RuntimeError("killed")
    assert list(tmp_path.iterdir()) == []
