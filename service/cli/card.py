"""python -m ranking card: one model's scores as the Hub's .eval_results YAML, and a model-card section."""

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
    p = subparsers.add_parser("card", help="one model's scores as the Hub's .eval_results YAML, and a model-card "
                                           "section")
    p.add_argument("--base", required=True)
    p.add_argument("--model", required=True, help="the model's repo id on that leaderboard")
    p.add_argument("--source", choices=sorted(SOURCES), default=PROJECT_SOURCE)
    p.add_argument("--url", default="http://127.0.0.1:7860", help="where the leaderboard is served (cited)")
    p.add_argument("--out-dir", type=Path, default=Path("."), help="the model repo's folder (default: here)")
    add_store_options(p, endpoint=False)
    return p


def run(args: argparse.Namespace, settings: Settings) -> int:
    """One model's scores in the Hub's .eval_results format (written under --out-dir) and its model-card section
    (printed), as of today."""
    from datetime import UTC, datetime

    from ranking.hub_card import hub_card

    store = Store(settings.db_path)
    available = list_boards(store)
    resolve_base_arg(args, known=[b for b, _, _ in available])
    board = leaderboard_from(read_board(store, args.base, args.source))
    try:
        card = hub_card(board, args.model, date=datetime.now(UTC).date().isoformat(), url=args.url)
    except KeyError as e:
        print(f"error: {e.args[0]}", file=sys.stderr)
        return 1
    path = args.out_dir / ".eval_results" / "model-recycling-leaderboard.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(card.yaml())
    left = f"; left out (no Hub dataset): {', '.join(card.left_out)}" if card.left_out else ""
    print(f"wrote {len(card.entries)} results to {path}{left}", file=sys.stderr)
    print(card.section)
    return 0
