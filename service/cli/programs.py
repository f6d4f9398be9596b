"""The three command lines, assembled from one module per command (``add_parser(subparsers)`` registers it and
returns its parser, ``run(args, settings) -> int`` carries it out): ``python -m data``, ``python -m scoring`` and
``python -m ranking`` are thin shims over ``data_main``, ``scoring_main`` and ``ranking_main``."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from types import ModuleType

from data.errors import LeaderboardError
from service.cli import (
    candidates,
    card,
    crawl,
    dropout_study,
    export,
    import_published,
    intertrain,
    jobs,
    llc_sweep,
    migrate,
    personal,
    personal_study,
    regate,
    score,
    seed_snapshot,
    serve_hub,
    stage,
    study,
    submit,
    validity,
    work,
)
from service.cli.args import configure_logging, resolve_base_arg, settings_from_env


@dataclass(frozen=True)
class Program:
    """One ``python -m NAME``: its commands in the order ``--help`` lists them, and whether a legacy ``--base`` id
    is resolved before the command runs (``ranking``'s commands resolve it against the boards in the store)."""

    name: str
    usage: str
    commands: tuple[ModuleType, ...]
    resolve_base: bool = True

    def parser(self) -> argparse.ArgumentParser:
        parser = argparse.ArgumentParser(prog=f"python -m {self.name}", description=self.usage)
        subparsers = parser.add_subparsers(dest="command", required=True)
        for command in self.commands:
            command.add_parser(subparsers).set_defaults(func=command.run)
        return parser

    def main(self, argv: Sequence[str] | None = None) -> int:
        parser = self.parser()
        args = parser.parse_args(argv)
        if getattr(args, "seeds", 1) < 1 or getattr(args, "base_seeds", 1) < 1:
            parser.error("--seeds and --base-seeds must be at least 1")
        settings = settings_from_env(db_path=getattr(args, "db", None), hub_endpoint=getattr(args, "endpoint", None),
                                     crawl_concurrency=getattr(args, "concurrency", None))  # "error:" line, exit 2
        configure_logging(settings.log_level)
        if self.resolve_base:
            resolve_base_arg(args)
        try:
            return args.func(args, settings)
        except KeyError as e:  # a name the command looked up and did not find: a usage error
            print(f"error: {e.args[0]}", file=sys.stderr)
            return 2
        except LeaderboardError as e:
            logging.getLogger(self.name).error("%s", e)
            return 1


DATA = Program("data", "python -m data crawl | candidates | import-published | seed-snapshot | serve-hub | submit | "
               "jobs | migrate", (crawl, candidates, import_published, seed_snapshot, serve_hub, submit, jobs, migrate))
SCORING = Program("scoring", "python -m scoring score | work | personal | study | stage | intertrain | regate | ...",
                  (score, llc_sweep, work, personal, personal_study, dropout_study, stage, study, intertrain, regate))
RANKING = Program("ranking", "python -m ranking export | validity | card", (export, validity, card),
                  resolve_base=False)


def data_main(argv: Sequence[str] | None = None) -> int:
    return DATA.main(argv)


def scoring_main(argv: Sequence[str] | None = None) -> int:
    return SCORING.main(argv)


def ranking_main(argv: Sequence[str] | None = None) -> int:
    return RANKING.main(argv)
