"""The models a personal ranking scores when a user names them: Hub ids, local checkpoint folders, and a study's own
candidates. No torch here: the web process checks names and the cache with it before anything is queued.

A name is a Hub id (``org/name``, optionally ``@revision``) or a local folder. On the command line a local folder is
any path that starts with ``./``, ``../``, ``/`` or ``~``, or names a folder that exists; on the app's "Your data" tab
it is ``./NAME``, a folder inside the server's models folder (``Settings.models_dir``) and nowhere else, so a web
user can name only checkpoints the operator put there. A study's candidates (``study/...``) exist only in a study's
output folder: they resolve to its weights (``Settings.study_dir``) when their sha256 is the bundled snapshot's.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from data.errors import HubError, LeaderboardError, ScoringError
from data.settings import Settings

logger = logging.getLogger(__name__)

LOCAL_PREFIXES = ("./", "../", "/", "~")
MAX_NAMED = 50  # models in one request (the same cap as the top K)
WEIGHTS = "model.safetensors"
_HUB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,95}(/[A-Za-z0-9][A-Za-z0-9._-]{0,95})?$")
_REVISION = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,199}$")
_WEB_LOCAL = re.compile(r"^\./[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9][A-Za-z0-9._-]*)*$")


class ModelNameError(LeaderboardError, ValueError):
    """A model name that cannot be used: one sentence saying which and why."""


@dataclass(frozen=True, slots=True)
class NamedModel:
    """One model a user named: ``name`` is what the ranking shows; ``path`` (a local folder, absolute) and
    ``revision`` (a Hub id's branch, tag or commit; None: main) say where it is. The path is never shown."""

    name: str
    path: str | None = None
    revision: str | None = None

    @property
    def is_local(self) -> bool:
        return self.path is not None

    def to_json(self) -> dict:
        return {"name": self.name, "path": self.path, "revision": self.revision}

    @classmethod
    def from_json(cls, item: dict) -> NamedModel:
        return cls(name=str(item["name"]), path=item.get("path"), revision=item.get("revision"))


def split_names(text: str | Iterable[str]) -> list[str]:
    """The names in ``text`` (commas, semicolons or new lines between them), blanks dropped, each once."""
    parts = re.split(r"[,;\n]", text) if isinstance(text, str) else list(text)
    return list(dict.fromkeys(p.strip() for p in parts if p and p.strip()))


def named_models(names: Iterable[str], *, local_root: Path | None, any_path: bool) -> list[NamedModel]:
    """Each name as a NamedModel. ``any_path`` (the command line): a local folder may be anywhere, relative to the
    working directory; otherwise (the app) only ``./NAME`` inside ``local_root``. Raises ModelNameError (one
    sentence)."""
    names = split_names(names)
    if len(names) > MAX_NAMED:
        raise ModelNameError(f"Name at most {MAX_NAMED} models; {len(names)} were given.")
    return [_named(n, local_root=local_root, any_path=any_path) for n in names]


def _named(name: str, *, local_root: Path | None, any_path: bool) -> NamedModel:
    if any_path and (name.startswith(LOCAL_PREFIXES) or Path(name).is_dir()):
        folder = Path(name).expanduser().resolve()
        check_folder(folder, name)
        return NamedModel(name=name, path=str(folder))
    if name.startswith(LOCAL_PREFIXES):
        return NamedModel(name=name, path=str(_web_folder(name, local_root)))
    repo_id, at, revision = name.partition("@")
    if not _HUB_ID.match(repo_id) or ".." in repo_id or (at and not _REVISION.match(revision)):
        raise ModelNameError(f"{_shown(name)} is neither a Hub model id (owner/name, optionally @revision) nor a local "
                         f"folder (./NAME).")
    return NamedModel(name=repo_id, revision=revision or None)


def _web_folder(name: str, local_root: Path | None) -> Path:
    """``./NAME`` inside the models folder, symlinks resolved; anything else refused without saying where it is."""
    if local_root is None or not Path(local_root).is_dir():
        raise ModelNameError(f"{_shown(name)}: this server takes no local folders (it has no models folder); name "
                         "Hub models instead.")
    root = Path(local_root).resolve()
    if not _WEB_LOCAL.match(name) or ".." in name.split("/"):
        raise ModelNameError(f"{_shown(name)}: a local folder is written ./NAME, a folder inside this server's models "
                         "folder.")
    folder = (root / name[2:]).resolve()
    if not folder.is_relative_to(root) or folder == root:
        raise ModelNameError(f"{_shown(name)} is not a folder inside this server's models folder.")
    check_folder(folder, name)
    return folder


def check_folder(folder: Path, name: str | None = None) -> None:
    """A checkpoint folder the scorers can read: config.json and safetensors weights (raises ModelNameError naming
    it as ``name``, or as "the folder" where the sentence sits beside its name)."""
    shown = _shown(name) if name is not None else "The folder"
    if not folder.is_dir():
        raise ModelNameError(f"{shown}: no such folder.")
    if not (folder / "config.json").is_file():
        raise ModelNameError(f"{shown} has no config.json: it is not a saved checkpoint.")
    if not any(folder.glob("*.safetensors")):
        raise ModelNameError(f"{shown} has no .safetensors weights (other formats are not read).")


def weights_digest(folder: Path) -> str:
    """The sha256 of a folder's safetensors files (sorted by name): a local checkpoint's revision. Kept per file
    size and modification time, so a checkpoint hashed at submit is not hashed again by the worker."""
    files = sorted(Path(folder).glob("*.safetensors"))
    return _digest(tuple((str(p), *_stamp(p)) for p in files))


def _stamp(path: Path) -> tuple[int, int]:
    stat = path.stat()
    return stat.st_size, stat.st_mtime_ns


@functools.lru_cache(maxsize=256)
def _digest(files: tuple[tuple[str, int, int], ...]) -> str:
    digest = hashlib.sha256()
    for name, _, _ in files:
        with open(name, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                digest.update(chunk)
    return digest.hexdigest()


def study_folder(repo_id: str, settings: Settings) -> Path | None:
    """A study checkpoint's folder in ``settings.study_dir`` when its weights are the bundled snapshot's; None for a
    model the snapshot did not train. Raises ScoringError when the snapshot trained it but its weights are absent
    or other than the snapshot's (they would be other weights than the study scored)."""
    checkpoints = _snapshot_checkpoints(str(settings.snapshot_path) if settings.snapshot_path else "")
    if repo_id not in checkpoints or not repo_id.startswith("study/"):
        return None
    folder = Path(settings.study_dir) / "hub" / repo_id
    if not (folder / WEIGHTS).is_file():
        raise ScoringError(f"{repo_id} is a study checkpoint: its weights exist only in a study's output folder, and "
                           "this server has none (run `python -m scoring study`, or set MRL_STUDY_DIR to its --out).")
    if weights_digest(folder) != checkpoints[repo_id]:
        raise ScoringError(f"{repo_id}: the study folder holds other weights than the bundled snapshot scored.")
    return folder


@functools.lru_cache(maxsize=4)
def _snapshot_checkpoints(path: str) -> dict[str, str]:
    """{repo id: sha256 of its weights} of the snapshot at ``path`` ({} when there is none or it cannot be read)."""
    if not path:
        return {}
    try:
        meta = json.loads(Path(path).read_text())["meta"]
        return {str(k): str(v) for k, v in meta.get("checkpoints", {}).items()}
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
        logger.warning("no study checkpoints from %s: %s", path, e)
        return {}


def cached_commit(settings: Settings, repo_id: str, revision: str | None) -> str | None:
    """The commit of ``repo_id`` at ``revision`` (None: main) whose config and safetensors weights are in this
    machine's Hub cache (``settings.cache_dir``/hub), or None."""
    from huggingface_hub import try_to_load_from_cache

    try:
        found = try_to_load_from_cache(repo_id, "config.json", cache_dir=Path(settings.cache_dir) / "hub",
                                       revision=revision or "main")
    except ValueError:  # not a valid id or revision
        return None
    if not isinstance(found, str) or not any(Path(found).parent.glob("*.safetensors")):
        return None
    return Path(found).parent.name


def hub_reachable(settings: Settings) -> bool:
    """Whether the Hub answers one listing request within ``settings.submit_timeout_s``."""
    from data.hub import HubClient

    try:
        next(iter(HubClient.interactive(settings).iter_models(limit=1)), None)
    except HubError as e:
        logger.info("the Hub is not reachable: %s", e)
        return False
    return True


def not_fetchable(settings: Settings, wanted: Iterable[tuple[str, str | None]]) -> dict[str, str]:
    """{repo id: why} for the Hub models ``wanted`` ((repo id, revision or None) pairs) that cannot be fetched now:
    a study checkpoint whose weights this server lacks, or a model missing from this machine's cache while the Hub
    cannot be reached (asked once, only when one is missing)."""
    why: dict[str, str] = {}
    missing = []
    for repo_id, revision in wanted:
        try:
            if study_folder(repo_id, settings) is not None:
                continue
        except ScoringError:
            why[repo_id] = "a study checkpoint whose weights this server does not have"
            continue
        if cached_commit(settings, repo_id, revision) is None:
            missing.append(repo_id)
    if missing and not hub_reachable(settings):
        why |= dict.fromkeys(missing, "not in this server's cache, and the Hub cannot be reached")
    return why


def _shown(name: str) -> str:
    """A name as a sentence quotes it: at most 80 characters, on one line."""
    name = " ".join(name.split())
    return repr(name if len(name) <= 80 else name[:79] + "…")
