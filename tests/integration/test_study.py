"""python -m scoring study in miniature: sources trained, served, crawled, every scorer run; resumable."""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace

import pytest

from data.errors import ScoringError
from data.metrics import RERUN_STRIDE
from data.records import CandidateStatus, JobStatus
from data.snapshot import read_snapshot
from data.store import Store
from service.study import STAGES, best_candidates, prepare_repos, restore_study, run_study
from tests.helpers.tiny_study import BASE, tiny_study_config, tiny_study_world

pytestmark = pytest.mark.slow


def score_keys(store: Store) -> dict[tuple, float]:
    return {(s.repo_id, s.revision, s.scorer, s.metric, s.target, s.seed, s.config_hash): s.value
            for s in store.scores()}


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    root = tmp_path_factory.mktemp("study")
    world = tiny_study_world(root)
    cfg = tiny_study_config(world.corpus)
    report = run_study(cfg, root / "out", world.base_dir, local_root=world.data_root)
    return {"root": root, "world": world, "cfg": cfg, "report": report}


def test_the_study_trains_serves_crawls_and_scores_every_candidate(finished):
    cfg, report = finished["cfg"], finished["report"]
    store = Store(finished["root"] / "out" / "study.db")
    candidates = store.candidates(BASE, CandidateStatus.OK)
    assert sorted(c.repo_id for c in candidates) == ["study/bert-base-cats", "study/bert-base-dogs"]
    assert all("dataset:" + c.repo_id.rsplit("-", 1)[1] in c.tags for c in candidates)
    assert report.trained == 2 and report.jobs_failed == 0
    assert {j.status for j in store.queue.jobs()} == {JobStatus.DONE}
    by_scorer = {}
    for s in store.scores():
        by_scorer.setdefault(s.scorer, set()).add(s.repo_id)
    ids = {c.repo_id for c in candidates}
    assert ids <= by_scorer["linear_probe"] and ids <= by_scorer["free_energy"] and ids <= by_scorer["intertraining"]
    assert by_scorer["knn"] == ids | {BASE}  # the validity baseline: every model on every target
    assert {(s.repo_id, s.target) for s in store.scores(scorer="knn")} == {
        (m, t) for m in ids | {BASE} for t in ("cats", "dogs")}
    [(best, _)] = best_candidates(store, BASE, 1)
    assert by_scorer["sample_efficiency"] == {best, BASE}
    guided = [s for s in store.scores(scorer="intertraining") if '"dropout":"guided"' in s.config_json]
    assert {s.repo_id for s in guided} == {best, BASE}
    assert {s.target for s in guided} == {"cats", "dogs"}
    base_runs = {(s.target, s.seed % RERUN_STRIDE) for s in store.scores(repo_id=BASE, scorer="intertraining")
                 if '"dropout":"standard"' in s.config_json}  # a failed run's reruns stay in its seed slot
    assert base_runs == {(t, seed) for t in ("cats", "dogs") for seed in range(cfg.base_seeds)}
    assert set(report.timings) <= set(STAGES) and report.total_s > 0


def test_a_second_run_redoes_nothing(finished):
    root, world, cfg = finished["root"], finished["world"], finished["cfg"]
    store = Store(root / "out" / "study.db")
    before = score_keys(store)
    again = run_study(cfg, root / "out", world.base_dir, local_root=world.data_root)
    assert again.trained == 0 and again.jobs_done == 0
    assert score_keys(store) == before


def test_a_study_stops_after_the_stage_it_is_told(tmp_path):
    world = tiny_study_world(tmp_path)
    cfg = tiny_study_config(world.corpus)
    report = run_study(cfg, tmp_path / "out", world.base_dir, local_root=world.data_root, until="knn",
                       snapshot_path=tmp_path / "snap.json")
    store = Store(tmp_path / "out" / "study.db")
    assert {s.scorer for s in store.scores()} == {"linear_probe", "free_energy", "knn"}
    assert report.snapshot is None and not (tmp_path / "snap.json").exists()
    with pytest.raises(ValueError, match="until must be one of"):
        run_study(cfg, tmp_path / "out", world.base_dir, local_root=world.data_root, until="sources")


def test_the_snapshot_keeps_every_sources_check_and_every_checkpoints_sha256(finished, tmp_path):
    root, world, cfg = finished["root"], finished["world"], finished["cfg"]
    path = tmp_path / "snap.json"
    run_study(cfg, root / "out", world.base_dir, local_root=world.data_root, snapshot_path=path)
    meta = read_snapshot(path).meta
    checks = {c["source"]: c for c in meta["source_checks"]}
    assert set(checks) == {"cats", "dogs"} and {c["status"] for c in checks.values()} == {"ok"}
    hub = root / "out" / "hub"
    for c in checks.values():
        weights = (hub / c["repo_id"] / "model.safetensors").read_bytes()
        assert c["sha256"] == hashlib.sha256(weights).hexdigest() == meta["checkpoints"][c["repo_id"]]
        assert set(c["removed"]) == {"cats", "dogs"} and c["remaining_overlap"] == 0
        assert c["test_score"] > c["majority_rate"] + 0.02
    assert set(meta["checkpoints"]) == {BASE, *(c["repo_id"] for c in checks.values())}
    assert set(meta["target_overlap"]) == {"cats|dogs", "dogs|cats"}


