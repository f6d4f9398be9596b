"""A study's free energy scored again under a new protocol: the snapshot holds the new protocol's scores only
(both stay in the study's store), and only a redoable scorer can be redone."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest

from data.snapshot import read_snapshot, write_snapshot
from service.study import redo_stage, superseded_protocols
from tests.helpers.leaderboard_store import BASE, build_store


def redone(store):
    """Every free-energy score of ``store`` again under protocol "fe2", a day later than the first ("fe1")."""
    first = list(store.scores(base_id=BASE, scorer="free_energy"))
    store.add_scores([replace(s, created_at=datetime(2026, 1, 1, tzinfo=UTC)) for s in first])
    store.add_scores([replace(s, config_hash="fe2", value=s.value + 1, created_at=datetime(2026, 1, 2, tzinfo=UTC))
                      for s in first])
    return store


def test_the_older_protocol_of_a_redone_scorer_is_superseded(tmp_path):
    store = redone(build_store(tmp_path / "s.db"))
    assert superseded_protocols(store, BASE) == {"fe1"}
    path = write_snapshot(store, tmp_path / "snap.json", base_ids=[BASE], meta={},
                          superseded=superseded_protocols(store, BASE))
    kept = read_snapshot(path).scores
    assert {s.config_hash for s in kept if s.scorer == "free_energy"} == {"fe2"}
    assert {s.config_hash for s in kept if s.scorer != "free_energy"} == {"ft1", "lp1"}  # the others all kept
    assert {s.config_hash for s in store.scores(scorer="free_energy")} == {"fe1", "fe2"}  # the store keeps both


def test_a_study_scored_once_supersedes_nothing(tmp_path):
    assert superseded_protocols(build_store(tmp_path / "s.db"), BASE) == set()


def test_only_a_redoable_scorer_can_be_redone(tmp_path):
    with pytest.raises(ValueError, match="only free_energy can be redone"):
        redo_stage(tmp_path, "intertraining")
