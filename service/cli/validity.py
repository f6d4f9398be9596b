"""python -m ranking validity: Spearman (bootstrap CI) of the mean gain with each predictor."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from data.metrics import PROJECT_SOURCE, SOURCES
from data.settings import Settings
from data.store import Store
from ranking.leaderboard import leaderboard_from
from service.boards import list_boards, read_board
from service.cli.args import add_store_options, resolve_base_arg


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser("validity", help="Spearman (bootstrap CI) of the mean gain with F, L_n, LLC, probe, kNN")
    p.add_argument("--base", required=True)
    p.add_argument("--predictors-db", type=Path, help="read the predictors' scores from this store instead")
    p.add_argument("--source", choices=sorted(SOURCES), default=PROJECT_SOURCE)
    add_store_options(p, endpoint=False)
    return p


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Spearman (bootstrap 95% CI) of the mean gain with each predictor (ranking/validity.py); the predictors'
    scores from ``--predictors-db`` when given (matched by repo id: the revisions are named when they differ)."""
    from ranking.validity import board_gains, predictor_frame, validity, validity_markdown

    store = Store(settings.db_path)
    resolve_base_arg(args, known=[b for b, _, _ in list_boards(store)])
    board = leaderboard_from(read_board(store, args.base, args.source))
    gains = board_gains(board)
    if not gains:
        print(f"error: no mean gains for {args.base} in {settings.db_path}: nothing to validate against",
              file=sys.stderr)
        return 1
    source = Store(args.predictors_db) if args.predictors_db else store
    scores = source.scores(base_id=board.base_id, source=PROJECT_SOURCE)
    if args.predictors_db:
        revisions = dict(zip(board.rows["repo_id"], board.rows["revision"], strict=True))
        revisions = {r: v for r, v in revisions.items() if r in gains}
        differ = sorted({s.repo_id for s in scores if s.repo_id in revisions and s.revision != revisions[s.repo_id]})
        print(f"predictors from {args.predictors_db}; gains from {settings.db_path}; "
              f"{len(differ)} of {len(revisions)} candidates were scored at another revision there")
    print("\n".join(validity_markdown(validity(predictor_frame(scores, gains, targets=board.suite)))))
    return 0
