"""The names a personal ranking takes (service/personal_models.py): Hub ids, local folders (anywhere from the
command line, only inside the models folder from the app), a study's checkpoints, and what can be fetched offline."""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from pathlib import Path

import pytest
from huggingface_hub import snapshot_download

from data.errors import ScoringError
from data.local_hub import LocalHub
from service.personal_models import (
    ModelNameError,
    NamedModel,
    cached_commit,
    named_models,
    not_fetchable,
    split_names,
    study_folder,
    weights_digest,
)

UNREACHABLE = "not in this server's cache, and the Hub cannot be reached"


def checkpoint(folder: Path, weights: bytes = b"weights") -> Path:
    folder.mkdir(parents=True)
    (folder / "config.json").write_text('{"model_type": "bert"}')
    (folder / "model.safetensors").write_bytes(weights)
    return folder


@pytest.fixture
def models_dir(tmp_path) -> Path:
    root = tmp_path / "models"
    checkpoint(root / "mine")
    checkpoint(root / "org" / "nested")
    return root


def test_names_split_on_commas_semicolons_and_lines_each_once():
    assert split_names(" a/b, ./c ;\n\n a/b ,d ") == ["a/b", "./c", "d"]
    assert split_names(["x", " ", "x", "y"]) == ["x", "y"]


def test_hub_ids_keep_their_revision_and_bad_ids_are_refused_by_name():
    got = named_models("org/model, org/model-2@v1.0, bert-base-uncased", local_root=None, any_path=False)
    assert got == [NamedModel("org/model"), NamedModel("org/model-2", revision="v1.0"), NamedModel("bert-base-uncased")]
    for bad in ("org/../x", "a/b/c", "org/name@", "<script>", "-lead/x"):
        with pytest.raises(ModelNameError, match="neither a Hub model id"):
            named_models(bad, local_root=None, any_path=False)


def test_the_app_takes_only_folders_inside_its_models_folder(models_dir, tmp_path):
    got = named_models("./mine, ./org/nested", local_root=models_dir, any_path=False)
    assert [m.path for m in got] == [str((models_dir / "mine").resolve()), str((models_dir / "org/nested").resolve())]
    assert [m.name for m in got] == ["./mine", "./org/nested"]  # what the ranking shows: no server path
    outside = checkpoint(tmp_path / "outside")
    (models_dir / "link").symlink_to(outside)
    refusals = {"../outside": "a local folder is written ./NAME", "./../outside": "a local folder is written ./NAME",
                str(outside): "a local folder is written ./NAME", "~/x": "a local folder is written ./NAME",
                "./link": "is not a folder inside this server's models folder", "./absent": "no such folder",
                "./org": "has no config.json"}
    for name, reason in refusals.items():
        with pytest.raises(ModelNameError, match=reason) as caught:
            named_models(name, local_root=models_dir, any_path=False)
        if str(tmp_path) not in name:  # a refusal never says where the server keeps files (only what was typed)
            assert str(tmp_path) not in str(caught.value)
    with pytest.raises(ModelNameError, match="takes no local folders"):
        named_models("./mine", local_root=None, any_path=False)


def test_the_command_line_takes_any_folder_and_refuses_one_without_safetensors(tmp_path, monkeypatch):
    mine = checkpoint(tmp_path / "anywhere" / "ckpt")
    monkeypatch.chdir(tmp_path)
    got = named_models(["./anywhere/ckpt", str(mine)], local_root=None, any_path=True)
    assert [m.path for m in got] == [str(mine.resolve())] * 2
    (mine / "model.safetensors").rename(mine / "pytorch_model.bin")
    with pytest.raises(ModelNameError, match="has no .safetensors weights"):
        named_models(str(mine), local_root=None, any_path=True)


def test_at_most_fifty_names():
    with pytest.raises(ModelNameError, match="at most 50"):
        named_models([f"org/m{i}" for i in range(51)], local_root=None, any_path=False)


def test_a_folder_revision_is_the_sha256_of_its_weights(tmp_path):
    folder = checkpoint(tmp_path / "ckpt", b"abc")
    assert weights_digest(folder) == hashlib.sha256(b"abc").hexdigest()


def test_a_study_checkpoint_is_its_folder_only_when_its_weights_are_the_snapshots(tmp_path, settings):
    snapshot = tmp_path / "study.json"
    digest = hashlib.sha256(b"trained").hexdigest()
    snapshot.write_text(json.dumps({"meta": {"checkpoints": {"study/m-sst2": digest, "org/base": "0" * 64}}}))
    s = replace(settings, snapshot_path=snapshot, study_dir=tmp_path / "out")
    assert study_folder("org/base", s) is None and study_folder("org/other", s) is None  # not a study checkpoint
    with pytest.raises(ScoringError, match="this server has none"):
        study_folder("study/m-sst2", s)
    folder = checkpoint(tmp_path / "out" / "hub" / "study" / "m-sst2", b"other")
    with pytest.raises(ScoringError, match="other weights than the bundled snapshot scored"):
        study_folder("study/m-sst2", s)
    (folder / "model.safetensors").write_bytes(b"trained")
    assert study_folder("study/m-sst2", s) == folder


def test_what_cannot_be_fetched_offline_is_what_the_cache_lacks(tmp_path, settings, models_dir):
    s = replace(settings, cache_dir=tmp_path / "cache")
    hub = LocalHub()
    hub.add_files_from_dir("org/cached", models_dir / "mine")
    hub.add_files_from_dir("org/absent", models_dir / "mine")
    with hub:
        online = replace(s, hub_endpoint=hub.url)
        assert not_fetchable(online, [("org/cached", None), ("org/absent", None)]) == {}  # the Hub answers
        path = snapshot_download("org/cached", endpoint=hub.url, cache_dir=s.cache_dir / "hub")
    sha = Path(path).name
    assert cached_commit(s, "org/cached", None) == sha and cached_commit(s, "org/cached", sha) == sha
    assert cached_commit(s, "org/absent", None) is None
    # the Hub is gone (s's endpoint is a closed port): only what the cache lacks is said
    assert not_fetchable(s, [("org/cached", None), ("org/cached", sha), ("org/absent", None)]) == {
        "org/absent": UNREACHABLE}
