"""The offline study killed with SIGKILL partway, then run again, ends with the snapshot of an uninterrupted run.

The tiny study (tests/helpers/tiny_study.py) runs in a child process. The test polls its store and, at the chosen
point, freezes it (SIGSTOP), checks the point on the frozen store, and kills it (SIGKILL). The rerun must finish and
write a snapshot equal to the reference run's in everything but wall-clock fields: the same bases, candidates
(shas, verdicts, metadata), score keys, values, configs and extras (their timings aside).
"""

from __future__ import annotations

import dataclasses
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from data.snapshot import read_snapshot, score_key
from tests.helpers.tiny_study import tiny_study_world

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
RUN = r"""
import sys
from pathlib import Path
from service.study import run_study
from tests.helpers.tiny_study import tiny_study_config, world_at

world, out = world_at(Path(sys.argv[1])), Path(sys.argv[2])
run_study(tiny_study_config(world.corpus), out, world.base_dir, local_root=world.data_root,
          snapshot_path=out / "snapshot.json")
"""
WALL_CLOCK = {"candidates": ("first_seen", "updated_at"), "scores": ("duration_s", "created_at")}


def start_study(world_root: Path, out: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", RUN, str(world_root), str(out)], cwd=ROOT,
                            env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)


def run_study_to_the_end(world_root: Path, out: Path) -> None:
    proc = start_study(world_root, out)
    _, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err[-4000:]


def jobs(db: Path) -> list[tuple[str, str]] | None:
    """(scorer, status) of every job, read-only; None while the store or its jobs table does not exist yet."""
    if not db.exists():
        return None
    try:
        conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
        try:
            return conn.execute("SELECT scorer, status FROM jobs ORDER BY id").fetchall()
        finally:
            conn.close()
    except sqlite3.OperationalError:
        return None


def mid_job(rows: list[tuple[str, str]]) -> bool:
    """Some jobs done and one held by the study's worker (its scores not written)."""
    statuses = [status for _, status in rows]
    return "DONE" in statuses and "RUNNING" in statuses


def guided_dropout(rows: list[tuple[str, str]]) -> bool:
    """Every queued job done, intertraining included, sample efficiency not queued yet: the guided-dropout step
    (scores written without jobs) is under way."""
    scorers = {scorer for scorer, _ in rows}
    return "intertraining" in scorers and "sample_efficiency" not in scorers and all(s == "DONE" for _, s in rows)


def is_stopped(pid: int) -> bool:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "T"


def kill_at(proc: subprocess.Popen, db: Path, point) -> list[tuple[str, str]]:
    """Poll the store; when ``point`` may hold, freeze the study, and kill it if it holds on the frozen store.
    Returns the jobs as they were when it was killed."""
    deadline = time.monotonic() + 600  # only keeps a broken run from hanging
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"the study ended before the kill point: {proc.communicate()[1][-3000:]}"
        rows = jobs(db)
        if rows and point(rows):
            proc.send_signal(signal.SIGSTOP)
            while not is_stopped(proc.pid):
                time.sleep(0.005)
            frozen = jobs(db)
            if frozen and point(frozen):
                proc.send_signal(signal.SIGKILL)
                proc.wait()
                return frozen
            proc.send_signal(signal.SIGCONT)
        time.sleep(0.01)
    raise AssertionError("the kill point never came")


def comparable(path: Path) -> dict:
    """A snapshot without its wall-clock fields: everything the study decided and measured."""
    snapshot = read_snapshot(path)

    def strip(record, section: str) -> dict:
        row = {f.name: getattr(record, f.name) for f in dataclasses.fields(record)
               if f.name not in WALL_CLOCK.get(section, ())}
        if "extra" in row:  # timings the scorers record beside their results
            row["extra"] = {k: v for k, v in row["extra"].items() if not k.endswith("seconds")}
        return row

    return {
        "bases": [strip(b, "bases") for b in snapshot.bases],
        "candidates": sorted((strip(c, "candidates") for c in snapshot.candidates), key=lambda c: c["repo_id"]),
        "scores": {score_key(s): strip(s, "scores") for s in snapshot.scores},
        "meta": {k: snapshot.meta[k] for k in ("study", "sources", "command")},
    }


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("study_resume")
    tiny_study_world(root / "world")
    run_study_to_the_end(root / "world", root / "reference")
    return {"root": root, "reference": comparable(root / "reference" / "snapshot.json")}


@pytest.mark.parametrize("point", [mid_job, guided_dropout], ids=["mid-job", "guided-dropout"])
def test_a_study_killed_partway_resumes_to_the_same_snapshot(tiny, point):
    root, reference = tiny["root"], tiny["reference"]
    out = root / point.__name__
    killed = kill_at(start_study(root / "world", out), out / "study.db", point)
    assert not (out / "snapshot.json").exists()
    assert point(killed) and any(status == "DONE" for _, status in killed)

    run_study_to_the_end(root / "world", out)

    got = comparable(out / "snapshot.json")
    assert got["scores"].keys() == reference["scores"].keys()
    assert len(reference["scores"]) > 20 and {k[3] for k in reference["scores"]} == {
        "linear_probe", "free_energy", "knn", "intertraining", "sample_efficiency"}
    assert got == reference
    conn = sqlite3.connect(f"file:{out / 'study.db'}?mode=ro", uri=True)
    try:
        attempts = conn.execute("SELECT status, attempts, COUNT(*) FROM jobs GROUP BY status, attempts").fetchall()
    finally:
        conn.close()
    assert [(status, n) for status, n, _ in attempts] == [("DONE", 1)]  # the killed run's attempt was given back
