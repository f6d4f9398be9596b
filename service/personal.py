"""A personal ranking: the base and its top K of the general leaderboard, or the models a user names, scored on the
user's own labelled rows.

``submit`` checks the request and queues it (the store keeps the rows apart, by content hash, only while the job
needs them); a worker's ``run_personal`` then takes each model in turn: its snapshot at the pinned sha (a local
folder as it is, a study's candidate from the study's folder), its frozen
features of the rows (extracted once per (model sha, data hash) and cached, batched by length), and every
estimator registered with stage ``personal`` on them (scoring/personal_estimators.py). Progress is written after
each model; the finished ranking (ranking/personal.py orders it) and DONE are written in one transaction, and the
rows go with it. ``purge_personal_data`` deletes what is past its time (the app and idle workers call it). Nothing
else here runs in the web process.
"""

from __future__ import annotations

import hashlib
import logging
import pickle
import time
from collections.abc import Callable
from dataclasses import asdict, replace
from pathlib import Path

import torch

from data.atomic import atomic_path
from data.errors import LeaderboardError, ScoringError
from data.personal_cache import FEATURES_DIR, drop_unkept_features, purge_personal_data  # noqa: F401 (re-exported)
from data.personal_record import Estimate, PersonalRanking, RankedModel
from data.records import SHA_RE, Job, ModelRef
from data.settings import Settings
from data.store import Store
from data.user_data import UserData
from scoring import registry
from scoring.config import UserFeatureConfig
from scoring.examples import Example
from service.job_errors import public_error
from service.personal_models import check_folder, study_folder, weights_digest
from service.personal_submit import (  # noqa: F401 (re-exported: callers import them here)
    MAX_TOP_K,
    MIN_MODELS,
    Candidate,
    PersonalError,
    Pick,
    picks_of,
    submit,
)

logger = logging.getLogger(__name__)

Snapshot = Callable[[ModelRef], Path]
Pin = Callable[[str, str | None], str]  # (repo id, branch, tag or None) -> its commit sha


def user_features(model_dir: Path, data: UserData, cfg: UserFeatureConfig, *, device: str = "cpu",
                  cache_dir: Path | None = None, model_key: str = "") -> torch.Tensor:
    """Mean-pooled frozen features of every row (scoring/probe.py's extraction, rows sorted by length), cached per
    (model, data hash, config) for as long as the store keeps the rows (``drop_unkept_features``). The cache file is
    written atomically; one that cannot be read back whole is deleted and rebuilt."""
    from scoring.probe import extract_features, load_encoder

    key = hashlib.sha256(f"{model_key or Path(model_dir).resolve()}|{cfg.max_length}|{cfg.batch_size}".encode()
                         ).hexdigest()[:32]
    path = Path(cache_dir) / FEATURES_DIR / data.data_hash / f"{key}.pt" if cache_dir else None
    cached = _cached_features(path, data.num_rows) if path is not None else None
    if cached is not None:
        return cached
    pairs = data.pairs or (None,) * data.num_rows
    examples = tuple(Example(t, p, y) for t, p, y in zip(data.texts, pairs, data.labels, strict=True))
    model, tokenizer = load_encoder(model_dir)
    features = extract_features(model, tokenizer, examples, cfg, device)
    if path is not None:
        with atomic_path(path) as tmp:
            torch.save(features, tmp)
    return features


def _cached_features(path: Path, num_rows: int) -> torch.Tensor | None:
    """The cached features at ``path``: a floating (rows, dim) tensor with one row per data row. None when there are
    none; a file that is truncated, damaged or of another shape is deleted (with a warning) and None returned."""
    try:
        features = torch.load(path, weights_only=True)
    except FileNotFoundError:
        return None
    except (RuntimeError, EOFError, ValueError, OSError, pickle.UnpicklingError) as e:
        problem = f"cannot be read ({type(e).__name__}: {str(e)[:200]})"
    else:
        if (isinstance(features, torch.Tensor) and features.ndim == 2 and features.shape[0] == num_rows
                and features.is_floating_point()):
            return features
        shape = tuple(features.shape) if isinstance(features, torch.Tensor) else type(features).__name__
        problem = f"holds {shape}, not {num_rows} rows of features"
    logger.warning("cached features %s %s: deleted, extracting again", path, problem)
    path.unlink(missing_ok=True)
    return None


def estimators(settings: Settings) -> list:
    """Every registered personal estimator, built; they share one feature config (extracted once)."""
    built = [registry.build(name, settings) for name in registry.personal()]
    if len({e.cfg.features for e in built}) != 1:
        raise ValueError("the personal estimators must share one feature config (features are extracted once)")
    return built


