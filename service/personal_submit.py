"""Queueing a personal ranking: the checks, the models it will score and the store write, without torch, so the web
process can call it.

A request scores either the base and its top K of the general leaderboard, or the models a user names (Hub ids and
local folders, ``service/personal_models.py``), the base always among them. Before anything is queued the models
that cannot be fetched now (not in this machine's cache while the Hub cannot be reached, or a study checkpoint whose
weights are absent) are found: they are kept in the request's summary, said to the user, and the request is refused
when fewer than two models would be left. ``service/personal.py`` (which imports torch to score) re-exports these.
"""

from __future__ import annotations

from dataclasses import dataclass

from data.errors import LeaderboardError
from data.records import PersonalRequest
from data.settings import Settings
from data.store import Store
from data.user_data import UserData
from service.personal_models import ModelNameError, NamedModel, named_models, not_fetchable

MAX_TOP_K = 50
MIN_MODELS = 2  # a ranking of fewer is no ranking
START_WORKER = "python -m scoring work"  # what a user runs when no worker takes a queued ranking


class PersonalError(LeaderboardError, ValueError):
    """A personal ranking that cannot run: an unknown base, a bad K, a base with no scored candidates."""


@dataclass(frozen=True, slots=True)
class Candidate:
    """One model of a personal ranking, as its entry shows it. ``revision``: the pinned commit, a local folder's
    weights digest once read, or None (a named Hub id: its main branch until fetched)."""

    repo_id: str
    revision: str | None
    role: str  # "base" or "candidate"
    general_rank: int | None  # its rank on the general leaderboard (None: the base, or not ranked there)
    mean_gain: float | None
    source: str = "hub"  # "hub" or "local" (a folder: its path is kept apart and never shown)


@dataclass(frozen=True, slots=True)
class Pick:
    """A candidate and where its weights are (``where.path`` for a local folder)."""

    candidate: Candidate
    where: NamedModel


def board_picks(store: Store, base_id: str, top_k: int) -> list[Pick]:
    """The base at its stored sha, then the top ``top_k`` ranked rows of its general leaderboard."""
    base, board = _base_and_board(store, base_id)
    out = [_base_pick(base)]
    for row in board.head(top_k).itertuples():
        rank, gain = _place(row)  # rank None: listed but unranked (no mean gain on the board)
        out.append(Pick(Candidate(str(row.repo_id), str(row.revision), "candidate", rank, gain),
                        NamedModel(str(row.repo_id), revision=str(row.revision))))
    return out


def named_picks(store: Store, base_id: str, models: tuple[dict, ...]) -> list[Pick]:
    """The models a request names, the base first (at its stored sha, added when not named), each with its place
    on the base's general board when it has one."""
    base, board = _base_and_board(store, base_id)
    known = {str(r.repo_id): r for r in board.itertuples()}
    out = [_base_pick(base)]
    for item in models:
        model = NamedModel.from_json(item)
        if not model.is_local and model.name in (base.repo_id, *base.aliases) and model.revision is None:
            continue  # the base, already first
        row = None if model.is_local else known.get(model.name)
        rank, gain = _place(row) if row is not None else (None, None)
        out.append(Pick(Candidate(model.name, model.revision, "candidate", rank, gain,
                                  "local" if model.is_local else "hub"), model))
    return out


def _base_and_board(store: Store, base_id: str):
    """The base's record and the rows of its general leaderboard, in board order."""
    from ranking.leaderboard import leaderboard_from
    from service.boards import read_board

    base = _base(store, base_id)
    return base, leaderboard_from(read_board(store, base.repo_id)).rows


def _base_pick(base) -> Pick:
    return Pick(Candidate(base.repo_id, base.sha, "base", None, 0.0), NamedModel(base.repo_id, revision=base.sha))


def _place(row) -> tuple[int | None, float | None]:
    """A board row's (rank, mean gain), None where the board has none."""
    import pandas as pd

    gain = getattr(row, "mean_gain", None)
    return (None if pd.isna(row.rank) else int(row.rank),
            None if gain is None or pd.isna(gain) else float(gain))


def picks_of(store: Store, request: PersonalRequest) -> list[Pick]:
    if request.models:
        return named_picks(store, request.base_id, request.models)
    return board_picks(store, request.base_id, request.top_k)


def _base(store: Store, base_id: str):
    base = store.get_base(base_id)
    if base is None:
        raise PersonalError(f"There is no base model {base_id!r} on the leaderboard; pick one of the listed bases.")
    return base


def submit(store: Store, settings: Settings, *, base_id: str, data: UserData, top_k: int | None = None,
           models: str | list[str] | None = None, any_path: bool = False) -> PersonalRequest:
    """Queue a personal ranking of ``data`` across the base and its top K (``settings.personal_top_k``), or across
    the ``models`` named (with the base). ``any_path``: a local folder may be anywhere (the command line), else
    only ``./NAME`` in ``settings.models_dir`` (the app). Raises PersonalError (one sentence) and queues nothing
    when a name is bad or fewer than two models can be fetched now."""
    k = settings.personal_top_k if top_k is None else top_k
    if not 0 <= k <= MAX_TOP_K:
        raise PersonalError(f"The number of candidates must be between 0 and {MAX_TOP_K}, got {k}.")
    base = _base(store, base_id)
    try:
        named = named_models(models or [], local_root=settings.models_dir, any_path=any_path)
    except ModelNameError as e:
        raise PersonalError(str(e)) from e
    request_models = tuple(m.to_json() for m in named)
    picks = named_picks(store, base.repo_id, request_models) if named else board_picks(store, base.repo_id, k)
    if len(picks) < MIN_MODELS:
        raise PersonalError("Name at least one model besides the base: a ranking needs two." if named else
                            f"{base.repo_id} has no ranked candidates yet: name the models to rank instead.")
    missing = not_fetchable(settings, [(p.where.name, p.where.revision) for p in picks if not p.where.is_local])
    if len(picks) - len(missing) < MIN_MODELS:
        raise PersonalError(f"Only {len(picks) - len(missing)} of the {len(picks)} models can be fetched now "
                            f"({unfetchable_sentence(missing)}); a ranking needs two.")
    summary = {"rows": data.num_rows, "classes": data.class_counts(), "pair": data.pairs is not None,
               "models": len(picks), "not_fetchable": missing}
    return store.requests.create_personal(base_id=base.repo_id, data_hash=data.data_hash, rows_json=data.to_json(),
                                 source=data.source, summary=summary, top_k=k if not named else 0,
                                 ttl_s=settings.personal_ttl_s, rows_max_s=settings.personal_rows_max_s,
                                 models=request_models)


def unfetchable_sentence(missing: dict[str, str]) -> str:
    """"a and b: not in this server's cache, …" — the models grouped by their reason, in one clause."""
    by_reason: dict[str, list[str]] = {}
    for name, reason in missing.items():
        by_reason.setdefault(reason, []).append(name)
    return "; ".join(f"{', '.join(names)}: {reason}" for reason, names in by_reason.items())
