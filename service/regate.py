"""Re-gating a bundled snapshot's free-energy scores after the gate changed (``python -m scoring regate PATH``):
the scores are read, ``scoring.llc_gate.regate_stored`` applied, and the snapshot written back through a
throwaway store."""

from __future__ import annotations

import tempfile
from pathlib import Path

from data.snapshot import read_snapshot, write_snapshot
from data.store import Store
from scoring.llc_gate import regate_stored


def regate_snapshot(path: Path) -> int:
    """Rewrite the snapshot at ``path`` with ``regate_stored`` applied; returns how many scores changed."""
    snap = read_snapshot(path)
    scores = regate_stored(list(snap.scores))
    changed = sum(a.status != b.status for a, b in zip(snap.scores, scores, strict=True))
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(Path(tmp) / "regate.db")
        store.add_missing(snap.bases, snap.candidates, scores)
        write_snapshot(store, path, base_ids=[b.repo_id for b in snap.bases], meta=snap.meta)
    return changed
