"""The crawler against a local Hub of thousands of models, with faults, updates and kill -9."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest

from data.crawler import crawl
from data.hub import HubClient
from data.local_hub import FaultPlan, LocalHub
from data.records import CandidateStatus, JobStatus
from data.store import Store
from tests.helpers.hub_population import (
    BASE_ID,
    LEGACY_ID,
    MAX_PARAMS,
    add_shape,
    build_population,
    shape_named,
)

pytestmark = pytest.mark.slow

N_FAMILY = 1100  # descendants-shaped models around the base
N_OTHER = 900  # finetunes of another base, which must not be found
FAULTS = FaultPlan(rate=0.1, kinds=("429", "500", "503", "slow", "truncated"), seed=7, retry_after_s=0,
                   slow_s=0.05)
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def population():
    hub = LocalHub(page_size=500)
    expected = build_population(hub, N_FAMILY)
    other = shape_named("other-base")
    for i in range(N_OTHER):
        add_shape(hub, other, f"bert-org{i % 11}/bert-finetune-{i:05d}", downloads=i)
    hub.start()
    yield hub, expected
    hub.stop()


def _settings(settings, hub: LocalHub, tmp_path: Path, name: str = "crawl.db"):
    return replace(settings, hub_endpoint=hub.url, db_path=tmp_path / name, max_params=MAX_PARAMS,
                   crawl_max_retries=10)


def _verdicts(store: Store) -> dict:
    return {c.repo_id: (c.status.value, c.skip_reason, c.kind, c.match) for c in store.candidates(BASE_ID)}


def _content(store: Store) -> tuple:
    """Everything a crawl decides, without wall-clock timestamps."""
    candidates = [replace(c, first_seen=None, updated_at=None) for c in store.candidates()]
    jobs = sorted((j.repo_id, j.revision, j.scorer, j.status.value) for j in store.queue.jobs())
    return candidates, jobs


def test_crawl_under_faults_finds_exactly_the_expected_set(population, settings, tmp_path):
    hub, expected = population
    assert len(hub.model_ids()) >= 2000 and len(expected) >= 1000
    s = _settings(settings, hub, tmp_path)
    store = Store(s.db_path)
    hub.set_faults(FAULTS)
    try:
        report = crawl(LEGACY_ID, HubClient(s), store, s)
    finally:
        hub.set_faults(None)
    assert sum(1 for r in hub.requests if r.fault) > 50, "the fault plan must really have fired"
    assert report.failed == {}
    assert store.get_base(LEGACY_ID).repo_id == BASE_ID

    got = _verdicts(store)
    want = {repo: (e.status, e.skip_reason, e.kind, e.match) for repo, e in expected.items()}
    assert got == want
    candidates = store.candidates(BASE_ID)
    assert len(candidates) == len({c.repo_id for c in candidates})
    assert all(c.sha == hub.sha_of(c.repo_id) for c in candidates)
    ok = [c for c in candidates if c.status is CandidateStatus.OK]
    assert report.candidates == len(ok) and report.new == len(expected) and report.found == len(expected)
    assert sorted((j.repo_id, j.revision) for j in store.queue.jobs(JobStatus.PENDING)) == sorted(
        (c.repo_id, c.sha) for c in ok for _ in s.crawl_scorers
    )

    # A second crawl: zero per-model requests for unchanged models, nothing changes.
    before = _content(store)
    hub.reset_requests()
    again = crawl(BASE_ID, HubClient(s), store, s)
    per_model = hub.model_requests()
    assert {repo: n for repo, n in per_model.items() if repo != BASE_ID} == {}
    assert again.unchanged == len(expected) and again.new == again.updated == 0
    assert _content(store) == before


def test_recrawl_picks_up_new_and_updated_models_only(population, settings, tmp_path):
    hub, expected = population
    s = _settings(settings, hub, tmp_path)
    store = Store(s.db_path)
    crawl(BASE_ID, HubClient(s), store, s)
    tagged = shape_named("tagged")
    updated = sorted(r for r in expected if r.startswith("tagged-org"))[:5]
    old_shas = {r: hub.sha_of(r) for r in updated}
    new = [f"fresh-org/fresh-model-{i}" for i in range(5)]
    for repo_id in updated + new:
        add_shape(hub, tagged, repo_id, downloads=123)

    hub.reset_requests()
    report = crawl(BASE_ID, HubClient(s), store, s)
    touched = {repo for repo in hub.model_requests() if repo != BASE_ID}
    assert touched == set(updated + new)
    assert (report.new, report.updated, report.unchanged) == (5, 5, len(expected) - 5)
    for repo_id in updated:
        assert store.get_candidate(repo_id).sha == hub.sha_of(repo_id) != old_shas[repo_id]
        statuses = {(j.revision, j.status) for j in store.queue.jobs(repo_id=repo_id)}
        assert (old_shas[repo_id], JobStatus.CANCELLED) in statuses
        assert (hub.sha_of(repo_id), JobStatus.PENDING) in statuses
    for repo_id in new:
        assert store.get_candidate(repo_id).status is CandidateStatus.OK
    for repo_id in new:  # the module's hub now holds these too
        expected[repo_id] = tagged.expected


def test_kill_9_then_rerun_equals_an_uninterrupted_crawl(population, settings, tmp_path):
    hub, _ = population
    s = _settings(settings, hub, tmp_path, "reference.db")
    reference = Store(s.db_path)
    crawl(BASE_ID, HubClient(s), reference, s)

    db = tmp_path / "killed.db"
    env = {**os.environ, "MRL_MAX_PARAMS": str(MAX_PARAMS), "MRL_CRAWL_BACKOFF_BASE_S": "0.01",
           "MRL_CRAWL_CONCURRENCY": "4", "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-m", "data", "crawl", "--base", BASE_ID, "--db", str(db), "--endpoint", hub.url, "--quiet"]
    rng = random.Random(3)
    hub.set_faults(replace(FAULTS, kinds=("slow",), rate=0.3))  # slow enough that kills land mid-crawl
    left_after_kill = []  # candidates stored when each kill landed
    try:
        for _ in range(3):
            proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            time.sleep(rng.uniform(1.5, 3.0))
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
                proc.wait()
                left_after_kill.append(len(Store(db).candidates()) if db.exists() else 0)
            proc.wait()
        final = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False)
    finally:
        hub.set_faults(None)
    assert final.returncode == 0, final.stderr
    total = len(reference.candidates())
    assert any(0 < n < total for n in left_after_kill), f"no kill landed mid-crawl: {left_after_kill} of {total}"
    assert _content(Store(db)) == _content(reference)
    assert Store(db).integrity_check() == "ok"


def test_a_token_opens_gated_and_private_models(settings, tmp_path):
    """Crawled first without a token, then with one: gated models are checked again, private ones found."""
    with LocalHub() as hub:
        expected = build_population(hub, 100)
        hub.tokens = {"hf_team"}
        anonymous = _settings(settings, hub, tmp_path)
        store = Store(anonymous.db_path)
        crawl(BASE_ID, HubClient(anonymous), store, anonymous)
        s = replace(anonymous, hub_token="hf_team")
        report = crawl(BASE_ID, HubClient(s), store, s)
    got = _verdicts(store)
    gated = [r for r, e in expected.items() if e.skip_reason is not None and e.skip_reason.value == "gated"]
    private = [c.repo_id for c in store.candidates() if c.repo_id.startswith("private-")]
    assert gated and all(got[r][0] == "ok" for r in gated)
    assert len(private) == 2 and all(got[r][0] == "ok" for r in private)
    assert report.failed == {} and report.found == len(expected) + len(private)
    assert (report.new, report.updated) == (len(private), len(gated))
