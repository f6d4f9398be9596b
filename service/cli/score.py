"""python -m scoring score REPO_ID: score one model against its base and store the scores."""

from __future__ import annotations

import argparse

from data.settings import Settings
from data.store import Store
from service.cli import common


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser("score", help="score one model against its base and store the scores")
    p.add_argument("repo_id", help=common.MODEL_HELP)
    p.add_argument("--scorer", default="intertraining")
    p.add_argument("--base", help="the base model (Hub id or directory); default: the crawled candidate's base")
    p.add_argument("--name", help="repo id to record for a local candidate directory")
    p.add_argument("--base-name", help="repo id to record for a local base directory")
    common.add_scoring_options(p)
    return p


def run(args: argparse.Namespace, settings: Settings) -> int:
    from scoring.base import ScoringJob

    store = Store(settings.db_path)
    repo_id, revision, model_dir = common.resolve_model(args.repo_id, settings, args.name)
    base_ref = args.base
    if base_ref is None:
        candidate = store.get_candidate(repo_id)
        if candidate is None:
            return common.usage_error(f"{repo_id} is not a crawled candidate; say which base it descends from "
                                      "with --base")
        base_ref = candidate.base_id
    base_id, base_revision, base_dir = common.resolve_model(base_ref, settings, args.base_name)
    job = ScoringJob(repo_id=repo_id, revision=revision, model_dir=model_dir, base_id=base_id,
                     base_revision=base_revision, base_dir=base_dir)
    scorer = common.make_scorer(args.scorer, args, settings)
    scores = scorer.score(job, common.scoring_context(args, settings, store))
    store.add_scores(scores)
    print(f"{len(scores)} scores for {repo_id}@{revision[:8]} (and its base {base_id}) written to {settings.db_path}")
    print(common.summary_table(store, base_id, repo_id, revision))
    return 0
