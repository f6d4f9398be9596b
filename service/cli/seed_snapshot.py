"""python -m data seed-snapshot: add to the store what it lacks of a results snapshot (as python app.py does)."""

from __future__ import annotations

import argparse
import sys

from data.settings import Settings
from data.store import Store
from service.cli.args import add_store_options


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser("seed-snapshot", help="add to the store what it lacks of a results snapshot (as "
                                                    "python app.py does at start)")
    p.add_argument("--snapshot", metavar="PATH", help="snapshot file (default: $MRL_SNAPSHOT or "
                                                      "data/snapshot/study.json)")
    add_store_options(p)
    return p


def run(args: argparse.Namespace, settings: Settings) -> int:
    from data.settings import snapshot_path_of
    from data.snapshot import seed_store

    path = snapshot_path_of(args.snapshot) if args.snapshot else settings.snapshot_path
    if path is None:
        print("error: no snapshot to seed from (MRL_SNAPSHOT=none): pass --snapshot PATH", file=sys.stderr)
        return 2
    print(seed_store(Store(settings.db_path), path).summary())
    return 0
