"""Find every finetuned descendant of a base model on the Hub and keep the store current.

One crawl: resolve the base (its sha and config), list models tagged as its descendants (under every
alias) and models of the same model_type, screen each from listing metadata, fetch config.json only
for new or updated models that pass, and write each verdict with its pinned sha. Unchanged models
(same sha as stored) cost no request. Each batch of verdicts is one transaction, so a crawl killed
at any moment and run again ends with the same store as an uninterrupted one.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field, replace

from tqdm import tqdm

from data.errors import EntryNotFound, FileTooLarge, HubError
from data.hub import HubClient, HubModelInfo
from data.records import ArchSignature, BaseModel, Candidate, CandidateStatus, Match, SkipReason
from data.selection import (
    aliases_of,
    is_known_size,
    is_tagged_descendant,
    listing_verdict,
    parse_config,
    relation_kind,
    screen_config,
    screen_size,
    weight_files,
)
from data.settings import Settings
from data.store import Store

logger = logging.getLogger(__name__)

TOKEN_DEPENDENT = frozenset({SkipReason.GATED.value, SkipReason.PRIVATE.value})
WRITE_BATCH = 64


@dataclass(slots=True)
class CrawlReport:
    base_id: str
    found: int = 0
    new: int = 0
    updated: int = 0
    unchanged: int = 0
    candidates: int = 0
    skipped: Counter = field(default_factory=Counter)
    failed: dict[str, str] = field(default_factory=dict)
    jobs_created: int = 0
    duration_s: float = 0.0

    def summary(self) -> str:
        skipped = ", ".join(f"{reason} {n}" for reason, n in sorted(self.skipped.items())) or "none"
        line = (
            f"{self.base_id}: found {self.found} | new {self.new} | updated {self.updated} | "
            f"unchanged {self.unchanged} | candidates {self.candidates} | skipped {sum(self.skipped.values())} "
            f"({skipped}) | failed {len(self.failed)} | jobs created {self.jobs_created} | "
            f"{self.duration_s:.1f}s"
        )
        return line


def resolve_base(base_id: str, hub: HubClient, store: Store) -> BaseModel:
    """Resolve the base on the Hub (canonical id, sha, architecture signature) and record it."""
    info = hub.model_info(base_id)
    config = parse_config(hub.read_file(info.repo_id, "config.json", info.sha))
    if not isinstance(config, dict):
        raise HubError(f"{info.repo_id}: config.json of the base model is not a JSON object")
    base = BaseModel(
        repo_id=info.repo_id,
        sha=info.sha,
        aliases=aliases_of(info.repo_id, base_id),
        signature=ArchSignature.from_config(config),
        num_params=info.num_params,
    )
    store.upsert_base(base)
    return base


def list_descendants(base: BaseModel, hub: HubClient, limit: int | None = None,
                     on_bad_item: Callable[[str, str], None] | None = None) -> dict[str, HubModelInfo]:
    """Models tagged as descendants under any alias, plus every model of the base's model_type. A listed item
    that cannot be parsed is passed to ``on_bad_item(repo_id, reason)`` and left out."""
    listed: dict[str, HubModelInfo] = {}
    queries = [[f"base_model:{alias}"] for alias in base.aliases] + [[base.signature.model_type]]
    # With a limit, each query keeps its `limit` most downloaded descendants: the base itself is listed too
    # (by its model_type, once, under its canonical id), so ask for one more and leave it out.
    per_query = None if limit is None else limit + 1
    for query in queries:
        kept = 0
        for info in hub.iter_models(filter=query, limit=per_query, on_bad_item=on_bad_item):
            if info.repo_id in base.aliases:
                continue
            listed.setdefault(info.repo_id, info)
            kept += 1
            if limit is not None and kept >= limit:
                break
    if limit is not None and len(listed) > limit:
        keep = sorted(listed.values(), key=lambda i: (-i.downloads, i.repo_id))[:limit]
        listed = {i.repo_id: i for i in keep}
    return listed


def crawl(
    base_id: str, hub: HubClient, store: Store, settings: Settings, *, limit: int | None = None,
    verbose: bool = False,
) -> CrawlReport:
    started = time.perf_counter()
    base = resolve_base(base_id, hub, store)
    report = CrawlReport(base_id=base.repo_id)
    listed = list_descendants(base, hub, limit, on_bad_item=report.failed.__setitem__)
    report.found = len(listed)
    known = store.known_verdicts(base.repo_id)

    todo, unchanged = _split_unchanged(listed, known, hub.has_token)
    report.unchanged = len(unchanged)
    store.refresh_listing_metadata(base.repo_id, [(i.repo_id, i.downloads, i.likes) for i in unchanged])
    logger.info("%s: %d listed, %d unchanged, %d to check", base.repo_id, len(listed), len(unchanged), len(todo))

    writer = _VerdictWriter(report, store, known, settings.crawl_scorers)
    progress = tqdm(total=len(todo), desc=f"crawl {base.repo_id}", unit="model", disable=not verbose)
    _check_all(todo, base, hub, settings, writer, progress)
    writer.flush()
    progress.close()
    report.duration_s = time.perf_counter() - started
    logger.info("%s", report.summary())
    return report


def _split_unchanged(listed: dict[str, HubModelInfo], known: dict[str, tuple[str, str | None]],
                     has_token: bool) -> tuple[list[HubModelInfo], list[HubModelInfo]]:
    """(to check, unchanged): a model is unchanged when stored at the same sha with a verdict that a token
    would not change."""
    todo: list[HubModelInfo] = []
    unchanged: list[HubModelInfo] = []
    for info in listed.values():
        stored = known.get(info.repo_id)
        if stored is not None and stored[0] == info.sha and not (has_token and stored[1] in TOKEN_DEPENDENT):
            unchanged.append(info)
        else:
            todo.append(info)
    return todo, unchanged


class _VerdictWriter:
    """Counts each verdict in the report and writes them to the store in batches of ``WRITE_BATCH``."""

    def __init__(self, report: CrawlReport, store: Store, known: dict[str, tuple[str, str | None]],
                 scorers: tuple[str, ...]) -> None:
        self.report, self.store, self.known, self.scorers = report, store, known, scorers
        self.pending: list[Candidate] = []

    def record(self, candidate: Candidate) -> None:
        report = self.report
        if candidate.repo_id in self.known:
            report.updated += 1
        else:
            report.new += 1
        if candidate.status is CandidateStatus.OK:
            report.candidates += 1
        else:
            report.skipped[candidate.skip_reason.value] += 1
        self.pending.append(candidate)
        if len(self.pending) >= WRITE_BATCH:
            self.flush()

    def flush(self) -> None:
        if self.pending:
            self.report.jobs_created += self.store.save_candidates(self.pending, self.scorers)
            self.pending.clear()


def _check_all(todo: list[HubModelInfo], base: BaseModel, hub: HubClient, settings: Settings,
               writer: _VerdictWriter, progress: tqdm) -> None:
    """Screen each model from its listing; fetch the config of those the listing cannot decide, in parallel."""
    report = writer.report
    with ThreadPoolExecutor(max_workers=settings.crawl_concurrency, thread_name_prefix="crawl") as pool:
        futures: dict[Future, HubModelInfo] = {}
        for info in todo:
            try:
                decided = _screen(info, base, hub.has_token, settings.max_params)
            except Exception as e:  # one hostile listing entry never stops the crawl
                _record_failure(report, info.repo_id, e)
                progress.update()
                continue
            if decided is not None:
                writer.record(decided)
                progress.update()
            else:
                futures[pool.submit(_check_config, info, base, hub, settings.max_params)] = info
        for future in as_completed(futures):
            info = futures[future]
            try:
                writer.record(future.result())
            except Exception as e:  # one hostile repo never stops the crawl: it is reported, the rest stored
                _record_failure(report, info.repo_id, e)
            progress.update()


def make_candidate(info: HubModelInfo, base: BaseModel, skip: SkipReason | None = None) -> Candidate:
    """The candidate a listing makes for ``base``: OK, or SKIPPED with ``skip``."""
    has_safetensors, _ = weight_files(info.filenames or ())
    return Candidate(
        repo_id=info.repo_id,
        base_id=base.repo_id,
        sha=info.sha,
        kind=relation_kind(info.tags),
        match=Match.TAG if is_tagged_descendant(info.tags, base.aliases) else Match.CONFIG,
        status=CandidateStatus.OK if skip is None else CandidateStatus.SKIPPED,
        skip_reason=skip,
        downloads=info.downloads,
        likes=info.likes,
        license=info.license,
        tags=info.tags,
        pipeline_tag=info.pipeline_tag,
        last_modified=info.last_modified,
        num_params=info.num_params,
        has_safetensors=has_safetensors,
    )


def _screen(info: HubModelInfo, base: BaseModel, has_token: bool, max_params: int) -> Candidate | None:
    """A verdict from the listing alone, or None when config.json must be read."""
    if info.sha is None or info.filenames is None:
        return None  # the listing lacked what we need: _check_config asks for it
    skip = listing_verdict(info, has_token=has_token, max_params=max_params)
    return None if skip is None else make_candidate(info, base, skip)


def _record_failure(report: CrawlReport, repo_id: str, error: Exception) -> None:
    """A model the crawl could not judge: reported (not stored, so the next crawl tries it again)."""
    if isinstance(error, HubError):
        logger.warning("%s: %s", repo_id, error)
        report.failed[repo_id] = str(error)
    else:
        logger.exception("%s: unexpected %s while checking it", repo_id, type(error).__name__)
        report.failed[repo_id] = f"unexpected {type(error).__name__}: {str(error)[:200]}"


def _check_config(info: HubModelInfo, base: BaseModel, hub: HubClient, max_params: int) -> Candidate:
    """Read config.json at the listed sha and give the final verdict; a size the listing did not give is read
    from the safetensors headers."""
    if info.sha is None or info.filenames is None:
        info = hub.model_info(info.repo_id)
        early = _screen(info, base, hub.has_token, max_params)
        if early is not None:
            return early
    try:
        raw = hub.read_file(info.repo_id, "config.json", info.sha)
    except EntryNotFound:
        return make_candidate(info, base, SkipReason.NO_CONFIG)
    except FileTooLarge as e:
        logger.info("%s", e)
        return make_candidate(info, base, SkipReason.INVALID_CONFIG)
    skip = screen_config(parse_config(raw), base.signature)
    if skip is None and not is_known_size(info.num_params):
        info = replace(info, num_params=hub.count_parameters(info.repo_id, info.sha))
        skip = screen_size(info.num_params, max_params)
    return make_candidate(info, base, skip)
