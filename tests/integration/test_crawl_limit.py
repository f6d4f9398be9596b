"""``python -m data crawl --limit N`` ("consider at most N models, by downloads") through its CLI: the N most
downloaded descendants are recorded and nothing else; the same limit again costs no per-model request; a larger
limit, then none, add exactly the models the earlier crawls left out, ending where an unlimited crawl ends."""

from __future__ import annotations

from pathlib import Path

import pytest

from data.__main__ import main
from data.local_hub import LocalHub
from data.records import CandidateStatus
from data.store import Store
from tests.helpers.hub_population import BASE_ID, MAX_PARAMS, build_population


@pytest.fixture(scope="module")
def population():
    with LocalHub(page_size=7) as hub:  # several pages per listing, so the limit is not one page's size
        expected = build_population(hub, 60)
        yield hub, expected


@pytest.fixture(autouse=True)
def _env(monkeypatch):
    monkeypatch.setenv("MRL_MAX_PARAMS", str(MAX_PARAMS))
    monkeypatch.setenv("MRL_CRAWL_BACKOFF_BASE_S", "0.001")


def crawl_cli(hub: LocalHub, db: Path, capsys, *limit: str) -> str:
    code = main(["crawl", "--base", BASE_ID, "--db", str(db), "--endpoint", hub.url, "--quiet", *limit])
    out, err = capsys.readouterr()
    assert code == 0, err
    return out


def by_downloads(hub: LocalHub, expected: dict) -> list[str]:
    """The models a crawl records, most downloaded first (ties by id)."""
    from huggingface_hub import HfApi

    downloads = {m.id: m.downloads for m in HfApi(endpoint=hub.url).list_models(expand=["downloads"])}
    order = sorted(expected, key=lambda repo: (-downloads[repo], repo))
    assert len({downloads[r] for r in order[:26]}) == 26, "ties at the limits would make the top N ambiguous"
    return order


def verdicts(store: Store) -> dict:
    return {c.repo_id: (c.sha, c.status, c.skip_reason, c.kind, c.match) for c in store.candidates(BASE_ID)}


def test_limit_records_the_n_most_downloaded_and_later_crawls_continue(population, tmp_path, capsys):
    hub, expected = population
    order = by_downloads(hub, expected)
    assert len(order) > 40
    db = tmp_path / "limited.db"

    out = crawl_cli(hub, db, capsys, "--limit", "10")
    store = Store(db)
    assert set(verdicts(store)) == set(order[:10])
    assert "found 10 | new 10 | updated 0 | unchanged 0" in out
    ok = {c.repo_id for c in store.candidates(BASE_ID, CandidateStatus.OK)}
    assert {j.repo_id for j in store.queue.jobs()} == ok and ok  # jobs for the recorded candidates only

    hub.reset_requests()
    out = crawl_cli(hub, db, capsys, "--limit", "10")
    assert "found 10 | new 0 | updated 0 | unchanged 10" in out
    assert {repo for repo in hub.model_requests() if repo != BASE_ID} == set()
    assert set(verdicts(store)) == set(order[:10])

    hub.reset_requests()
    out = crawl_cli(hub, db, capsys, "--limit", "25")
    assert "found 25 | new 15 | updated 0 | unchanged 10" in out
    assert set(verdicts(store)) == set(order[:25])
    assert {repo for repo in hub.model_requests() if repo != BASE_ID} <= set(order[10:25])

    out = crawl_cli(hub, db, capsys)
    assert f"found {len(order)} | new {len(order) - 25} | updated 0 | unchanged 25" in out

    reference = tmp_path / "unlimited.db"
    crawl_cli(hub, reference, capsys)
    assert verdicts(store) == verdicts(Store(reference))
    assert sorted((j.repo_id, j.revision, j.scorer) for j in store.queue.jobs()) == sorted(
        (j.repo_id, j.revision, j.scorer) for j in Store(reference).queue.jobs())
    want = {repo: (e.status, e.skip_reason, e.kind, e.match) for repo, e in expected.items()}
    assert {repo: (s.value, r, k, m) for repo, (_, s, r, k, m) in verdicts(store).items()} == want


def test_a_limited_crawl_keeps_what_a_larger_one_recorded(population, tmp_path, capsys):
    hub, expected = population
    order = by_downloads(hub, expected)
    db = tmp_path / "shrunk.db"
    crawl_cli(hub, db, capsys, "--limit", "20")
    before = verdicts(Store(db))
    out = crawl_cli(hub, db, capsys, "--limit", "5")
    assert "found 5 | new 0 | updated 0 | unchanged 5" in out
    assert verdicts(Store(db)) == before and set(before) == set(order[:20])


@pytest.mark.parametrize("limit", ["0", "-1"])
def test_a_limit_below_one_is_a_usage_error(population, tmp_path, capsys, limit):
    hub, _ = population
    with pytest.raises(SystemExit) as exit_info:
        main(["crawl", "--base", BASE_ID, "--db", str(tmp_path / "x.db"), "--endpoint", hub.url, "--limit", limit])
    assert exit_info.value.code == 2 and f"argument --limit: must be positive, not {limit}" in capsys.readouterr().err
    assert not (tmp_path / "x.db").exists()
