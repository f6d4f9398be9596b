"""The study's scientific claims, recomputed from the committed snapshot: README must say what it holds."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from data.records import CandidateStatus
from data.snapshot import DEFAULT_SNAPSHOT, MAX_SNAPSHOT_BYTES, read_snapshot, seed_store
from data.store import Store
from ranking.study_report import render_markdown
from tests.helpers.boards import report_of

README = Path(__file__).resolve().parents[3] / "README.md"
BASE = "sentence-transformers/all-MiniLM-L6-v2"
MARKERS = re.compile(r"<!-- study-report:start -->\n(.*?)\n<!-- study-report:end -->", re.S)


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Store:
    store = Store(tmp_path_factory.mktemp("snapshot") / "lb.db")
    seed_store(store, DEFAULT_SNAPSHOT)
    return store


def test_the_snapshot_is_the_study_and_small():
    assert DEFAULT_SNAPSHOT.stat().st_size < MAX_SNAPSHOT_BYTES
    snap = read_snapshot(DEFAULT_SNAPSHOT)
    assert [b.repo_id for b in snap.bases] == [BASE]
    sources = snap.meta["sources"]
    ok = [c for c in snap.candidates if c.status is CandidateStatus.OK]
    assert sorted(c.repo_id for c in ok) == sorted(sources)
    for c in ok:  # each candidate is tagged with the dataset it was intertrained on
        assert f"dataset:{sources[c.repo_id]}" in c.tags
    assert {"sources", "linear_probe", "free_energy", "intertraining"} <= set(snap.meta["timings_s"])
    assert {s.scorer for s in snap.scores} >= {"linear_probe", "free_energy", "intertraining", "sample_efficiency"}


def test_readme_reports_exactly_what_the_snapshot_holds(store):
    [committed] = MARKERS.findall(README.read_text())
    assert render_markdown(report_of(store, BASE)) == committed


def test_every_candidate_was_scored_by_every_stage(store):
    report = report_of(store, BASE)
    assert report.n_ranked == len(read_snapshot(DEFAULT_SNAPSHOT).meta["sources"])
    assert report.probe is not None and report.free_energy_spearman is not None
    assert report.dropout is not None and report.dropout.difference.n > 0
    assert report.label_savings is not None and len(report.label_savings) >= 1
