"""python -m scoring intertrain BASE --source NAME --out DIR: fine-tune a base on one source task and save the
result as a candidate checkpoint directory."""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

from data.settings import Settings
from service.cli.common import LOCAL_ROOT_HELP, PROFILES, add_run_flags, resolve_model


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser("intertrain", help="fine-tune a base on a source task and save it as a candidate repo")
    p.add_argument("base", help="base model (Hub id or directory)")
    p.add_argument("--source", required=True, help="source target name, e.g. sick")
    p.add_argument("--out", type=Path, required=True, help="directory to save the candidate to")
    p.add_argument("--base-name", help="repo id to record for a local base directory")
    p.add_argument("--profile", default="quick", choices=PROFILES)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--local-root", type=Path, help=LOCAL_ROOT_HELP)
    add_run_flags(p)
    p.set_defaults(seeds=1, base_seeds=1)
    return p


def run(args: argparse.Namespace, settings: Settings) -> int:
    from data.targets import suite
    from scoring.config import profile
    from scoring.intertrain import train_source_model
    from scoring.target_data import load_target

    base_id, _, base_dir = resolve_model(args.base, settings, args.base_name)
    [spec] = suite(args.source, local_root=args.local_root)
    cfg = replace(profile(args.profile), seed=args.seed)
    source = load_target(spec, max_train=cfg.max_train_examples, max_eval=cfg.max_eval_examples, seed=0,
                         local_root=args.local_root)
    result = train_source_model(base_dir, base_id, source, cfg, args.out, device=args.device, verbose=not args.quiet)
    print(f"{args.out}: {base_id} fine-tuned on {source.name}, test {source.metric} {result.test_score:.4f} "
          f"({result.steps} steps, {result.duration_s:.0f}s)")
    return 0
