"""python -m scoring study in miniature: sources trained, served, crawled, every scorer run; resumable."""

from __future__ import annotations

import pytest

from data.metrics import RERUN_STRIDE
from data.records import CandidateStatus, JobStatus
from data.store import Store
from scoring.study import STAGES, best_candidates, run_study
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
    assert {j.status for j in store.jobs()} == {JobStatus.DONE}
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
