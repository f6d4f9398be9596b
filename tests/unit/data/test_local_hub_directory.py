import json
import subprocess
import sys
from pathlib import Path

import pytest

from data.hub import HubClient
from data.local_hub import LocalHub
from data.local_hub.directory import load_directory

ROOT = Path(__file__).resolve().parents[3]
CONFIG = {"model_type": "bert", "hidden_size": 32}


def _repo(root: Path, repo_id: str, *, card: str | None = None, meta: dict | None = None) -> Path:
    path = root / repo_id
    path.mkdir(parents=True)
    (path / "config.json").write_text(json.dumps(CONFIG))
    (path / "model.safetensors").write_bytes(b"weights")
    if card is not None:
        (path / "README.md").write_text(card)
    if meta is not None:
        (path / "hub.json").write_text(json.dumps(meta))
    return path


def test_directory_repos_get_hub_tags_from_config_and_card(tmp_path, settings):
    _repo(tmp_path, "org/base")
    _repo(tmp_path, "org/child", card="---\nlicense: mit\nbase_model: org/base\n---\n# child\n")
    _repo(tmp_path, "legacy-id", meta={"tags": ["bert"], "downloads": 5, "gated": "auto"})
    (tmp_path / "notes").mkdir()  # neither a repo nor holding one
    hub = LocalHub()
    assert load_directory(hub, tmp_path) == ["legacy-id", "org/base", "org/child"]
    with hub:
        client = HubClient(settings.with_overrides(hub_endpoint=hub.url))
        child = client.model_info("org/child")
        legacy = client.model_info("legacy-id")
    assert set(child.tags) >= {"transformers", "bert", "base_model:org/base", "base_model:finetune:org/base"}
    assert child.license == "mit" and set(child.filenames) == {"config.json", "model.safetensors", "README.md"}
    assert legacy.downloads == 5 and legacy.gated == "auto" and "hub.json" not in legacy.filenames


def test_bad_metadata_is_refused_for_that_repo_only(tmp_path, caplog):
    _repo(tmp_path, "org/x", meta={"downlods": 5})
    _repo(tmp_path, "org/y")
    assert load_directory(LocalHub(), tmp_path) == ["org/y"]
    assert "unknown keys ['downlods']" in caplog.text
    with pytest.raises(NotADirectoryError):
        load_directory(LocalHub(), tmp_path / "missing")


def test_serve_hub_command_serves_until_stopped(tmp_path):
    _repo(tmp_path, "org/base")
    proc = subprocess.Popen([sys.executable, "-m", "data", "serve-hub", "--root", str(tmp_path)], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        line = proc.stdout.readline()
        assert line.startswith("serving 1 repos from") and " at http://127.0.0.1:" in line
        url = line.split(" at ")[1].split(" ")[0]
        from huggingface_hub import HfApi

        assert HfApi(endpoint=url, token=False).model_info("org/base").id == "org/base"
    finally:
        proc.terminate()
        proc.wait(timeout=10)
