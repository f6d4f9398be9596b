"""python -m scoring regate: re-gate a snapshot's free-energy scores after the gate changed."""

from __future__ import annotations

import argparse
from pathlib import Path

from data.settings import Settings


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser("regate", help="re-gate a results snapshot's free-energy scores (after a gate change)")
    p.add_argument("snapshot", type=Path, help="the snapshot file, e.g. data/snapshot/study.json")
    return p


def run(args: argparse.Namespace, settings: Settings) -> int:
    from service.regate import regate_snapshot

    print(f"{regate_snapshot(args.snapshot)} free-energy scores re-gated")
    return 0
