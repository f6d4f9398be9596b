"""Crawl a local Hub holding real tiny checkpoints, through the CLI, then load a snapshot at its pinned sha."""

from __future__ import annotations

import json

import pytest
import torch

from data.__main__ import main
from data.hub import HubClient
from data.local_hub import LocalHub
from data.records import CandidateStatus, Match, SkipReason
from data.store import Store
from tests.helpers.tiny_models import build_candidate, shared_root, tiny_checkpoints

pytestmark = pytest.mark.slow

BASE = "tiny/bert-base"


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny")
    ckpt = tiny_checkpoints(shared_root(tmp_path_factory) / "tiny")
    second = build_candidate(ckpt["bert-base"], root / "bert-candidate-2", seed=1, task="first_word")
    hub = LocalHub()
    hub.add_files_from_dir(BASE, ckpt["bert-base"], tags=("transformers", "bert", "fill-mask"), downloads=1000)
    finetune_of = ("transformers", "text-classification", f"base_model:{BASE}", f"base_model:finetune:{BASE}")
    hub.add_files_from_dir("alice/bert-parity", ckpt["bert-candidate"], tags=("bert", *finetune_of), downloads=50,
                           card_data={"license": "mit"})
    hub.add_files_from_dir("bob/bert-first-word", second, tags=("transformers", "bert"), downloads=20)
    hub.add_files_from_dir("carol/mislabelled", ckpt["roberta-candidate"], tags=("roberta", *finetune_of))
    hub.add_files_from_dir("tiny/roberta-base", ckpt["roberta-base"], tags=("transformers", "roberta"))
    with hub:
        yield hub, ckpt


def test_cli_crawl_then_candidates_then_load_snapshot(hub, settings, tmp_path, capsys):
    hub, ckpt = hub
    db = tmp_path / "lb.db"
    assert main(["crawl", "--base", BASE, "--db", str(db), "--endpoint", hub.url, "--quiet"]) == 0
    summary = capsys.readouterr().out
    assert f"{BASE}: found 3 | new 3 | updated 0 | unchanged 0 | candidates 2 | skipped 1" in summary

    assert main(["candidates", "--base", BASE, "--format", "json", "--db", str(db)]) == 0
    rows = {r["repo_id"]: r for r in map(json.loads, capsys.readouterr().out.splitlines())}
    assert set(rows) == {"alice/bert-parity", "bob/bert-first-word", "carol/mislabelled"}
    assert rows["alice/bert-parity"]["status"] == "ok" and rows["alice/bert-parity"]["match"] == "tag"
    assert rows["alice/bert-parity"]["license"] == "mit" and rows["alice/bert-parity"]["sha"] == hub.sha_of(
        "alice/bert-parity")
    assert rows["bob/bert-first-word"]["match"] == "config" and rows["bob/bert-first-word"]["status"] == "ok"
    assert rows["carol/mislabelled"]["skip_reason"] == SkipReason.ARCHITECTURE_MISMATCH.value

    assert main(["candidates", "--db", str(db), "--base", BASE, "--status", "ok"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("repo_id,sha,status,skip_reason") and len(lines) == 3

    # The scorer's path: a snapshot at the pinned sha loads with transformers, safetensors only.
    from transformers import AutoModelForSequenceClassification

    candidate = Store(db).get_candidate("alice/bert-parity")
    assert candidate.status is CandidateStatus.OK and candidate.match is Match.TAG
    hub.add_files_from_dir("alice/bert-parity", ckpt["bert-base"])  # the repo moves on; the pin must hold
    local = HubClient(settings.with_overrides(hub_endpoint=hub.url)).snapshot(candidate.ref)
    loaded = AutoModelForSequenceClassification.from_pretrained(local, use_safetensors=True)
    original = AutoModelForSequenceClassification.from_pretrained(ckpt["bert-candidate"], use_safetensors=True)
    for (name, a), (_, b) in zip(loaded.state_dict().items(), original.state_dict().items(), strict=True):
        assert torch.equal(a, b), name


def test_cli_reports_unknown_base_and_bad_arguments(hub, tmp_path, capsys):
    hub, _ = hub
    db = tmp_path / "lb.db"
    assert main(["crawl", "--db", str(db), "--endpoint", hub.url, "--base", "nobody/nothing", "--quiet"]) == 1
    assert main(["candidates", "--db", str(db), "--base", "nobody/nothing"]) == 1
    assert "has not been crawled" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        main(["crawl", "--db", str(db), "--base", BASE, "--limit", "0"])
    assert exc.value.code == 2
