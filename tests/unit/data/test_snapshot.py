"""The bundled snapshot: store -> file -> fresh store, the store's own data first, bad files refused."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from data.errors import LeaderboardError, SnapshotError
from data.records import (
    BaseModel,
    Candidate,
    CandidateStatus,
    Kind,
    Match,
    Score,
    SkipReason,
)
from data.settings import DEFAULT_SNAPSHOT, Settings
from data.snapshot import SNAPSHOT_FORMAT, read_snapshot, score_key, seed_store, write_snapshot
from data.store import Store
from tests.helpers.leaderboard_store import BASE, SIG, build_store, sha

OTHER_BASE = "org/other-base"
SKIPPED = Candidate(repo_id="zed/adapter", base_id=BASE, sha=sha("zed/adapter"), kind=Kind.ADAPTER,
                    match=Match.CONFIG, status=CandidateStatus.SKIPPED, skip_reason=SkipReason.ADAPTER,
                    downloads=12, likes=3, license="cc-by-4.0", tags=("peft", f"base_model:adapter:{BASE}"),
                    pipeline_tag="text-classification", num_params=1234, has_safetensors=True,
                    last_modified=datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=UTC),
                    first_seen=datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC))
TIMED = Score(repo_id="alice/strong", revision=sha("alice/strong"), scorer="sample_efficiency", metric="labels_saved",
              target="sst2", value=250.0, config_hash="se1", config_json='{"lr":0.003}', duration_s=12.5,
              created_at=datetime(2025, 2, 3, 4, 5, 6, 789, tzinfo=UTC), extra={"n_labels": [10, 100], "note": "é"},
              base_id=BASE)
# the base scored for another base's leaderboard: in the snapshot because its repo_id is the base
BASE_ELSEWHERE = Score(repo_id=BASE, revision=sha(BASE), scorer="linear_probe", metric="probe_accuracy",
                       target="nli", value=0.5, config_hash="lp1", base_id=OTHER_BASE)


def rich_store(path: Path) -> Store:
    """The known-answer store plus a skipped candidate, a timed score with extras and a second base."""
    store = build_store(path)
    store.save_candidates([SKIPPED])
    store.upsert_base(BaseModel(repo_id=OTHER_BASE, sha=sha(OTHER_BASE), aliases=(), signature=SIG))
    store.save_candidates([Candidate(repo_id="olga/other", base_id=OTHER_BASE, sha=sha("olga/other"),
                                     kind=Kind.FINETUNE, match=Match.TAG, status=CandidateStatus.OK)])
    store.add_scores([TIMED, BASE_ELSEWHERE,
                      Score(repo_id="olga/other", revision=sha("olga/other"), scorer="linear_probe",
                            metric="probe_accuracy", target="nli", value=0.4, config_hash="lp1", base_id=OTHER_BASE)])
    return store


def snapshot_scores(store: Store) -> list[Score]:
    """The scores a snapshot of BASE holds, by key."""
    scores = {score_key(s): s for s in (*store.scores(base_id=BASE), *store.scores(repo_id=BASE))}
    return [scores[k] for k in sorted(scores)]


def by_key(scores) -> list[Score]:
    return sorted(scores, key=score_key)


def dump(store: Store) -> tuple:
    return store.bases(), store.candidates(), by_key(store.scores()), store.queue.jobs(), store.data_version()


@pytest.fixture
def source(tmp_path) -> Store:
    return rich_store(tmp_path / "source.db")


@pytest.fixture
def snapshot_path(source, tmp_path) -> Path:
    return write_snapshot(source, tmp_path / "snap" / "study.json", base_ids=[BASE],
                          meta={"command": "python -m scoring study", "out_dir": tmp_path, "timings_s": {"crawl": 1.5}})


# ----------------------------------------------------------------------------------------------- round trip
def test_store_to_file_to_fresh_store_gives_equal_records(source, snapshot_path, tmp_path):
    fresh = Store(tmp_path / "fresh.db")
    report = seed_store(fresh, snapshot_path)

    assert fresh.bases() == [source.get_base(BASE)]
    assert fresh.candidates() == source.candidates(BASE)
    assert SKIPPED.repo_id in {c.repo_id for c in fresh.candidates()}
    assert by_key(fresh.scores()) == snapshot_scores(source)
    assert TIMED in fresh.scores()  # every field as written, created_at included
    assert score_key(BASE_ELSEWHERE) in {score_key(s) for s in fresh.scores()}
    assert (report.bases_added, report.candidates_added, report.scores_added) == (
        1, len(source.candidates(BASE)), len(snapshot_scores(source)))
    assert (report.bases_skipped, report.candidates_skipped, report.scores_skipped) == (0, 0, 0)
    assert fresh.queue.jobs() == []  # seeding creates no scoring jobs


def test_read_snapshot_gives_back_the_records_as_stored(source, snapshot_path):
    snapshot = read_snapshot(snapshot_path)
    assert snapshot.format == SNAPSHOT_FORMAT
    assert snapshot.bases == (source.get_base(BASE),)
    assert snapshot.candidates == tuple(source.candidates(BASE))
    assert list(snapshot.scores) == by_key(snapshot.scores) == snapshot_scores(source)
    assert snapshot.meta["command"] == "python -m scoring study"
    assert snapshot.meta["out_dir"] == str(snapshot_path.parents[1])  # not JSON: written as text
    assert "olga/other" not in {c.repo_id for c in snapshot.candidates}  # another base's: not in it


def test_the_file_is_sorted_json_with_one_record_per_line(source, snapshot_path):
    text = snapshot_path.read_text()
    document = json.loads(text)
    assert list(document) == ["bases", "candidates", "configs", "format", "meta", "scores"]
    n_records = sum(len(document[k]) for k in ("bases", "candidates", "scores")) + len(document["configs"])
    assert len(text.splitlines()) == n_records + 12  # braces, brackets and keys
    lines = text.splitlines()
    record = json.loads(lines[lines.index('"candidates":[') + 1].rstrip(","))  # the first candidate
    assert list(record) == sorted(record)
    assert record["kind"] == "finetune" and isinstance(record["first_seen"], str) and record["tags"] == []
    # a config's JSON is stored once, under configs
    assert document["configs"]["se1"] == '{"lr":0.003}'
    assert all("config_json" not in row for row in document["scores"])
    assert not list(snapshot_path.parent.glob(".*.tmp"))  # the temp file is gone


def test_writing_an_unknown_base_is_refused(source, tmp_path):
    with pytest.raises(SnapshotError, match="nobody/base.* is not a base"):
        write_snapshot(source, tmp_path / "s.json", base_ids=["nobody/base"], meta={})
    assert not (tmp_path / "s.json").exists()


# ------------------------------------------------------------------------------------- precedence and no jobs
def test_the_stores_own_data_takes_precedence(source, snapshot_path, tmp_path):
    own = Store(tmp_path / "own.db")
    own.upsert_base(BaseModel(repo_id=BASE, sha=sha("a newer base"), aliases=(BASE, "base"), signature=SIG))
    mine = Candidate(repo_id="alice/strong", base_id=BASE, sha=sha("alice/strong v2"), kind=Kind.FINETUNE,
                     match=Match.TAG, status=CandidateStatus.OK, downloads=999_999)
    own.save_candidates([mine])
    key = snapshot_scores(source)[0]
    my_score = dataclasses.replace(key, value=0.123, extra={"mine": True}, duration_s=1.0)
    own.add_scores([my_score])

    report = seed_store(own, snapshot_path)

    assert own.get_base(BASE).sha == sha("a newer base") and own.get_base(BASE).aliases == (BASE, "base")
    assert own.get_candidate("alice/strong", BASE).sha == mine.sha
    assert own.get_candidate("alice/strong", BASE).downloads == 999_999
    stored = [s for s in own.scores() if score_key(s) == score_key(my_score)]
    assert stored == [dataclasses.replace(my_score, created_at=stored[0].created_at)]
    assert (report.bases_added, report.bases_skipped) == (0, 1)
    assert (report.candidates_added, report.candidates_skipped) == (len(source.candidates(BASE)) - 1, 1)
    assert (report.scores_added, report.scores_skipped) == (len(snapshot_scores(source)) - 1, 1)
    assert own.queue.jobs() == []


def test_seeding_twice_adds_nothing_the_second_time(snapshot_path, tmp_path):
    store = Store(tmp_path / "twice.db")
    first = seed_store(store, snapshot_path)
    before = dump(store)[:4]
    second = seed_store(store, snapshot_path)
    assert (second.bases_added, second.candidates_added, second.scores_added) == (0, 0, 0)
    assert (second.bases_skipped, second.candidates_skipped, second.scores_skipped) == (
        first.bases_added, first.candidates_added, first.scores_added)
    assert dump(store)[:4] == before
    assert "bases +0 (1 already stored)" in second.summary()


# ------------------------------------------------------------------------------------------------- bad input
def _edit(path: Path, change) -> None:
    document = json.loads(path.read_text())
    change(document)
    path.write_text(json.dumps(document))


BAD = {
    "missing file": (lambda p: p.unlink(), "no snapshot file at"),
    "not JSON": (lambda p: p.write_text('{"format": 1, "bases": ['), "is not JSON"),
    "not an object": (lambda p: p.write_text("[1, 2]"), "a JSON object was expected, got list"),
    "no format": (lambda p: _edit(p, lambda d: d.pop("format")), "has no format number"),
    "unknown format": (lambda p: _edit(p, lambda d: d.update(format=2)), "format 2; this code reads format 1"),
    "format as text": (lambda p: _edit(p, lambda d: d.update(format="1")), "format '1'; this code reads format 1"),
    "scores not a list": (lambda p: _edit(p, lambda d: d.update(scores={})), "'scores' must be a JSON array"),
    "missing field": (lambda p: _edit(p, lambda d: d["candidates"][1].pop("kind")),
                      r"candidates\[1\] \(alice/strong\): missing field 'kind'"),
    "wrong type": (lambda p: _edit(p, lambda d: d["scores"][0].update(value="high")),
                   r"scores\[0\] \(.*\): field 'value': 'high' is not a float"),
    "bool for an int": (lambda p: _edit(p, lambda d: d["candidates"][0].update(downloads=True)),
                        r"candidates\[0\] .*field 'downloads': true is not a int"),
    "unknown enum value": (lambda p: _edit(p, lambda d: d["candidates"][0].update(status="maybe")),
                           r"field 'status': 'maybe' is not a CandidateStatus \(ok, skipped\)"),
    "bad datetime": (lambda p: _edit(p, lambda d: d["candidates"][0].update(first_seen="yesterday")),
                     r"field 'first_seen': 'yesterday' is not an ISO 8601"),
    "nested field": (lambda p: _edit(p, lambda d: d["bases"][0]["signature"].update(hidden_size="32")),
                     r"bases\[0\] \(org/base\): field 'signature': field 'hidden_size': '32' is not a int"),
    "tags not strings": (lambda p: _edit(p, lambda d: d["candidates"][0].update(tags=[1])),
                         "field 'tags': \\[1\\] is not a list of strings"),
    "unknown field": (lambda p: _edit(p, lambda d: d["scores"][2].update(colour="red")),
                      r"scores\[2\] .*unknown field 'colour'"),
    "record not an object": (lambda p: _edit(p, lambda d: d["bases"].append("org/base")),
                             r"bases\[1\]: a JSON object was expected"),
    "config missing": (lambda p: _edit(p, lambda d: d["configs"].pop("ft1")),
                       "no config_json, and its config_hash 'ft1' is not under 'configs'"),
    "candidate of no base": (lambda p: _edit(p, lambda d: d["bases"].clear()),
                             r"candidates\[0\] .*its base org/base is not among the snapshot's bases"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_a_bad_snapshot_is_refused_and_changes_nothing(case, source, snapshot_path):
    spoil, message = BAD[case]
    spoil(snapshot_path)
    before = dump(source)
    with pytest.raises(SnapshotError, match=message) as caught:
        seed_store(source, snapshot_path)
    assert isinstance(caught.value, LeaderboardError)
    assert str(snapshot_path) in str(caught.value)
    assert dump(source) == before


# ------------------------------------------------------------------------------------- settings and entry points
def test_settings_name_the_bundled_snapshot_unless_told_otherwise(tmp_path):
    assert Settings().snapshot_path == DEFAULT_SNAPSHOT == Path(__file__).resolve().parents[3] / "data" / \
        "snapshot" / "study.json"
    assert Settings.from_env({}).snapshot_path == DEFAULT_SNAPSHOT
    assert Settings.from_env({"MRL_SNAPSHOT": "none"}).snapshot_path is None
    assert Settings.from_env({"MRL_SNAPSHOT": "None"}).snapshot_path is None
    assert Settings.from_env({"MRL_SNAPSHOT": str(tmp_path / "s.json")}).snapshot_path == tmp_path / "s.json"


def test_cli_seed_snapshot_prints_the_counts(snapshot_path, tmp_path, capsys):
    from data.__main__ import main

    db = tmp_path / "cli.db"
    assert main(["seed-snapshot", "--snapshot", str(snapshot_path), "--db", str(db)]) == 0
    assert "candidates +6 (0 already stored)" in capsys.readouterr().out
    assert main(["seed-snapshot", "--snapshot", str(snapshot_path), "--db", str(db)]) == 0
    assert "candidates +0 (6 already stored)" in capsys.readouterr().out
    assert main(["seed-snapshot", "--snapshot", str(tmp_path / "missing.json"), "--db", str(db)]) == 1
