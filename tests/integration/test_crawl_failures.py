"""The crawl's failure path through its CLI: a model the local Hub keeps answering 500 for is retried, listed on
stderr, not recorded, and tried again (and recorded) by the next crawl; the exit code says which crawl failed."""

from __future__ import annotations

from pathlib import Path

import pytest

from data.__main__ import main
from data.local_hub import FaultPlan, LocalHub
from data.records import CandidateStatus
from data.settings import Settings
from data.store import Store
from tests.helpers.hub_population import BASE_ID, MAX_PARAMS, add_base, add_shape, shape_named

VICTIM = "flaky-org/always-500"  # no other id starts with it: the fault plan's path prefixes hit it alone
OTHERS = [f"tagged-org{i}/tagged-model-{i:05d}" for i in range(5)]
ATTEMPTS = Settings().crawl_max_retries + 1  # the CLI's client: the default retry budget


@pytest.fixture
def hub(monkeypatch):
    monkeypatch.setenv("MRL_MAX_PARAMS", str(MAX_PARAMS))
    monkeypatch.setenv("MRL_CRAWL_BACKOFF_BASE_S", "0.001")  # the real retry loop, with short waits
    with LocalHub() as hub:
        add_base(hub)
        tagged = shape_named("tagged")
        for i, repo_id in enumerate([*OTHERS, VICTIM]):
            add_shape(hub, tagged, repo_id, downloads=1000 + i)
        yield hub


def crawl_cli(hub: LocalHub, db: Path, capsys) -> tuple[int, str, str]:
    code = main(["crawl", "--base", BASE_ID, "--db", str(db), "--endpoint", hub.url, "--quiet"])
    out, err = capsys.readouterr()
    return code, out, err


def test_a_model_failing_after_all_retries_is_listed_not_stored_and_recrawled(hub, tmp_path, capsys):
    db = tmp_path / "crawl.db"
    hub.set_faults(FaultPlan(rate=1.0, kinds=("500",), only_paths=(f"/{VICTIM}/", f"/api/models/{VICTIM}")))
    code, out, err = crawl_cli(hub, db, capsys)

    assert code == 1
    failed_lines = [line for line in err.splitlines() if line.startswith("failed: ")]
    assert len(failed_lines) == 1 and failed_lines[0].startswith(f"failed: {VICTIM}: ")
    assert f"no usable answer after {ATTEMPTS} attempts (HTTP 500)" in failed_lines[0]
    assert "| failed 1 |" in out and "| candidates 5 |" in out
    victim_requests = [r for r in hub.requests if r.repo_id == VICTIM]
    assert len(victim_requests) == ATTEMPTS and {(r.status, r.fault) for r in victim_requests} == {(500, "500")}
    store = Store(db)
    assert sorted(c.repo_id for c in store.candidates(BASE_ID)) == sorted(OTHERS)
    assert store.get_candidate(VICTIM) is None and store.queue.jobs(repo_id=VICTIM) == []
    assert all(c.status is CandidateStatus.OK for c in store.candidates(BASE_ID))

    hub.set_faults(None)
    hub.reset_requests()
    code, out, err = crawl_cli(hub, db, capsys)

    assert code == 0 and "failed: " not in err
    assert "| new 1 |" in out and "| unchanged 5 |" in out and "| failed 0 |" in out
    assert {repo for repo in hub.model_requests() if repo != BASE_ID} == {VICTIM}  # the others cost nothing
    victim = store.get_candidate(VICTIM)
    assert victim is not None and victim.status is CandidateStatus.OK and victim.sha == hub.sha_of(VICTIM)
    assert sorted(j.scorer for j in store.queue.jobs(repo_id=VICTIM)) == sorted(Settings().crawl_scorers)


def test_a_hub_that_recovers_within_the_retries_fails_nothing(hub, tmp_path, capsys):
    """The same fault for fewer requests than the retry budget: retried through, exit 0 (the plan can fire)."""
    hub.set_faults(FaultPlan(rate=0.5, kinds=("500",), seed=3, only_paths=(f"/{VICTIM}/",)))
    code, out, err = crawl_cli(hub, tmp_path / "crawl.db", capsys)
    faulted = [r for r in hub.requests if r.repo_id == VICTIM and r.fault == "500"]
    assert 0 < len(faulted) < ATTEMPTS
    assert code == 0 and "failed: " not in err and "| failed 0 |" in out
    assert Store(tmp_path / "crawl.db").get_candidate(VICTIM).status is CandidateStatus.OK


def test_a_base_the_hub_cannot_answer_for_exits_1_and_records_nothing(hub, tmp_path, capsys):
    hub.set_faults(FaultPlan(rate=1.0, kinds=("503",), only_paths=(f"/api/models/{BASE_ID}",)))
    code, out, err = crawl_cli(hub, tmp_path / "crawl.db", capsys)
    assert code == 1 and out == ""
    store = Store(tmp_path / "crawl.db")
    assert store.bases() == [] and store.candidates() == []
