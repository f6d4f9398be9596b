"""Model submissions: validate a user's model id (and revision), then queue it for scoring.

Checks run in order and the first failure raises ``SubmissionRejected`` with a sentence for the user;
nothing is stored unless every check passes. The rules are the crawler's (``data.selection``), so a
submitted model is judged exactly as a crawled one would be. A submitter may queue at most
``settings.submit_limit_per_hour`` new models and make ``settings.submit_attempts_per_hour`` attempts in any
rolling hour (``RateLimiter``, kept in the store).
"""

from __future__ import annotations

import logging
import math
import re
import threading
import unicodedata
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

from data import errors
from data.crawler import make_candidate
from data.errors import HubError, SubmissionRejected
from data.escape import log_text
from data.hub import HubClient, HubModelInfo
from data.records import ArchSignature, BaseModel, Candidate, Job, JobStatus, Kind, Match, SkipReason
from data.selection import (
    is_known_size,
    is_tagged_descendant,
    listing_verdict,
    parse_config,
    screen_config,
    screen_size,
)
from data.settings import Settings
from data.store import Store

logger = logging.getLogger(__name__)

MAX_PART = 96
_PART = r"[A-Za-z0-9](?:[A-Za-z0-9._-]{0,94}[A-Za-z0-9])?"
REPO_ID_RE = re.compile(rf"^(?:{_PART}/)?{_PART}$")
REVISION_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,199}$")
_CHAR_NAMES = {" ": "a space", "\t": "a tab", "\n": "a line break", "\r": "a line break", "\x00": "a null byte"}

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
    SkipReason.UNKNOWN_SIZE: "its parameter count is neither in the Hub's metadata nor readable from the weights' "
                             "safetensors headers",
    SkipReason.INVALID_CONFIG: "config.json is not a valid model config",
    SkipReason.NO_CONFIG: "the repo has no config.json",
    SkipReason.REMOTE_CODE: "the model needs custom code (trust_remote_code), which we never run",
}


# What a person reads when the Hub fails a check: the first class the error is an instance of, filled in with
# ``repo_id``, ``revision`` and ``error``.
INFO_REFUSALS = (
    (errors.HubTimeout, "The Hub did not answer in time ({error}); try again in a minute."),
    (errors.HubUnreachable, "The Hub cannot be reached right now ({error}); try again later."),
    (errors.RevisionNotFound, "{repo_id} has no revision {revision!r}."),
    (errors.GatedModel, SKIP_MESSAGES[SkipReason.GATED]),
    (errors.ModelNotFound, "{repo_id} was not found on the Hub (or it is private)."),
    (errors.HubError, "The Hub could not answer about {repo_id}: {error}"),
)
CONFIG_REFUSALS = (
    (errors.EntryNotFound, "{repo_id}: " + SKIP_MESSAGES[SkipReason.NO_CONFIG] + "."),
    (errors.FileTooLarge, "{repo_id}: config.json is too large to be a model config."),
    (errors.HubError, "The Hub could not give config.json of {repo_id}: {error}"),
)


def refusal(error: HubError, refusals, **names) -> SubmissionRejected:
    """The refusal a person reads for ``error`` (``refusals``: INFO_REFUSALS or CONFIG_REFUSALS)."""
    template = next(text for kind, text in refusals if isinstance(error, kind))
    return SubmissionRejected(template.format(error=error, **names))


@dataclass(frozen=True, slots=True)
class Submission:
    repo_id: str
    sha: str
    base_id: str
    jobs: tuple[Job, ...]
    is_new: bool  # False when the model was already queued or scored at that sha
    queue_position: int | None  # 1 = next to run; None when nothing is pending


class RateLimiter:
    """The per-submitter limits, kept in the store (so they hold across processes and restarts): every attempt
    that reaches the Hub counts against ``attempts_per_hour`` (refusals too, so the app cannot be used to
    multiply traffic to the Hub), and every accepted new model against ``new_per_hour``."""

    def __init__(self, store: Store, window: timedelta = timedelta(hours=1)):
        self.store = store
        self.window = window

    def attempt(self, submitter: str, limit: int, now: datetime) -> None:
        """Count one attempt, or raise SubmissionRejected when ``submitter`` has used ``limit`` this hour."""
        _, free_at = self.store.rate.take_slot(submitter, ATTEMPT, limit, self.window, now)
        if free_at is not None:
            raise SubmissionRejected(f"Rate limit: at most {limit} submission attempts per submitter per hour "
                                     f"(refused ones included). {_again(free_at, now)}")

    def new_model(self, submitter: str, limit: int, now: datetime) -> int:
        """Count one accepted new model (returns its event, to release if it is not stored after all), or raise
        SubmissionRejected when ``submitter`` has queued ``limit`` this hour."""
        event, free_at = self.store.rate.take_slot(submitter, NEW_MODEL, limit, self.window, now)
        if free_at is not None:
            raise _over_new_models(limit, free_at, now)
        return event

    def check_new_model(self, submitter: str, limit: int, now: datetime) -> None:
        """Raise as ``new_model`` would, recording nothing (checked before asking the Hub)."""
        free_at = self.store.rate.slot_free_at(submitter, NEW_MODEL, limit, self.window, now)
        if free_at is not None:
            raise _over_new_models(limit, free_at, now)


