"""Stores shaped like the offline study's: a base, candidates named after their source dataset (``dataset:``
tag), intertraining target scores with planted gains, and optionally probe, free energy, guided dropout
and sample-efficiency scores. The planted numbers are the known answers of the study-report tests."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path

from data.records import ArchSignature, BaseModel, Candidate, CandidateStatus, Kind, Match, Score
from data.store import Store
from scoring.config import QUICK, IntertrainingConfig

BASE = "org/mini-base"
SIG = ArchSignature(model_type="bert", hidden_size=32, num_hidden_layers=2, num_attention_heads=2, vocab_size=205)
BASE_SCORES = {"mrpc": 0.70, "rte": 0.55, "sick": 0.60, "sst2": 0.85, "trec": 0.75}  # base means per target
SEED_OFFSETS = (-0.01, 0.0, 0.01)  # the base's three seeds: mean exactly BASE_SCORES, variance 1e-4
# each candidate runs the base's three seeds: the base's run on that seed + the planted gain + this noise of its
# own, so a paired seed gains the planted gain ± 0.003 and the 95% interval is ± t_2 · 0.003 / √3 ≈ ± 0.0075
SEED_NOISE = (0.003, -0.003, 0.0)


def sha(text: str) -> str:
    return hashlib.sha1(text.encode()).hexdigest()


def repo_of(source: str) -> str:
    return f"study/mini-base-{source}"


def protocol(targets: Sequence[str], dropout: str = "standard") -> tuple[str, str]:
    """(config_hash, config_json) of an intertraining protocol, as the scorer writes them."""
    from data.settings import Settings
    from scoring import registry

    cfg = IntertrainingConfig(finetune=replace(QUICK, dropout=dropout))
    proto = registry.build("intertraining", Settings(), config=cfg).protocol(sorted([t, sha(t)] for t in targets))
    return proto.hash, proto.json


def target_scores(repo_id: str, scores: Mapping[str, float], *, seeds: Sequence[int] = (0,), dropout="standard",
                  shift: Mapping[tuple[str, int], float] | None = None) -> list[Score]:
    """One intertraining target score per target and seed (``shift`` adds to a (target, seed) run)."""
    chash, cjson = protocol(sorted(BASE_SCORES), dropout)
    return [Score(repo_id=repo_id, revision=sha(repo_id), scorer="intertraining", metric="target_score", target=t,
                  seed=seed, value=value + (shift or {}).get((t, seed), 0.0), config_hash=chash, config_json=cjson,
                  base_id=BASE, extra={"dataset_revision": sha(t)})
            for t, value in scores.items() for seed in seeds]


def build_study_store(path: Path, gains: Mapping[str, Mapping[str, float]], *, tagged: bool = True,
                      probe: Mapping[str, float] | None = None, free_energy: Mapping[str, float] | None = None,
                      extra_scores: Sequence[Score] = ()) -> Store:
    """``gains``: {source: {target: gain as a fraction}}; a candidate lacking a target has no score there."""
    store = Store(path)
    store.upsert_base(BaseModel(repo_id=BASE, sha=sha(BASE), aliases=(BASE,), signature=SIG))
    store.save_candidates([
        Candidate(repo_id=repo_of(source), base_id=BASE, sha=sha(repo_of(source)), kind=Kind.FINETUNE,
                  match=Match.TAG, status=CandidateStatus.OK,
                  tags=("transformers", f"dataset:{source}") if tagged else ("transformers",))
        for source in gains
    ])
    chash, cjson = protocol(sorted(BASE_SCORES))
    scores = [Score(repo_id=BASE, revision=sha(BASE), scorer="intertraining", metric="target_score", target=t,
                    seed=seed, value=mean + offset, config_hash=chash, config_json=cjson, base_id=BASE)
              for t, mean in BASE_SCORES.items() for seed, offset in enumerate(SEED_OFFSETS)]
    for source, row in gains.items():
        repo = repo_of(source)
        scores += target_scores(repo, {t: BASE_SCORES[t] + g for t, g in row.items()}, seeds=range(len(SEED_NOISE)),
                                shift={(t, s): SEED_OFFSETS[s] + SEED_NOISE[s] for t in row for s in range(3)})
        if probe and source in probe:
            scores.append(Score(repo_id=repo, revision=sha(repo), scorer="linear_probe", metric="probe_accuracy",
                                target="nli", value=probe[source], config_hash="lp1", base_id=BASE))
        if free_energy and source in free_energy:
            scores.append(Score(repo_id=repo, revision=sha(repo), scorer="free_energy", metric="free_energy",
                                value=free_energy[source], config_hash="fe1", base_id=BASE))
    store.add_scores([*scores, *extra_scores])
    return store
