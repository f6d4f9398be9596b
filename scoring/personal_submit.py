"""Queueing a personal ranking: the checks and the store write, without torch, so the web process can call it.

``scoring/personal.py`` (which imports torch to score) re-exports these; the app imports this module only.
"""

from __future__ import annotations

from data.errors import LeaderboardError
from data.records import PersonalRequest
from data.settings import Settings
from data.store import Store
from data.user_data import UserData

MAX_TOP_K = 50


class PersonalError(LeaderboardError, ValueError):
    """A personal ranking that cannot run: an unknown base, a bad K, a base with no scored candidates."""


def submit(store: Store, settings: Settings, *, base_id: str, data: UserData, top_k: int | None = None
           ) -> PersonalRequest:
    """Queue a personal ranking of ``data`` across the base and its top K (``settings.personal_top_k``)."""
    k = settings.personal_top_k if top_k is None else top_k
    if not 0 <= k <= MAX_TOP_K:
        raise PersonalError(f"The number of candidates must be between 0 and {MAX_TOP_K}, got {k}.")
    base = store.get_base(base_id)
    if base is None:
        raise PersonalError(f"There is no base model {base_id!r} on the leaderboard; pick one of the listed bases.")
    summary = {"rows": data.num_rows, "classes": data.class_counts(), "pair": data.pairs is not None}
    return store.create_personal(base_id=base.repo_id, data_hash=data.data_hash, rows_json=data.to_json(),
                                 source=data.source, summary=summary, top_k=k, ttl_s=settings.personal_ttl_s,
                                 rows_max_s=settings.personal_rows_max_s)
