"""Serve a directory of model repos: ``ROOT/<org>/<name>/`` (or ``ROOT/<name>/``) with their files.

A repo directory is one holding a ``config.json`` or a ``hub.json``. ``hub.json`` (not served) gives the
Hub metadata as ``LocalHub.add_model`` keyword arguments (tags, downloads, likes, gated, private,
card_data, aliases, ...). Without it the tags are derived as the Hub would: ``transformers``, the
config's ``model_type``, ``base_model:<id>`` / ``base_model:finetune:<id>`` from the model card's
``base_model:`` front matter, and ``dataset:<name>`` for each of its ``datasets:``.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

METADATA_FILE = "hub.json"
ALLOWED_METADATA = frozenset({
    "tags", "downloads", "likes", "trending_score", "gated", "private", "disabled", "pipeline_tag",
    "library_name", "card_data", "parameters", "aliases",
})


def load_directory(hub, root: Path) -> list[str]:
    """Add every repo found under ``root`` to ``hub``; returns their ids, sorted."""
    root = Path(root)
    if not root.is_dir():
        raise NotADirectoryError(f"{root} is not a directory")
    added = []
    for repo_dir in sorted(_repo_dirs(root)):
        repo_id = repo_dir.relative_to(root).as_posix()
        try:
            metadata = _metadata(repo_dir)
        except (ValueError, OSError, RecursionError) as e:  # one bad repo never stops the server
            logger.warning("%s: not served: %s", repo_dir, e)
            continue
        files = {
            path.relative_to(repo_dir).as_posix(): path
            for path in sorted(repo_dir.rglob("*"))
            if path.is_file() and path.name != METADATA_FILE and ".git" not in path.relative_to(repo_dir).parts
        }
        hub.add_model(repo_id, files, **metadata)
        added.append(repo_id)
    logger.info("loaded %d repos from %s", len(added), root)
    return added


def _repo_dirs(root: Path):
    for child in root.iterdir():
        if not child.is_dir() or child.name.startswith("."):
            continue
        if _is_repo(child):
            yield child
        else:
            yield from (grandchild for grandchild in child.iterdir() if grandchild.is_dir() and _is_repo(grandchild))


def _is_repo(path: Path) -> bool:
    return (path / "config.json").is_file() or (path / METADATA_FILE).is_file()


def _metadata(repo_dir: Path) -> dict[str, Any]:
    meta_path = repo_dir / METADATA_FILE
    if meta_path.is_file():
        meta = json.loads(meta_path.read_text())
        if not isinstance(meta, dict):
            raise ValueError(f"{meta_path} is not a JSON object")
        unknown = set(meta) - ALLOWED_METADATA
        if unknown:
            raise ValueError(f"{meta_path}: unknown keys {sorted(unknown)}; allowed: {sorted(ALLOWED_METADATA)}")
        return meta
    tags = ["transformers"]
    config_path = repo_dir / "config.json"
    model_type = _model_type(config_path)
    if model_type:
        tags.append(model_type)
    card_data = _front_matter(repo_dir / "README.md")
    bases = card_data.get("base_model")
    for base in [bases] if isinstance(bases, str) else bases or []:
        tags += [f"base_model:{base}", f"base_model:finetune:{base}"]
    datasets = card_data.get("datasets")
    tags += [f"dataset:{name}" for name in ([datasets] if isinstance(datasets, str) else datasets or [])]
    return {"tags": tags, "card_data": card_data or None}


def _model_type(config_path: Path) -> str | None:
    """``model_type`` of a config.json; None when there is none or the file is not a JSON object (the repo is
    still served, as the Hub serves broken configs)."""
    if not config_path.is_file():
        return None
    try:
        config = json.loads(config_path.read_bytes())
    except (ValueError, RecursionError):
        return None
    model_type = config.get("model_type") if isinstance(config, dict) else None
    return model_type if isinstance(model_type, str) else None


def _front_matter(readme: Path) -> dict[str, Any]:
    """The simple ``key: value`` and ``key:\\n- item`` lines of a model card's YAML header."""
    if not readme.is_file():
        return {}
    lines = readme.read_text().splitlines()
    if not lines or lines[0].strip() != "---":
        return {}
    data: dict[str, Any] = {}
    key = None
    for line in lines[1:]:
        if line.strip() == "---":
            break
        if line.startswith(("- ", "  - ")) and key is not None:
            data.setdefault(key, [])
            if isinstance(data[key], list):
                data[key].append(line.split("- ", 1)[1].strip())
        elif ":" in line:
            key, _, value = line.partition(":")
            key, value = key.strip(), value.strip()
            if value:
                data[key] = value.strip("'\"")
    return data
