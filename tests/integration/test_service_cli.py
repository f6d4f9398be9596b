"""The README's service commands in order: crawl, submit, jobs, work --once, then the leaderboard has the scores."""

from __future__ import annotations

import pandas as pd
import pytest

from data.__main__ import main as data_main
from data.local_hub import LocalHub
from data.records import JobStatus
from data.store import Store
from scoring.__main__ import main as scoring_main
from tests.helpers.boards import load_leaderboard
from tests.helpers.tiny_models import build_candidate, shared_root, tiny_checkpoints
from tests.helpers.tiny_suite import write_reference_text

pytestmark = pytest.mark.slow

BASE = "tiny/bert-base"
TAGS = ("transformers", "bert", f"base_model:{BASE}", f"base_model:finetune:{BASE}")


def test_crawl_submit_work_then_the_leaderboard_shows_free_energy(tmp_path, tmp_path_factory, monkeypatch, capsys):
    ckpt = tiny_checkpoints(shared_root(tmp_path_factory) / "tiny")
    hub = LocalHub()
    hub.add_files_from_dir(BASE, ckpt["bert-base"], tags=("transformers", "bert"))
    hub.add_files_from_dir("org/cand", build_candidate(ckpt["bert-base"], tmp_path / "cand", seed=1), tags=TAGS)
    hub.add_files_from_dir("eve/late", build_candidate(ckpt["bert-base"], tmp_path / "late", seed=2),
                           tags=("transformers", "bert"))  # no base_model tag: found by its config, or submitted
    db = tmp_path / "lb.db"
    monkeypatch.setenv("MRL_CACHE_DIR", str(tmp_path / "cache"))
    # The free-energy scorer's "local" reference corpus (512 + 512 sequences of 62 tokens: splits A and B),
    # instead of ../shared/datasets.
    data = write_reference_text(tmp_path / "data", n_rows=8000)
    with hub:
        common = ["--db", str(db), "--endpoint", hub.url]
        assert data_main(["crawl", "--base", BASE, "--quiet", *common]) == 0
        assert data_main(["submit", "org/cand", *common]) == 0
        assert "already queued or scored" in capsys.readouterr().out
        assert data_main(["submit", "../etc/passwd", *common]) == 1
        assert "not a Hub model id" in capsys.readouterr().err
        assert data_main(["jobs", "--status", "pending", "--db", str(db)]) == 0
        listed = capsys.readouterr().out.splitlines()
        assert len(listed) == len(Store(db).queue.jobs(JobStatus.PENDING)) > 0
        assert scoring_main(["work", "--once", "--scorers", "free_energy", "--local-root", str(data), "--quiet",
                             *common]) == 0
        assert "done, 0 failed" in capsys.readouterr().out
    store = Store(db)
    assert {j.status for j in store.queue.jobs(scorer="free_energy")} == {JobStatus.DONE}
    rows = load_leaderboard(store, BASE).to_frame().set_index("repo_id")
    for repo in (BASE, "org/cand"):  # shown: a value when the estimate passed its gate, else "unconverged"
        fe = store.scores(repo_id=repo, scorer="free_energy")
        assert {s.metric for s in fe} == {"free_energy", "llc_mean", "llc_std", "init_loss", "weight_distance"}
        passed = all(s.status == "ok" for s in fe)
        assert (rows.loc[repo, "free_energy_status"] == "") == passed
        assert pd.notna(rows.loc[repo, "free_energy"]) == passed and (rows["llc_std"].dropna() >= 0).all()
