"""A personal ranking's table: per-estimator ranks, the general rank beside them, and the combined rank. Pure.

Input: one ``data.personal_record.RankedModel`` per model, as service/personal.py scores them (its estimates, or the
error that left it without); output: the ``PersonalRanking`` record. Every estimator's higher value is better.
"""

from __future__ import annotations

import io
import json
from collections.abc import Sequence
from dataclasses import replace

import pandas as pd

from data.personal_record import PersonalRanking, RankedModel

COMBINED_RULE = ("Combined rank: the mean of a model's ranks under each estimator whose estimate passed its checks "
                 "and, for a model with a mean gain on the general leaderboard (the base at gain 0), of its general "
                 "rank among those models, lowest first; a tie goes to the better general rank. Each estimator and "
                 "the general leaderboard have one vote; a model the general leaderboard has no gain for (a local "
                 "folder, a model it has not scored) has no general vote; a model with no passing estimate gets no "
                 "combined rank.")


def general_positions(entries: Sequence[RankedModel]) -> list[int | None]:
    """Each model's place among the models with a general mean gain (the base at 0), highest gain first; None for
    a model without one."""
    with_gain = sorted((i for i, e in enumerate(entries) if e.gain is not None),
                       key=lambda i: (-entries[i].gain, entries[i].general_rank or 0, entries[i].repo_id))
    places: list[int | None] = [None] * len(entries)
    for place, i in enumerate(with_gain, start=1):
        places[i] = place
    return places


def estimator_ranks(entries: Sequence[RankedModel], name: str) -> list[int | None]:
    """Ranks (1 = highest value, ties share the better rank) among the models whose ``name`` estimate is ok."""
    values = [e.estimates.get(name) for e in entries]
    ok = [v.value if v is not None and v.ok else None for v in values]
    scored = sorted(x for x in ok if x is not None)
    return [None if x is None else 1 + sum(1 for y in scored if y > x) for x in ok]


def combined_ranks(entries: Sequence[RankedModel], names: list[str]) -> list[int | None]:
    """The rule of ``COMBINED_RULE``."""
    general = general_positions(entries)
    per = [estimator_ranks(entries, n) for n in names]
    means = []
    for i in range(len(entries)):
        votes = [r[i] for r in per if r[i] is not None]
        general_vote = [general[i]] if general[i] is not None else []
        means.append(sum(votes + general_vote) / len(votes + general_vote) if votes else None)
    last = len(entries) + 1
    order = sorted((i for i, m in enumerate(means) if m is not None),
                   key=lambda i: (means[i], general[i] or last, entries[i].repo_id))
    ranks: list[int | None] = [None] * len(entries)
    for place, i in enumerate(order, start=1):
        ranks[i] = place
    return ranks


def personal_result(entries: Sequence[RankedModel], *, metrics: dict[str, str], protocols: dict[str, str],
                    base_id: str, source: str, summary: dict) -> PersonalRanking:
    """The stored ranking: the entries with their places, ordered by combined rank (unranked last). ``metrics``:
    estimator name -> the metric it writes, in column order; ``protocols``: name -> its protocol hash."""
    names = list(metrics)
    general, combined = general_positions(entries), combined_ranks(entries, names)
    ranks = {n: estimator_ranks(entries, n) for n in names}
    models = [replace(e, general_position=general[i], combined_rank=combined[i],
                      ranks={n: ranks[n][i] for n in names}) for i, e in enumerate(entries)]
    models.sort(key=lambda m: (m.combined_rank is None, m.combined_rank or 0,
                               m.general_position or len(models) + 1, m.repo_id))
    return PersonalRanking(base_id=base_id, source=source, summary=summary, estimators=metrics, protocols=protocols,
                           rule=COMBINED_RULE, models=tuple(models))


def personal_frame(result: PersonalRanking) -> pd.DataFrame:
    """One row per model: combined rank, model, role, general rank and gain, each estimator's value, rank and status."""
    rows = []
    for m in result.models:
        row = {"combined_rank": m.combined_rank, "repo_id": m.repo_id, "revision": m.revision, "role": m.role,
               "general_rank": m.general_position, "mean_gain": m.mean_gain}
        for name, metric in result.estimators.items():
            est = m.estimates.get(name)
            row[metric] = est.value if est is not None and est.ok else None
            row[f"{metric}_rank"] = m.ranks.get(name)
            row[f"{metric}_status"] = est.status if est is not None else "not run"
            if est is not None and est.error:
                row[f"{metric}_status"] += f": {est.error}"
        row["error"] = m.error
        row["seconds"] = m.seconds
        rows.append(row)
    frame = pd.DataFrame(rows)
    for column in ("combined_rank", "general_rank", *[c for c in frame if c.endswith("_rank")]):
        frame[column] = frame[column].astype("Int64")
    return frame


def personal_csv(result: PersonalRanking) -> bytes:
    """The table as CSV; a text cell a spreadsheet would read as a formula opens as text (ranking/export.py)."""
    from ranking.export import to_csv

    return to_csv(personal_frame(result))


def personal_json(result: PersonalRanking) -> bytes:
    """The whole stored ranking (diagnostics included), as JSON."""
    buffer = io.StringIO()
    json.dump(result.to_json(), buffer, indent=1, allow_nan=False)
    return buffer.getvalue().encode()
