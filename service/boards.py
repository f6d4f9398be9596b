"""What a leaderboard and a study report are built from, read from the store as frames and records.

The ranking layer is pure (ranking/ never reads the store); the service (its CLIs, the study) and the page's board
cache (ui/board_cache.py) read with these functions and hand the result to ``ranking.leaderboard.leaderboard_from``
and ``ranking.study_report.study_report``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd

from data.metrics import METADATA_COLUMNS, PROJECT_SOURCE, PUBLISHED_SOURCE
from data.payloads import PublishedRow, payload_of
from data.published import BASELINE_REVISION
from data.records import Candidate, CandidateStatus, Score
from data.selection import aliases_of, canonical_id
from data.store import ScoreRow, Store
from data.targets import PUBLISHED_SUITE


@dataclass(frozen=True, slots=True, kw_only=True)
class BoardData:
    """The inputs of one leaderboard: the scores of one (base, source) as a frame with named columns
    (``data.store.ScoreRow`` fields), the metadata frame indexed by repo_id, and who the base is."""

    base_id: str
    source: str
    aliases: tuple[str, ...]
    scores: pd.DataFrame
    metadata: pd.DataFrame | None
    baseline_revision: str | None
    seed_design: str  # "paired": the project's runs share seeds with the base's; "independent": published runs
    seen: dict[str, frozenset[str]]  # repo_id -> the targets its model card says it was trained on


@dataclass(frozen=True, slots=True, kw_only=True)
class StudyData:
    """The records a study report reads beside its leaderboard: the base's project scores and candidates."""

    scores: tuple[Score, ...]
    candidates: tuple[Candidate, ...]


def list_boards(store: Store) -> list[tuple[str, str, int]]:
    """(base_id, source, models scored) for every leaderboard with scores; crawled bases with none, as 0."""
    found = {(base, source): n for base, source, n in store.score_summary() if base}
    for base in store.bases():
        if not any(b == base.repo_id for b, _ in found):
            found[(base.repo_id, PROJECT_SOURCE)] = 0
    return sorted((b, s, n) for (b, s), n in found.items())


def read_board(store: Store, base_id: str, source: str = PROJECT_SOURCE) -> BoardData:
    """Everything ``leaderboard_from`` needs for ``base_id`` (a legacy id or alias names the same board)."""
    base = store.get_base(base_id)
    canonical = base.repo_id if base else canonical_id(base_id)
    if source == PUBLISHED_SOURCE:
        metadata = published_metadata(store, canonical)
    else:
        metadata = candidate_metadata(store, canonical) if base else None
    rows = store.score_rows(base_id=canonical, source=source)
    targets = {r.target for r in rows if r.metric == "target_score"}
    seen = {c.repo_id: trained_targets(c.tags, targets) for c in store.candidates(canonical)} if base else {}
    return BoardData(base_id=canonical, source=source, aliases=tuple(base.aliases if base else aliases_of(canonical)),
                     scores=pd.DataFrame.from_records(rows, columns=list(ScoreRow._fields)),
                     metadata=metadata, baseline_revision=BASELINE_REVISION if source == PUBLISHED_SOURCE else None,
                     seed_design="independent" if source == PUBLISHED_SOURCE else "paired",
                     seen={repo: names for repo, names in seen.items() if names})


def read_study(store: Store, base_id: str) -> StudyData:
    """The base's project scores and its crawled (OK) candidates."""
    base = store.get_base(base_id)
    canonical = base.repo_id if base else canonical_id(base_id)
    return StudyData(scores=tuple(store.scores(base_id=canonical, source=PROJECT_SOURCE)),
                     candidates=tuple(store.candidates(canonical, CandidateStatus.OK)))


def candidate_metadata(store: Store, base_id: str) -> pd.DataFrame:
    """Hub metadata of the crawled candidates of a base, indexed by repo_id (with ``sha``)."""
    candidates = [c for c in store.candidates(base_id) if c.status is CandidateStatus.OK]
    return metadata_frame(candidates)


def metadata_frame(candidates: Sequence[Candidate]) -> pd.DataFrame:
    frame = pd.DataFrame(
        {
            "sha": [c.sha for c in candidates],
            "downloads": [c.downloads for c in candidates],
            "likes": [c.likes for c in candidates],
            "license": [c.license for c in candidates],
            "num_params": [c.num_params for c in candidates],
            "last_modified": [c.last_modified.date().isoformat() if c.last_modified else None for c in candidates],
            "pipeline_tag": [c.pipeline_tag for c in candidates],
        },
        index=pd.Index([c.repo_id for c in candidates], name="repo_id"),
    )
    return frame.reindex(columns=["sha", *METADATA_COLUMNS])


def published_metadata(store: Store, base_id: str) -> pd.DataFrame:
    """What IBM's 2023 results recorded beside each model (parameter count, last modified), read from the
    payload of its probe score (the import stores it there), indexed by repo_id like ``candidate_metadata``.
    No ``sha``: a 2023 row is not a Hub revision. A model whose row has no probe score has no metadata here."""
    seen: dict[str, tuple] = {}
    for score in store.scores(base_id=base_id, source=PUBLISHED_SOURCE, scorer="linear_probe"):
        if score.repo_id not in seen and score.extra:
            row: PublishedRow = payload_of(score)  # type: ignore[assignment] (source published: a PublishedRow)
            seen[score.repo_id] = (row.num_params, row.last_modified[:10] if row.last_modified else None)
    frame = pd.DataFrame(list(seen.values()), columns=["num_params", "last_modified"],
                         index=pd.Index(list(seen), name="repo_id"))
    return frame.reindex(columns=list(METADATA_COLUMNS))


def trained_targets(tags: Sequence[str], targets: set[str]) -> frozenset[str]:
    """The targets a model was trained on, by its card's ``datasets:`` metadata (the Hub's ``dataset:X`` tags):
    a tag naming the target (``sst2``, ``stanfordnlp/sst2``), or the Hub dataset a target lives in
    (``nyu-mll/glue`` names every GLUE target: which of its tasks was used is unknown, so all are flagged)."""
    named = {t[len("dataset:"):].lower() for t in tags if t.lower().startswith("dataset:")}
    if not named:
        return frozenset()
    seen = {t for t in targets if t.lower() in named or t.lower() in {n.rsplit("/", 1)[-1] for n in named}}
    for spec in PUBLISHED_SUITE:
        hub = spec.hub_id.lower()
        if spec.name in targets and hub and (hub in named or hub.rsplit("/", 1)[-1] in named):
            seen.add(spec.name)
    return frozenset(seen)
