"""The one adapter between the store and the pure ranking functions: load a leaderboard's inputs."""

from __future__ import annotations

import pandas as pd

from data.metrics import PROJECT_SOURCE, PUBLISHED_SOURCE
from data.published import BASELINE_REVISION
from data.records import CandidateStatus
from data.selection import aliases_of, canonical_id
from data.store import Store
from ranking.leaderboard import METADATA_COLUMNS, Leaderboard, build_leaderboard, scores_frame


def available_leaderboards(store: Store) -> list[tuple[str, str, int]]:
    """(base_id, source, models scored) for every leaderboard with scores; crawled bases with none, as 0."""
    found = {(base, source): n for base, source, n in store.score_summary() if base}
    for base in store.bases():
        if not any(b == base.repo_id for b, _ in found):
            found[(base.repo_id, PROJECT_SOURCE)] = 0
    return sorted((b, s, n) for (b, s), n in found.items())


def candidate_metadata(store: Store, base_id: str) -> pd.DataFrame:
    """Hub metadata of the crawled candidates of a base, indexed by repo_id (with ``sha``)."""
    candidates = [c for c in store.candidates(base_id) if c.status is CandidateStatus.OK]
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
    """What IBM's 2023 results recorded beside each model (parameter count, last modified), read from the extras
    of its probe score (the import stores them there), indexed by repo_id like ``candidate_metadata``. No
    ``sha``: a 2023 row is not a Hub revision. A model whose row has no probe score has no metadata here."""
    seen: dict[str, tuple] = {}
    for score in store.scores(base_id=base_id, source=PUBLISHED_SOURCE, scorer="linear_probe"):
        if score.repo_id not in seen and score.extra:
            modified = score.extra.get("last_modified")
            seen[score.repo_id] = (score.extra.get("num_params"), str(modified)[:10] if modified else None)
    frame = pd.DataFrame(list(seen.values()), columns=["num_params", "last_modified"],
                         index=pd.Index(list(seen), name="repo_id"))
    return frame.reindex(columns=list(METADATA_COLUMNS))


def load_leaderboard(store: Store, base_id: str, source: str = PROJECT_SOURCE, *, sort_by: str = "mean_gain",
                     config_hashes: dict[str, str] | None = None) -> Leaderboard:
    base = store.get_base(base_id)
    canonical = base.repo_id if base else canonical_id(base_id)
    aliases = base.aliases if base else aliases_of(canonical)
    scores = scores_frame(store.score_rows(base_id=canonical, source=source))
    if source == PUBLISHED_SOURCE:
        metadata = published_metadata(store, canonical)
    else:
        metadata = candidate_metadata(store, canonical) if base else None
    return build_leaderboard(scores, base_id=canonical, source=source, base_aliases=aliases, metadata=metadata,
                             config_hashes=config_hashes, sort_by=sort_by,
                             baseline_revision=BASELINE_REVISION if source == PUBLISHED_SOURCE else None)
