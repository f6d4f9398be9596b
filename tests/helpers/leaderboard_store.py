"""A small store with a crawled base, candidates with Hub metadata, and scores with known answers."""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Mapping
from dataclasses import replace
from pathlib import Path

from data.records import ArchSignature, BaseModel, Candidate, CandidateStatus, Kind, Match, Score
from data.store import Store

BASE = "org/base"
SIG = ArchSignature(model_type="bert", hidden_size=32, num_hidden_layers=2, num_attention_heads=2, vocab_size=205)
EVIL = "<img src=x onerror=alert(1)>"
# repo -> ({target: [seed scores]}, probe, free energy, downloads, license)
MODELS = {
    "alice/strong": ({"sst2": [0.90], "trec": [0.80]}, 0.70, 1000.0, 500, "mit"),
    "bob/middling": ({"sst2": [0.86], "trec": [0.74]}, 0.60, 1100.0, 50, "apache-2.0"),
    "carol/weak": ({"sst2": [0.70], "trec": [0.60]}, 0.40, 1300.0, 5, "mit"),
    "dave/partial": ({"sst2": [0.95]}, 0.80, None, 7000, None),
    EVIL: ({"sst2": [0.85], "trec": [0.75]}, 0.50, 1200.0, 1, "mit"),
}
# parameter counts, one model per size bucket of the leaderboard's size filter; dave/partial has none (unknown)
PARAMS = {"alice/strong": 110_000_000, "bob/middling": 30_000_000, "carol/weak": 300_000_000, EVIL: 1_500_000_000}
BASE_RUNS = {"sst2": [0.84, 0.86, 0.85], "trec": [0.72, 0.74, 0.73]}  # means 0.85, 0.73
# A candidate's listed score is its mean over three seeds: each seed runs as the base's run on that seed (shared
# head init and data order) plus the gain, plus this noise of its own; so each paired seed gains the listed
# score minus the base's mean ± 0.002. The 95% interval pools the seed variance within targets (ranking/gains.py):
# on two targets ± t_4 · √(0.002² · 2/3) / 2 ≈ ± 0.0023, on one ± t_2 · 0.002 / √3 ≈ ± 0.005.
SEED_NOISE = (0.002, -0.002, 0.0)
# build_store(path, tags=TRAINED_ON): alice/strong's card says it was trained on sst2, a suite target. Its mean gain
# leaves sst2 out by default: +7.00 points (trec: 0.80 - 0.73), interval ± t_2 · 0.002 / √3 ≈ ± 0.50; with the
# targets it was trained on included it is the plain mean, +6.00 ((5.00 + 7.00) / 2), interval ± 0.23.
TRAINED_ON = {"alice/strong": ("transformers", "dataset:sst2")}
SUSPECT = {("alice/strong", "sst2")}


def candidate_runs(target: str, score: float) -> list[tuple[int, float]]:
    """(seed, value) of a candidate whose mean score on ``target`` is ``score``."""
    runs = BASE_RUNS[target]
    return [(s, score + runs[s] - sum(runs) / len(runs) + SEED_NOISE[s]) for s in range(len(runs))]


def sha(text: str) -> str:
    return hashlib.sha1(text.encode()).hexdigest()


def build_store(path: Path, *, tags: Mapping[str, tuple[str, ...]] | None = None,
                suspect: Collection[tuple[str, str]] = ()) -> Store:
    """The known-answer store; ``tags``: repo -> its Hub tags (a card's ``dataset:X`` marks X as trained on);
    ``suspect``: (repo, target) cells stored with status "suspect" (SUSPECT: alice/strong's sst2 as a suspect cell
    gives it a mean gain of +7.00 points by default, trec's alone, and +6.00 with suspect cells included)."""
    store = Store(path)
    store.upsert_base(BaseModel(repo_id=BASE, sha=sha(BASE), aliases=(BASE,), signature=SIG))
    store.save_candidates([
        Candidate(repo_id=repo, base_id=BASE, sha=sha(repo), kind=Kind.FINETUNE, match=Match.TAG,
                  status=CandidateStatus.OK, downloads=downloads, likes=1, license=license_,
                  num_params=PARAMS.get(repo), tags=(tags or {}).get(repo, ()))
        for repo, (_, _, _, downloads, license_) in MODELS.items()
    ])
    scores = [Score(repo_id=BASE, revision=sha(BASE), scorer="intertraining", metric="target_score", target=t,
                    seed=seed, value=v, config_hash="ft1", base_id=BASE)
              for t, values in BASE_RUNS.items() for seed, v in enumerate(values)]
    for repo, (targets, probe, free_energy, _, _) in MODELS.items():
        scores += [Score(repo_id=repo, revision=sha(repo), scorer="intertraining", metric="target_score", target=t,
                         seed=seed, value=value, config_hash="ft1", base_id=BASE)
                   for t, values in targets.items() for seed, value in candidate_runs(t, values[0])]
        scores.append(Score(repo_id=repo, revision=sha(repo), scorer="linear_probe", metric="probe_accuracy",
                            target="nli", value=probe, config_hash="lp1", base_id=BASE))
        if free_energy is not None:
            scores += [
                Score(repo_id=repo, revision=sha(repo), scorer="free_energy", metric="free_energy",
                      value=free_energy, config_hash="fe1", base_id=BASE,
                      extra={"per_chain": [4.0, 5.0, 6.0], "nbeta": 123.4}),
                Score(repo_id=repo, revision=sha(repo), scorer="free_energy", metric="llc_mean", value=5.0,
                      config_hash="fe1", base_id=BASE),
            ]
    store.add_scores([replace(s, status="suspect") if (s.repo_id, s.target) in set(suspect) else s for s in scores])
    return store