ATTEMPT, NEW_MODEL = "attempt", "new"


def _over_new_models(limit: int, free_at: datetime, now: datetime) -> SubmissionRejected:
    return SubmissionRejected(f"Rate limit: at most {limit} new models per submitter per hour. "
                              f"{_again(free_at, now)}")


def _again(free_at: datetime, now: datetime) -> str:
    minutes = max(1, math.ceil((free_at - now).total_seconds() / 60))
    return f"You may submit again at {free_at.astimezone(UTC):%Y-%m-%d %H:%M} UTC (in {minutes} min)."


_QUEUE_LOCK = threading.Lock()  # "already queued?" and the enqueue happen as one step in this process


def check_format(repo_id: str, revision: str | None) -> tuple[str, str | None]:
    """Syntax only: a Hub repo id (optionally org/name) and a branch, tag or sha."""
    repo_id = (repo_id or "").strip()
    revision = (revision or "").strip() or None
    if not repo_id:
        raise SubmissionRejected("Enter a model id such as FacebookAI/roberta-base.")
    if len(repo_id) > 2 * MAX_PART + 1:
        raise SubmissionRejected(f"A model id has at most {2 * MAX_PART + 1} characters.")
    problem = _id_problem(repo_id)
    if problem is not None:
        raise SubmissionRejected(
            f"That is not a Hub model id: {problem}. Use org/name with letters, digits, '-', '_' and '.' only."
        )
    if revision is not None and (not revision.isascii() or not REVISION_RE.match(revision) or ".." in revision):
        raise SubmissionRejected("That is not a valid revision: give a branch, a tag or a commit sha.")
    return repo_id, revision


def _id_problem(repo_id: str) -> str | None:
    """What is wrong with a repo id, in words (never echoing markup), or None."""
    if re.match(r"^([a-z][a-z0-9+.-]*://|(www\.)?(huggingface|hf)\.co/)", repo_id, re.IGNORECASE):
        return "it is a URL; give only the id after huggingface.co/"
    for c in repo_id:
        if not c.isascii():
            return f"it contains the non-ASCII character U+{ord(c):04X} {unicodedata.name(c, '')}".rstrip()
        if not (c.isalnum() or c in "._-/"):
            return f"it contains {_CHAR_NAMES.get(c) or f'the character U+{ord(c):04X}'}, which is not allowed"
    parts = repo_id.split("/")
    if "" in parts:
        return "it has an empty part (a leading, trailing or doubled '/')"
    if len(parts) > 2:
        return "it has more than one '/' (no path segments)"
    for sequence in ("..", "--"):
        if sequence in repo_id:
            return f"it contains '{sequence}'"
    if max(map(len, parts)) > MAX_PART:
        return f"a part is longer than {MAX_PART} characters"
    if not REPO_ID_RE.match(repo_id):
        return "each part must start and end with a letter or a digit"
    return None


def validate_submission(repo_id: str, revision: str | None, hub: HubClient, store: Store,
                        settings: Settings) -> tuple[HubModelInfo, BaseModel, Match]:
    """Every check but the queue; returns the model at its resolved sha, its base and how it matched."""
    repo_id, revision = check_format(repo_id, revision)
    bases = store.bases()
    if not bases:
        raise SubmissionRejected("No base model has been crawled yet, so no architecture can be ranked.")
    try:
        info = hub.model_info(repo_id, revision)
    except HubError as e:
        raise refusal(e, INFO_REFUSALS, repo_id=repo_id, revision=revision) from e
    skip = listing_verdict(info, has_token=hub.has_token, max_params=settings.max_params)
    if skip is not None:
        raise SubmissionRejected(f"{repo_id}: {SKIP_MESSAGES[skip]}.")
    if any(b.repo_id == info.repo_id or repo_id in b.aliases for b in bases):
        raise SubmissionRejected(f"{repo_id} is a base model: it is the baseline row of its leaderboard.")
    config = _read_config(hub, info)
    for base in bases:
        if screen_config(config, base.signature) is None:
            match = Match.TAG if is_tagged_descendant(info.tags, base.aliases) else Match.CONFIG
            return _with_known_size(info, hub, settings), base, match
    reason = screen_config(config, bases[0].signature)
    if reason is not SkipReason.ARCHITECTURE_MISMATCH:
        raise SubmissionRejected(f"{repo_id}: {SKIP_MESSAGES[reason]}.")
    signature = ArchSignature.from_config(config)
    raise SubmissionRejected(
        f"{repo_id} is a {signature.model_type} model (hidden {signature.hidden_size}, {signature.num_hidden_layers} "
        f"layers, vocab {signature.vocab_size}) that matches none of the architectures ranked here: "
        f"{', '.join(b.repo_id for b in bases)}."
    )


