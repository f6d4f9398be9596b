"""python -m scoring work [--once] [--scorers ...] [--device cpu|cuda] [--max-jobs N] [--ray ADDRESS]
python -m scoring personal --base BASE --data FILE|HUB_ID [--top-k K] [--text-column C] [--label-column C]
python -m scoring study [--out DIR] [--device cpu|cuda] [--snapshot PATH|none]
python -m scoring score REPO_ID --scorer intertraining|linear_probe|free_energy|sample_efficiency
[--base BASE] [--suite NAME] [--profile quick|published] [--seeds N] [--base-seeds K] [--device cpu|cuda] [--db PATH]

REPO_ID and BASE are Hub ids (downloaded at a pinned sha through huggingface_hub) or local checkpoint
directories (their revision is a content hash). Scores go to the store in one transaction; a short table
of the candidate's per-target gains is printed.

Each subcommand is one module of scoring/cli/ (``add_parser`` and ``run``); this module assembles them.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from data.cli import resolve_base_arg, settings_from_env
from data.errors import LeaderboardError
from scoring.cli import dropout_study, intertrain, llc_sweep, personal, personal_study, score, stage, study, work

logger = logging.getLogger("scoring")

COMMANDS = (score, llc_sweep, work, personal, personal_study, dropout_study, stage, study,
            intertrain)  # in the order --help lists them


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m scoring", description=__doc__.splitlines()[0])
    subparsers = parser.add_subparsers(dest="command", required=True)
    for command in COMMANDS:
        command.add_parser(subparsers).set_defaults(func=command.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.seeds < 1 or args.base_seeds < 1:
        parser.error("--seeds and --base-seeds must be at least 1")
    settings = settings_from_env(db_path=args.db, hub_endpoint=getattr(args, "endpoint", None))
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    resolve_base_arg(args)
    try:
        return args.func(args, settings)
    except KeyError as e:
        print(f"error: {e.args[0]}", file=sys.stderr)
        return 2
    except LeaderboardError as e:
        logger.error("%s", e)
        return 1


if __name__ == "__main__":
    sys.exit(main())
