"""Behaviour kept across refactors: every board of the bundled data exports byte for byte as it did.

The digests in tests/fixtures/golden_exports.json were first written at commit 82fa204, before issue 16's
refactor of the registry, the protocol hash, the payloads and the ranking layer, which kept them all. They
were re-recorded on purpose for issue 17 (paired gains for project runs, Welch t for published ones,
failed runs, the zero-shot estimand; the n_seeds, n_seen and failed_runs columns), and again for issue 17's
rerun of the study and issue 18's free_energy_status column (empty on every published board), and for issue
18's knn_accuracy column, the re-gated free energy of the study snapshot and the report's validity table: the
"commit" field says which behaviour they hold. Written by

    python -m tests.integration.test_golden_exports --write

from a store seeded with the two bundles the project ships (data/snapshot/study.json and
data/published_2023/). Every leaderboard, every export format, plus the study report's markdown. A
difference is either a bug or a change of behaviour to explain in the closing note and re-record.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import pytest

GOLDEN = Path(__file__).resolve().parents[1] / "fixtures" / "golden_exports.json"


def golden_digests(db_path: Path) -> dict[str, str]:
    """sha256 of every export of every board (and of the study report) of a store seeded with both bundles."""
    from data.settings import Settings
    from data.store import Store
    from ranking.export import FORMATS, render
    from ranking.leaderboard import leaderboard_from
    from ranking.study_markdown import render_markdown
    from ranking.study_report import study_report
    from service.boards import list_boards, read_board, read_study
    from service.bundles import seed_bundles

    store = Store(db_path)
    seed_bundles(store, Settings(db_path=db_path))
    digests = {}
    for base_id, source, _ in list_boards(store):
        board = leaderboard_from(read_board(store, base_id, source))
        for fmt in FORMATS:
            digests[f"{base_id}|{source}|{fmt}"] = hashlib.sha256(render(board, fmt)).hexdigest()
    for base in store.bases():
        board = leaderboard_from(read_board(store, base.repo_id))
        report = render_markdown(study_report(board, read_study(store, base.repo_id)))
        digests[f"{base.repo_id}|report|md"] = hashlib.sha256(report.encode()).hexdigest()
    return digests


@pytest.mark.slow
def test_every_board_exports_as_before(tmp_path):
    expected = json.loads(GOLDEN.read_text())["digests"]
    actual = golden_digests(tmp_path / "golden.db")
    assert sorted(actual) == sorted(expected), "the set of boards changed"
    changed = sorted(k for k in expected if actual[k] != expected[k])
    assert not changed, f"exports differ from the recorded ones: {changed}"


if __name__ == "__main__" and sys.argv[1:] == ["--write"]:
    import subprocess
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        digests = golden_digests(Path(tmp) / "golden.db")
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], check=True, capture_output=True,
                            text=True).stdout.strip()
    GOLDEN.write_text(json.dumps({"commit": commit, "digests": digests}, indent=1, sort_keys=True) + "\n")
    print(f"{len(digests)} digests written to {GOLDEN} at {commit}")