def submit(repo_id: str, revision: str | None, hub: HubClient, store: Store, settings: Settings, *,
           submitter: str | None = None, now: datetime | None = None) -> Submission:
    """Validate, then record the model as a candidate of its base and queue its scoring jobs.

    With a ``submitter`` (the client's address), ``settings.submit_attempts_per_hour`` attempts that reach the
    Hub and ``settings.submit_limit_per_hour`` accepted new models are allowed per rolling hour (the store
    keeps the count); re-submitting a model already queued or scored at that sha is not a new model.
    """
    limiter = RateLimiter(store)
    now = now or datetime.now(UTC)
    limit = settings.submit_limit_per_hour
    repo_id, revision = check_format(repo_id, revision)
    if submitter is not None:
        limiter.attempt(submitter, settings.submit_attempts_per_hour, now)
        if not store.queue.jobs(repo_id=repo_id):  # surely new: spare the Hub when over the limit
            limiter.check_new_model(submitter, limit, now)
    info, base, match = validate_submission(repo_id, revision, hub, store, settings)
    candidate = replace(make_candidate(info, base), kind=Kind.FINETUNE, match=match)
    with _QUEUE_LOCK:
        existing = [j for j in store.queue.jobs(repo_id=info.repo_id) if j.revision == info.sha]
        is_new = not existing
        event = limiter.new_model(submitter, limit, now) if submitter is not None and is_new else None
        try:
            jobs = _queue(store, info, base, candidate, existing, settings)
        except BaseException:
            if event is not None:
                store.rate.release_slot(event)
            raise
    logger.info("submission %s@%s for %s by %s: %s", info.repo_id, info.sha[:8], base.repo_id,
                log_text(submitter or "-"), "queued" if is_new else "already queued")
    return Submission(repo_id=info.repo_id, sha=info.sha, base_id=base.repo_id, jobs=jobs, is_new=is_new,
                      queue_position=queue_position(store, jobs))


def _queue(store: Store, info: HubModelInfo, base: BaseModel, candidate: Candidate, existing: list[Job],
           settings: Settings) -> tuple[Job, ...]:
    if {j.scorer for j in existing} >= set(settings.crawl_scorers):  # already queued: write nothing
        return tuple(j for j in existing if j.scorer in settings.crawl_scorers)
    if store.get_candidate(info.repo_id, base.repo_id) is None:  # a crawled model keeps its record
        store.save_candidates([candidate], ())
    return tuple(store.queue.enqueue(info.repo_id, info.sha, settings.crawl_scorers, base.repo_id))


def queue_position(store: Store, jobs: tuple[Job, ...]) -> int | None:
    pending = [j.id for j in jobs if j.status is JobStatus.PENDING]
    if not pending:
        return None
    return 1 + sum(1 for j in store.queue.jobs(JobStatus.PENDING) if j.id < min(pending))


def _read_config(hub: HubClient, info: HubModelInfo) -> object:
    try:
        raw = hub.read_file(info.repo_id, "config.json", info.sha)
    except HubError as e:
        raise refusal(e, CONFIG_REFUSALS, repo_id=info.repo_id) from e
    return parse_config(raw)  # None (not JSON, too deep) is judged INVALID_CONFIG by screen_config


def _with_known_size(info: HubModelInfo, hub: HubClient, settings: Settings) -> HubModelInfo:
    """The model with a usable parameter count: the listing's, else the safetensors headers'; refused when
    neither gives one or it is over the limit (the size rule never fails open)."""
    if not is_known_size(info.num_params):
        try:
            info = replace(info, num_params=hub.count_parameters(info.repo_id, info.sha))
        except HubError as e:
            raise SubmissionRejected(f"The Hub could not give the weights' headers of {info.repo_id}: {e}") from e
    skip = screen_size(info.num_params, settings.max_params)
    if skip is not None:
        raise SubmissionRejected(f"{info.repo_id}: {SKIP_MESSAGES[skip]}.")
    return info
