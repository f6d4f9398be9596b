"""A personal ranking end to end: tiny real checkpoints on the local Hub, a crawled store whose general board ranks
them, a user's CSV through ``python -m scoring personal`` (the queue and a worker), and what the store keeps."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from data.crawler import crawl
from data.hub import HubClient
from data.records import JobStatus, Score
from data.store import Store
from data.user_data import Columns, read_upload
from service.personal import PersonalError, submit
from service.worker import Worker
from tests.helpers.tiny_models import learnable_csv, shared_root, tiny_family_hub

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
BASE = "tiny/bert-base"
PROBE = {"org/cand-0": 0.6, "org/cand-1": 0.8, "org/cand-2": 0.7}  # the general board's order: 1, 2, 0


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("personal")
    hub = tiny_family_hub(root, BASE, models=shared_root(tmp_path_factory))
    with hub:
        yield {"hub": hub, "root": root}


def scored_store(world, settings, db: Path):
    s = replace(settings, hub_endpoint=world["hub"].url, db_path=db, crawl_scorers=(), cache_dir=db.parent / "cache")
    store = Store(db)
    crawl(BASE, HubClient(s), store, s)
    store.add_scores([Score(repo_id=c.repo_id, revision=c.sha, scorer="linear_probe", metric="probe_accuracy",
                            value=PROBE[c.repo_id], config_hash="p", base_id=BASE) for c in store.candidates(BASE)])
    return s, store


def test_the_command_ranks_the_base_and_its_top_k_and_keeps_no_rows(world, settings, tmp_path):
    s, store = scored_store(world, settings, tmp_path / "lb.db")
    data = learnable_csv(tmp_path / "mine.csv")
    env = {**os.environ, "HF_ENDPOINT": world["hub"].url, "MRL_DB": str(s.db_path), "MRL_CACHE_DIR": str(s.cache_dir)}
    out = tmp_path / "ranking.json"
    done = subprocess.run([sys.executable, "-m", "scoring", "personal", "--base", BASE, "--data", str(data),
                           "--text-column", "sentence", "--label-column", "topic", "--top-k", "2", "--out", str(out)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(out.read_text())  # the exported JSON: the record's layout, versioned
    assert result["version"] == 1
    models = {m["repo_id"]: m for m in result["models"]}
    assert set(models) == {BASE, "org/cand-1", "org/cand-2"}  # the base and the general top 2
    # listed first on the general board, by probe: with no mean gain there it has no general rank
    assert models["org/cand-1"]["general_rank"] is None and models[BASE]["role"] == "base"
    assert sorted(m["combined_rank"] for m in result["models"]) == [1, 2, 3]
    for m in result["models"]:
        assert set(m["estimates"]) == {"cv_probe", "cv_knn", "logme"}
        for est in m["estimates"].values():
            assert est["status"] == "ok", est
        assert 0 <= m["estimates"]["cv_probe"]["value"] <= 1 and m["estimates"]["cv_probe"]["diagnostics"]["folds"] == 5
    assert "combined rank" in done.stdout.lower() and "org/cand-1" in done.stdout
    assert store.requests.personal_row_sets() == 0  # the rows went with the job
    (job,) = store.queue.jobs(scorer="personal")
    assert job.status is JobStatus.DONE
    assert list((s.cache_dir / "personal-features").rglob("*.pt")) == []  # the features went with the rows


def test_the_same_rows_again_read_the_cached_features_and_give_the_same_ranking(world, settings, tmp_path):
    s, store = scored_store(world, settings, tmp_path / "lb.db")
    s = replace(s, personal_keep_rows_s=60.0)  # a deployment that keeps rows (and features) a minute after a job
    data = read_upload(learnable_csv(tmp_path / "mine.csv", seed=1), Columns(text="sentence", label="topic"))
    results = []
    for _ in range(2):
        request = submit(store, s, base_id=BASE, data=data, top_k=3)
        Worker(store, s, scorers=["personal"]).run(once=True)
        results.append(store.requests.personal(request.id).result)
    first, second = ({m.repo_id: m for m in r.models} for r in results)
    assert first.keys() == second.keys() and len(first) == 4
    for repo, m in first.items():
        assert m.combined_rank == second[repo].combined_rank
        assert m.estimates["logme"].value == second[repo].estimates["logme"].value
        assert second[repo].feature_seconds < max(m.feature_seconds, 0.05)  # read from the cache
    cached = s.cache_dir / "personal-features" / data.data_hash
    assert len(list(cached.glob("*.pt"))) == 4 and store.requests.personal_row_sets() == 1
    store.requests.create_personal(base_id=BASE, data_hash="f" * 64, rows_json="{}", source="x", summary={}, top_k=0,
                          ttl_s=60, rows_max_s=60)  # any later write purges what is past its keep time
    with store._write() as conn:  # the minute is over
        conn.execute("UPDATE personal_rows SET keep_until = '2000-01-01T00:00:00+00:00' WHERE data_hash = ?",
                     (data.data_hash,))
    store.requests.purge_personal()
    from service.personal import drop_unkept_features

    assert drop_unkept_features(store, s.cache_dir) == 1 and not cached.exists()


def test_a_candidate_that_cannot_be_read_is_said_and_the_others_are_ranked(world, settings, tmp_path):
    s, store = scored_store(world, settings, tmp_path / "lb.db")
    data = read_upload(learnable_csv(tmp_path / "mine.csv"), Columns(text="sentence", label="topic"))
    request = submit(store, s, base_id=BASE, data=data, top_k=3)
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "config.json").write_text("{}")
    hub = HubClient(s)

    def snapshot(ref):
        return broken if ref.repo_id == "org/cand-0" else hub.snapshot(ref)

    Worker(store, s, scorers=["personal"], snapshot=snapshot).run(once=True)
    result = store.requests.personal(request.id).result
    bad = next(m for m in result.models if m.repo_id == "org/cand-0")
    assert "no safetensors" in bad.error and bad.combined_rank is None and result.models[-1] is bad
    assert sorted(m.combined_rank for m in result.models if m is not bad) == [1, 2, 3]
    assert len(store.requests.personal(request.id).progress) == 4


def local_copies(tmp_path_factory, folder: Path, names: dict[str, str]) -> dict[str, Path]:
    """Copies of the tiny candidates' checkpoints as a user's own folders: {folder name: source candidate}."""
    models = shared_root(tmp_path_factory)
    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    for name, source in names.items():
        out[name] = Path(shutil.copytree(models / source, folder / name))
    return out


def test_the_command_ranks_named_models_local_folders_with_the_base_and_lists_a_missing_id(
        world, settings, tmp_path, tmp_path_factory):
    s, store = scored_store(world, settings, tmp_path / "lb.db")
    mine = local_copies(tmp_path_factory, tmp_path / "mine", {"first": "cand-0", "second": "cand-2"})
    data = learnable_csv(tmp_path / "mine.csv")
    env = {**os.environ, "HF_ENDPOINT": world["hub"].url, "MRL_DB": str(s.db_path), "MRL_CACHE_DIR": str(s.cache_dir)}
    out = tmp_path / "ranking.json"
    names = f"{mine['first']},{mine['second']},ghost/no-such-model"
    done = subprocess.run([sys.executable, "-m", "scoring", "personal", "--base", BASE, "--data", str(data),
                           "--text-column", "sentence", "--label-column", "topic", "--models", names,
                           "--out", str(out)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Traceback" not in done.stdout and "4 models" in done.stdout
    models = {m["repo_id"]: m for m in json.loads(out.read_text())["models"]}
    assert set(models) == {BASE, str(mine["first"]), str(mine["second"]), "ghost/no-such-model"}
    ghost = models["ghost/no-such-model"]
    assert ghost["combined_rank"] is None and "no such model on the Hub" in ghost["error"]
    assert sorted(m["combined_rank"] for m in models.values() if m is not ghost) == [1, 2, 3]
    local = models[str(mine["first"])]
    assert local["source"] == "local" and local["role"] == "candidate"
    assert local["revision"] == hashlib.sha256((mine["first"] / "model.safetensors").read_bytes()).hexdigest()
    assert models[BASE]["role"] == "base" and models[BASE]["revision"] == store.get_base(BASE).sha


def test_with_no_hub_the_models_not_cached_are_said_before_queueing_and_listed_and_the_rest_ranked(
        world, settings, tmp_path, tmp_path_factory):
    s, store = scored_store(world, settings, tmp_path / "lb.db")
    offline = replace(s, hub_endpoint="http://127.0.0.1:9", models_dir=tmp_path / "models")  # nothing answers there
    local_copies(tmp_path_factory, offline.models_dir, {"first": "cand-0", "second": "cand-2"})
    data = read_upload(learnable_csv(tmp_path / "mine.csv"), Columns(text="sentence", label="topic"))
    request = submit(store, offline, base_id=BASE, data=data, models="./first, ./second\nghost/not-cached")
    assert request.summary["not_fetchable"] == {
        BASE: "not in this server's cache, and the Hub cannot be reached",
        "ghost/not-cached": "not in this server's cache, and the Hub cannot be reached"}
    for item in request.models:  # a web user's ./NAME is kept as the folder inside the models folder
        assert item["path"] is None or Path(item["path"]).parent == offline.models_dir.resolve()
    report = Worker(store, offline, scorers=["personal"]).run(once=True)
    assert report.done == 1
    result = store.requests.personal(request.id).result
    models = {m.repo_id: m for m in result.models}
    assert sorted(models) == sorted([BASE, "./first", "./second", "ghost/not-cached"])
    for name in (BASE, "ghost/not-cached"):
        assert models[name].combined_rank is None
        assert "the hub cannot be reached and this machine's cache does not hold it" in models[name].error.lower()
    assert sorted(models[n].combined_rank for n in ("./first", "./second")) == [1, 2]
    assert str(tmp_path) not in json.dumps(result.to_json())  # the folders' server paths are never in what a user reads


def test_a_request_that_leaves_fewer_than_two_models_is_refused_before_queueing_or_fails_in_a_sentence(
        world, settings, tmp_path, tmp_path_factory):
    s, store = scored_store(world, settings, tmp_path / "lb.db")
    offline = replace(s, hub_endpoint="http://127.0.0.1:9", models_dir=tmp_path / "models")
    mine = local_copies(tmp_path_factory, offline.models_dir, {"first": "cand-0", "second": "cand-2"})
    data = read_upload(learnable_csv(tmp_path / "mine.csv"), Columns(text="sentence", label="topic"))
    with pytest.raises(PersonalError, match=r"Only 1 of the 2 models can be fetched now .*tiny/bert-base: not in"):
        submit(store, offline, base_id=BASE, data=data, models="./first")
    assert store.queue.jobs(scorer="personal") == []
    request = submit(store, offline, base_id=BASE, data=data, models="./first,./second")
    (mine["second"] / "config.json").write_text('{"model_type": "no-such-architecture"}')  # broken after queueing
    Worker(store, offline, scorers=["personal"]).run(once=True)
    failed = store.requests.personal(request.id)
    assert failed.status is JobStatus.FAILED and failed.result is None
    assert failed.error == ("Only 1 of the 3 models could be scored, and a ranking needs two; each model's reason "
                            "is listed with it.")
    reasons = {p["repo_id"]: p["error"] for p in failed.progress}
    assert reasons["./first"] == "" and "cache does not hold it" in reasons[BASE]
    assert reasons["./second"] == ("Its files could not be read as a text encoder with safetensors weights "
                                   "(ValueError).")
    assert str(tmp_path) not in json.dumps(reasons)