def score_model(candidate: Candidate, model_dir: Path, data: UserData, built: list, *, device: str,
                cache_dir: Path | None) -> RankedModel:
    """One model's entry of the ranking: its estimates with their diagnostics, and the seconds spent. A model whose
    files cannot be read as an encoder raises ScoringError (one sentence; the log keeps the cause)."""
    started = time.perf_counter()
    try:
        features = user_features(model_dir, data, built[0].cfg.features, device=device, cache_dir=cache_dir,
                                 model_key=f"{candidate.source}:{candidate.repo_id}@{candidate.revision}")
    except LeaderboardError:
        raise
    except (OSError, ValueError, KeyError, RuntimeError, TypeError) as e:  # transformers' and torch's read errors
        logger.warning("%s could not be read as a model", candidate.repo_id, exc_info=e)
        raise ScoringError(f"Its files could not be read as a text encoder with safetensors weights "
                           f"({type(e).__name__}).") from e
    feature_s = time.perf_counter() - started
    labels = torch.tensor(data.labels)
    estimates = {}
    for estimator in built:
        result = estimator.checked(features, labels)
        estimates[estimator.name] = Estimate(metric=estimator.metric, value=result.value, status=result.status,
                                             error=result.error or "", diagnostics=result.diagnostics,
                                             seconds=round(result.seconds, 3))
    return RankedModel(**asdict(candidate), estimates=estimates, feature_seconds=round(feature_s, 3),
                       seconds=round(time.perf_counter() - started, 3))


def run_personal(store: Store, job: Job, snapshot: Snapshot, settings: Settings, *, device: str = "cpu",
                 cache_dir: Path | None = None, pin: Pin | None = None) -> PersonalRanking:
    """Score every candidate of the job's request on its rows; returns the ranking (ranking/personal.py) to be
    written with DONE. A model that cannot be fetched or read gets an entry saying so, not a rank; when fewer than
    two could be scored the job fails (PersonalError naming each model's reason). ``pin``: a named Hub id's commit
    (``pin_commit``); None takes only pinned shas."""
    from ranking.personal import personal_result

    request = store.requests.personal_of_job(job.id)
    if request is None:
        raise PersonalError(f"job {job.id}: its personal ranking has expired or does not exist")
    rows = store.requests.personal_rows(request.data_hash)
    if rows is None:
        raise PersonalError(f"job {job.id}: the rows of its personal ranking are no longer kept")
    data = UserData.from_json(rows)
    built = estimators(settings)
    entries: list[RankedModel] = []
    for pick in picks_of(store, request):
        candidate = pick.candidate
        try:
            model_dir, candidate = fetch(pick, snapshot, pin, settings)
            entry = score_model(candidate, model_dir, data, built, device=device, cache_dir=cache_dir)
        except LeaderboardError as e:  # a model that cannot be fetched or read: said, and the others still run
            entry = RankedModel(**asdict(candidate), error=public_error(e))
        entries.append(entry)
        store.requests.set_personal_progress(request.id, [_progress(e) for e in entries])
        logger.info("personal %s: %s (%d models done)", request.id[:8], candidate.repo_id, len(entries))
    scored = [e for e in entries if not e.error]
    if len(scored) < MIN_MODELS:  # each model's reason is in the request's progress, beside its name
        raise PersonalError(f"Only {len(scored)} of the {len(entries)} models could be scored, and a ranking needs "
                            "two; each model's reason is listed with it.")
    protocols = {e.name: e.protocol([["user", data.data_hash]]).hash for e in built}
    return personal_result(entries, metrics={e.name: e.metric for e in built}, protocols=protocols,
                           base_id=request.base_id, source=request.source, summary=request.summary)


def fetch(pick: Pick, snapshot: Snapshot, pin: Pin | None, settings: Settings) -> tuple[Path, Candidate]:
    """Where the pick's weights are, and its candidate with the revision they have: a local folder (revision: its
    weights' sha256), a study checkpoint's folder, or the Hub snapshot (a named id's revision pinned first).
    Raises a LeaderboardError whose message is the sentence shown."""
    where, candidate = pick.where, pick.candidate
    if where.is_local:
        folder = Path(where.path)
        check_folder(folder)
        return folder, replace(candidate, revision=weights_digest(folder))
    if (folder := study_folder(where.name, settings)) is not None:
        return folder, candidate
    revision = where.revision
    if revision is None or not SHA_RE.match(revision):
        if pin is None:
            raise ScoringError(f"{where.name}: no commit of it is known here.")
        revision = pin(where.name, revision)
    return snapshot(ModelRef(where.name, revision)), replace(candidate, revision=revision)


def pin_commit(client, settings: Settings) -> Pin:
    """A Pin that asks the Hub (``client``, a data.hub.HubClient) for the commit of a branch or tag and, when the
    Hub cannot be reached, takes the one this machine's cache holds."""
    from data.errors import HubUnreachable
    from service.personal_models import cached_commit

    def pin(repo_id: str, revision: str | None) -> str:
        try:
            sha = client.model_info(repo_id, revision).sha
        except HubUnreachable as e:
            if (sha := cached_commit(settings, repo_id, revision)) is None:
                raise HubUnreachable("The Hub cannot be reached and this machine's cache does not hold it.") from e
        if sha is None:
            raise ScoringError(f"{repo_id}: the Hub gave no commit for it.")
        return sha

    return pin


def _progress(entry: RankedModel) -> dict:
    return {"repo_id": entry.repo_id, "role": entry.role, "seconds": entry.seconds, "error": entry.error}
