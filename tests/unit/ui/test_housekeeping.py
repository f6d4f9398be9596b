"""The app's periodic purge (ui/housekeeping.py) and the upload folder's rules (ui/uploads.py): a purge at start and
every period, each turn deleting old uploads and what the store no longer keeps; a payload names only a regular
file inside the upload folder."""

from __future__ import annotations

import os
import threading
import time
from dataclasses import replace

import pytest

from data.errors import StoreBusy
from data.personal_cache import FEATURES_DIR
from data.user_limits import UserDataError
from tests.helpers.leaderboard_store import build_store
from ui.housekeeping import Housekeeper, purge_once
from ui.uploads import NOT_AN_UPLOAD, delete_upload, sweep, uploaded_file


def aged(path, seconds: float):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("x")
    then = time.time() - seconds
    os.utime(path, (then, then))
    return path


def test_a_sweep_deletes_only_files_past_their_time_and_the_folders_it_empties(tmp_path):
    old, new = aged(tmp_path / "a" / "old.csv", 7200), aged(tmp_path / "b" / "new.csv", 10)
    assert sweep(tmp_path, keep_s=3600) == 1
    assert not old.exists() and not old.parent.exists() and new.exists()
    assert sweep(tmp_path / "missing", keep_s=0) == 0


def test_purge_once_sweeps_uploads_and_drops_features_of_rows_the_store_no_longer_keeps(tmp_path, settings):
    store = build_store(tmp_path / "lb.db")
    cache = tmp_path / "cache"
    orphan = cache / FEATURES_DIR / ("f" * 64)
    orphan.mkdir(parents=True)
    (orphan / "m.pt").write_bytes(b"features")
    upload = aged(tmp_path / "gradio" / "h" / "mine.csv", 7200)
    gone = purge_once(store, replace(settings, cache_dir=cache, personal_upload_keep_s=3600), tmp_path / "gradio")
    assert gone == 2 and not orphan.exists() and not upload.exists()


def test_the_housekeeper_purges_at_start_then_every_period_and_survives_a_failing_turn():
    turns, done = [], threading.Event()

    def purge() -> int:
        turns.append(time.monotonic())
        if len(turns) == 2:
            raise StoreBusy("busy")  # logged; the next turn still runs
        if len(turns) >= 4:
            done.set()
        return 0

    keeper = Housekeeper(purge, every_s=0.05).start()
    assert done.wait(5)
    keeper.stop()
    assert len(turns) >= 4


def test_only_a_regular_file_inside_the_upload_folder_is_an_upload(tmp_path):
    root = tmp_path / "gradio"
    inside = aged(root / "h" / "data.csv", 0)
    assert uploaded_file(str(inside), root) == inside.resolve()
    outside = aged(tmp_path / "secret.csv", 0)
    link = root / "h" / "link.csv"
    link.symlink_to(outside)
    for payload in (str(outside), str(link), str(root / "h"), "/dev/zero", "/etc/passwd", str(root / "nope.csv"),
                    str(root / ".." / "secret.csv")):
        with pytest.raises(UserDataError) as refused:
            uploaded_file(payload, root)
        assert refused.value.reason == NOT_AN_UPLOAD
    link.unlink()
    delete_upload(inside, root.resolve())
    assert not inside.exists() and not inside.parent.exists()
    delete_upload(outside, root.resolve())  # outside the folder: left alone
    assert outside.exists()
