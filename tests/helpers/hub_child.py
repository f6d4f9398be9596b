"""Run a reader script over JSON cases in a child process that reaches only the local Hub: the datasets library
keeps process-wide state (its cache, offline mode), so each test module reads in a fresh interpreter."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def run_in_child(script: str, cases: list[dict], tmp: Path, *, endpoint: str, args: tuple[str, ...] = (),
                 offline: bool = False) -> list[dict]:
    """``python -c script CASES_JSON TMP/datasets_cache *args`` with HF_ENDPOINT at ``endpoint`` and its own HF
    home; one JSON line per case comes back (asserted)."""
    env = {**os.environ, "HF_ENDPOINT": endpoint, "HF_HOME": str(tmp / "hf_home"), "PYTHONPATH": str(ROOT),
           "HF_DATASETS_CACHE": str(tmp / "hf_home" / "datasets"), "HF_HUB_DISABLE_TELEMETRY": "1",
           "HF_DATASETS_DISABLE_PROGRESS_BARS": "1"}
    env.pop("HF_HUB_OFFLINE", None)
    if offline:
        env["HF_HUB_OFFLINE"] = "1"
    done = subprocess.run([sys.executable, "-c", script, json.dumps(cases), str(tmp / "datasets_cache"), *args],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    results = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    assert len(results) == len(cases), done.stdout + done.stderr[-3000:]
    return results
