"""python -m ranking export: one leaderboard as CSV, JSON or Parquet."""

from __future__ import annotations

import argparse
import difflib
import sys
from pathlib import Path

from data.metrics import PROJECT_SOURCE, SOURCES
from data.settings import Settings
from data.store import Store
from ranking.export import FORMATS, render
from ranking.leaderboard import leaderboard_from
from service.boards import list_boards, read_board
from service.cli.args import add_store_options, resolve_base_arg


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser("export", help="write one leaderboard as CSV, JSON or Parquet")
    p.add_argument("--base", required=True, help="base model, e.g. FacebookAI/roberta-base (legacy ids work)")
    p.add_argument("--format", choices=FORMATS, default="csv")
    p.add_argument("--source", choices=sorted(SOURCES), default=PROJECT_SOURCE)
    p.add_argument("--sort", default="mean_gain", help="column to rank by (default mean_gain)")
    p.add_argument("--out", type=Path, help="file to write (default: standard output)")
    add_store_options(p, endpoint=False)
    return p


def run(args: argparse.Namespace, settings: Settings) -> int:
    store = Store(settings.db_path)
    available = list_boards(store)
    resolve_base_arg(args, known=[b for b, _, _ in available])
    board = leaderboard_from(read_board(store, args.base, args.source), sort_by=args.sort)
    if board.rows.empty and board.baseline.empty:
        print(f"error: {_no_scores(args.base, args.source, settings.db_path, available)}", file=sys.stderr)
        return 1
    data = render(board, args.format)
    if args.out:
        args.out.write_bytes(data)
        print(f"wrote {len(board.rows)} models (+ baseline) to {args.out}", file=sys.stderr)
    else:
        sys.stdout.buffer.write(data)
    return 0


def _no_scores(base: str, source: str, db_path: Path, available: list[tuple[str, str, int]]) -> str:
    """Why there is nothing to export, with the leaderboards there are and the closest base names."""
    known = ", ".join(f"{b} ({s})" for b, s, n in available if n) or "none"
    names = {b.lower(): b for b, _, _ in available}
    close = [names[c] for c in difflib.get_close_matches(base.lower(), names, n=3, cutoff=0.6)]
    hint = f" (did you mean {' or '.join(close)}?)" if close else ""
    return f"no {source} scores for {base} in {db_path}{hint}; leaderboards with scores: {known}"
