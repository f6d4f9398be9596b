"""Model submissions: validate a user's model id (and revision), then queue it for scoring.

Checks run in order and the first failure raises ``SubmissionRejected`` with a sentence for the user;
nothing is stored unless every check passes. The rules are the crawler's (``data.selection``), so a
submitted model is judged exactly as a crawled one would be.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass

from data.errors import (
    EntryNotFound,
    GatedModel,
    HubError,
    HubUnreachable,
    ModelNotFound,
    RevisionNotFound,
    SubmissionRejected,
)
from data.hub import HubClient, HubModelInfo
from data.records import ArchSignature, BaseModel, Candidate, CandidateStatus, Job, JobStatus, Kind, Match, SkipReason
from data.selection import is_tagged_descendant, relation_kind, screen_config, screen_listing, weight_files
from data.settings import Settings
from data.store import Store

logger = logging.getLogger(__name__)

MAX_PART = 96
_PART = r"[A-Za-z0-9](?:[A-Za-z0-9._-]{0,94}[A-Za-z0-9])?"
REPO_ID_RE = re.compile(rf"^(?:{_PART}/)?{_PART}$")
REVISION_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,199}$")

SKIP_MESSAGES = {
    SkipReason.DISABLED: "the model is disabled on the Hub",
    SkipReason.PRIVATE: "the model is private and no token with access is configured",
    SkipReason.GATED: "the model is gated and no token with access is configured",
    SkipReason.ADAPTER: "the model is an adapter, not a full finetune: submit the merged model",
    SkipReason.QUANTIZED: "the model is quantized: submit the full-precision finetune",
    SkipReason.MERGE: "the model is a merge of several models; only finetunes of one base are ranked",
    SkipReason.NO_WEIGHTS: "the repo has no model weights",
    SkipReason.PICKLE_ONLY: "the repo has only pickle weights (.bin/.pt); we load safetensors only",
    SkipReason.TOO_LARGE: "the model has more parameters than this leaderboard scores",
    SkipReason.INVALID_CONFIG: "config.json is not a valid model config",
    SkipReason.NO_CONFIG: "the repo has no config.json",
    SkipReason.REMOTE_CODE: "the model needs custom code (trust_remote_code), which we never run",
}


@dataclass(frozen=True, slots=True)
class Submission:
    repo_id: str
    sha: str
    base_id: str
    jobs: tuple[Job, ...]
    is_new: bool  # False when the model was already queued or scored at that sha
    queue_position: int | None  # 1 = next to run; None when nothing is pending


def check_format(repo_id: str, revision: str | None) -> tuple[str, str | None]:
    """Syntax only: a Hub repo id (optionally org/name) and a branch, tag or sha."""
    repo_id = (repo_id or "").strip()
    revision = (revision or "").strip() or None
    if not repo_id:
        raise SubmissionRejected("Enter a model id such as FacebookAI/roberta-base.")
    if len(repo_id) > 2 * MAX_PART + 1:
        raise SubmissionRejected(f"A model id has at most {2 * MAX_PART + 1} characters.")
    if not repo_id.isascii() or not REPO_ID_RE.match(repo_id) or ".." in repo_id or "--" in repo_id:
        raise SubmissionRejected(
            "That is not a Hub model id: use org/name with letters, digits, '-', '_' and '.' only "
            "(no spaces, no path segments such as '..', at most one '/')."
        )
    if revision is not None and (not revision.isascii() or not REVISION_RE.match(revision) or ".." in revision):
        raise SubmissionRejected("That is not a valid revision: give a branch, a tag or a commit sha.")
    return repo_id, revision


def validate_submission(repo_id: str, revision: str | None, hub: HubClient, store: Store,
                        settings: Settings) -> tuple[HubModelInfo, BaseModel, Match]:
    """Every check but the queue; returns the model at its resolved sha, its base and how it matched."""
    repo_id, revision = check_format(repo_id, revision)
    bases = store.bases()
    if not bases:
        raise SubmissionRejected("No base model has been crawled yet, so no architecture can be ranked.")
    try:
        info = hub.model_info(repo_id, revision)
    except HubUnreachable as e:
        raise SubmissionRejected(f"The Hub cannot be reached right now ({e}); try again later.") from e
    except RevisionNotFound as e:
        raise SubmissionRejected(f"{repo_id} has no revision {revision!r}.") from e
    except GatedModel as e:
        raise SubmissionRejected(SKIP_MESSAGES[SkipReason.GATED]) from e
    except ModelNotFound as e:
        raise SubmissionRejected(f"{repo_id} was not found on the Hub (or it is private).") from e
    except HubError as e:
        raise SubmissionRejected(f"The Hub could not answer about {repo_id}: {e}") from e
    skip = screen_listing(
        kind=relation_kind(info.tags), disabled=info.disabled, private=info.private, gated=info.gated,
        filenames=info.filenames or (), num_params=info.num_params, has_token=hub.has_token,
        max_params=settings.max_params,
    )
    if skip is not None:
        raise SubmissionRejected(f"{repo_id}: {SKIP_MESSAGES[skip]}.")
    if any(b.repo_id == info.repo_id or repo_id in b.aliases for b in bases):
        raise SubmissionRejected(f"{repo_id} is a base model: it is the baseline row of its leaderboard.")
    config = _read_config(hub, info)
    for base in bases:
        if screen_config(config, base.signature) is None:
            match = Match.TAG if is_tagged_descendant(info.tags, base.aliases) else Match.CONFIG
            return info, base, match
    reason = screen_config(config, bases[0].signature)
    if reason is not SkipReason.ARCHITECTURE_MISMATCH:
        raise SubmissionRejected(f"{repo_id}: {SKIP_MESSAGES[reason]}.")
    signature = ArchSignature.from_config(config)
    raise SubmissionRejected(
        f"{repo_id} is a {signature.model_type} model (hidden {signature.hidden_size}, {signature.num_hidden_layers} "
        f"layers, vocab {signature.vocab_size}) that matches none of the architectures ranked here: "
        f"{', '.join(b.repo_id for b in bases)}."
    )


def submit(repo_id: str, revision: str | None, hub: HubClient, store: Store, settings: Settings) -> Submission:
    """Validate, then record the model as a candidate of its base and queue its scoring jobs."""
    info, base, match = validate_submission(repo_id, revision, hub, store, settings)
    existing = store.jobs(repo_id=info.repo_id)
    has_jobs = any(j.revision == info.sha for j in existing)
    candidate = Candidate(
        repo_id=info.repo_id, base_id=base.repo_id, sha=info.sha, kind=Kind.FINETUNE, match=match,
        status=CandidateStatus.OK, downloads=info.downloads, likes=info.likes, license=info.license,
        tags=info.tags, pipeline_tag=info.pipeline_tag, last_modified=info.last_modified,
        num_params=info.num_params, has_safetensors=weight_files(info.filenames or ())[0],
    )
    if store.get_candidate(info.repo_id, base.repo_id) is None:  # a crawled model keeps its crawled record
        store.save_candidates([candidate], ())
    jobs = tuple(store.enqueue(info.repo_id, info.sha, settings.crawl_scorers, base.repo_id))
    position = queue_position(store, jobs)
    logger.info("submission %s@%s for %s: %s", info.repo_id, info.sha[:8], base.repo_id,
                "already queued" if has_jobs else "queued")
    return Submission(repo_id=info.repo_id, sha=info.sha, base_id=base.repo_id, jobs=jobs, is_new=not has_jobs,
                      queue_position=position)


def queue_position(store: Store, jobs: tuple[Job, ...]) -> int | None:
    pending = [j.id for j in jobs if j.status is JobStatus.PENDING]
    if not pending:
        return None
    return 1 + sum(1 for j in store.jobs(JobStatus.PENDING) if j.id < min(pending))


def _read_config(hub: HubClient, info: HubModelInfo) -> object:
    try:
        raw = hub.read_file(info.repo_id, "config.json", info.sha)
    except EntryNotFound as e:
        raise SubmissionRejected(f"{info.repo_id}: {SKIP_MESSAGES[SkipReason.NO_CONFIG]}.") from e
    except HubError as e:
        raise SubmissionRejected(f"The Hub could not give config.json of {info.repo_id}: {e}") from e
    try:
        return json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise SubmissionRejected(f"{info.repo_id}: {SKIP_MESSAGES[SkipReason.INVALID_CONFIG]}.") from None