def test_a_lost_study_is_restored_from_its_snapshot_and_one_scorer_redone(finished, tmp_path):
    root, world, cfg = finished["root"], finished["world"], finished["cfg"]
    path = tmp_path / "snap.json"
    run_study(cfg, root / "out", world.base_dir, local_root=world.data_root, snapshot_path=path)
    snapshot = read_snapshot(path)
    out = tmp_path / "restored"
    restored = restore_study(cfg, out, world.base_dir, path, local_root=world.data_root)
    scored = {(s.repo_id, s.revision) for s in snapshot.scores if s.scorer == "free_energy"}
    assert restored.queued == len(scored) == 3 and restored.rebased == ()
    store = Store(out / "study.db")
    assert score_keys(store) == {(s.repo_id, s.revision, s.scorer, s.metric, s.target, s.seed, s.config_hash): s.value
                                 for s in snapshot.scores}
    report = run_study(cfg, out, world.base_dir, local_root=world.data_root, only="free_energy",
                       snapshot_path=tmp_path / "again.json")
    assert report.trained == 0 and report.jobs_done == 3 and report.jobs_failed == 0
    assert {(j.repo_id, j.revision, j.scorer) for j in store.queue.jobs()} == {(*k, "free_energy") for k in scored}
    assert {(c.repo_id, c.sha) for c in store.candidates(BASE)} == {(c.repo_id, c.sha) for c in snapshot.candidates}
    again = read_snapshot(tmp_path / "again.json")
    assert again.meta["checkpoints"] == snapshot.meta["checkpoints"]
    assert again.meta["timings_s"]["intertraining"] == snapshot.meta["timings_s"]["intertraining"]
    with pytest.raises(ScoringError, match="already holds a study"):
        restore_study(cfg, out, world.base_dir, path, local_root=world.data_root)


def test_a_study_whose_rebuilt_weights_differ_from_its_snapshot_is_not_restored(finished, tmp_path):
    root, world, cfg = finished["root"], finished["world"], finished["cfg"]
    path = tmp_path / "snap.json"
    run_study(cfg, root / "out", world.base_dir, local_root=world.data_root, snapshot_path=path)
    data = json.loads(path.read_text())
    data["meta"]["checkpoints"]["study/bert-base-cats"] = "0" * 64
    path.write_text(json.dumps(data))
    with pytest.raises(ScoringError, match="study/bert-base-cats differ from the snapshot"):
        restore_study(cfg, tmp_path / "restored", world.base_dir, path, local_root=world.data_root)
    assert not (tmp_path / "restored" / "study.db").exists()


def _failing_source_config(world):
    cfg = tiny_study_config(world.corpus)
    return replace(cfg, sources="cats", source_finetune=replace(cfg.source_finetune, lr=1e-5, max_epochs=1,
                                                                max_train_examples=32))


def test_a_source_that_did_not_learn_its_task_is_rejected_and_never_served(tmp_path):
    """At lr 1e-5 for a few steps the tiny base predicts one class on its source task, and with no fallback recipe
    the source is kept under rejected/ with its check and reason, and is not a candidate."""
    world = tiny_study_world(tmp_path)
    cfg = _failing_source_config(world)
    hub = tmp_path / "out" / "hub"
    sources, trained = prepare_repos(cfg, world.base_dir, hub, device="cpu", local_root=world.data_root)
    assert (sources, trained) == ({}, 1)
    rejected = tmp_path / "out" / "rejected" / cfg.candidate_id("cats")
    assert (rejected / "model.safetensors").is_file() and not (hub / cfg.candidate_id("cats")).exists()
    check = json.loads((rejected / "training.json").read_text())["check"]
    assert check["status"] == "rejected" and "majority-class rate" in check["reason"]
    assert prepare_repos(cfg, world.base_dir, hub, device="cpu", local_root=world.data_root) == ({}, 0)


def test_a_source_that_fails_its_first_recipe_is_trained_once_more_with_the_fallback(tmp_path):
    """The failing recipe, then the fallback (the tiny protocol, which learns): the source is a candidate, and its
    check keeps the first attempt's reason. A study killed between the two attempts runs only the fallback."""
    world = tiny_study_world(tmp_path)
    failing = _failing_source_config(world)
    hub = tmp_path / "out" / "hub"
    prepare_repos(failing, world.base_dir, hub, device="cpu", local_root=world.data_root)  # first attempt only
    cfg = replace(failing, source_fallback=tiny_study_config(world.corpus).source_finetune)
    sources, trained = prepare_repos(cfg, world.base_dir, hub, device="cpu", local_root=world.data_root)
    assert sources == {cfg.candidate_id("cats"): "cats"} and trained == 1
    check = json.loads((hub / cfg.candidate_id("cats") / "training.json").read_text())["check"]
    assert check["status"] == "ok" and check["recipe"] == "fallback"
    assert "one class" in check["first_attempt"]["reason"] and check["first_attempt"]["train_rows"] == 32
    assert not (tmp_path / "out" / "rejected" / cfg.candidate_id("cats")).exists()
