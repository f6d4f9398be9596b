"""python -m scoring dropout-study REPO_ID: guided vs standard dropout on the same targets, fractions of the
training sets and seeds."""

from __future__ import annotations

import argparse
from pathlib import Path

from data.settings import Settings
from service.cli.common import MODEL_HELP, PROFILES, add_run_flags, resolve_model, usage_error


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser("dropout-study", help="guided vs standard dropout on the same targets, fractions "
                              "and seeds")
    p.add_argument("repo_id", help=MODEL_HELP)
    p.add_argument("--targets", default="rte,mrpc", help="suite spec (default rte,mrpc)")
    p.add_argument("--fractions", default="0.1,0.5", help="fractions of each training set")
    p.add_argument("--profile", default="quick", choices=PROFILES)
    p.add_argument("--local-root", type=Path)
    add_run_flags(p)
    p.add_argument("--seeds", type=int, default=3)
    p.set_defaults(base_seeds=1)
    return p


def run(args: argparse.Namespace, settings: Settings) -> int:
    from scoring.config import profile
    from service.dropout_study import run_study

    _, _, model_dir = resolve_model(args.repo_id, settings)
    fractions = [float(f) for f in args.fractions.split(",")]
    if not all(0 < f <= 1 for f in fractions):
        return usage_error("--fractions are fractions of the training set, in (0, 1]")
    run_study(model_dir, args.targets, fractions, args.seeds, base=profile(args.profile), local_root=args.local_root,
              cache_dir=Path(settings.cache_dir), device=args.device)
    return 0
