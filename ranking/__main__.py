"""python -m ranking export --base BASE_ID --format csv|json|parquet [--source ...] [--out PATH] [--db PATH]
python -m ranking validity --base BASE_ID [--source ...] [--db PATH] [--predictors-db PATH]
python -m ranking card --base BASE_ID --model REPO_ID [--source ...] [--url URL] [--out-dir DIR] [--db PATH]"""

from __future__ import annotations

import argparse
import difflib
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from data.boards import list_boards, read_board
from data.cli import resolve_base_arg, settings_from_env
from data.errors import LeaderboardError
from data.metrics import PROJECT_SOURCE, SOURCES
from data.settings import Settings
from data.store import Store
from ranking.export import FORMATS, render
from ranking.leaderboard import leaderboard_from

logger = logging.getLogger("ranking")


def cmd_export(args: argparse.Namespace, settings: Settings) -> int:
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


def cmd_validity(args: argparse.Namespace, settings: Settings) -> int:
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


def cmd_card(args: argparse.Namespace, settings: Settings) -> int:
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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m ranking", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("export", help="write one leaderboard as CSV, JSON or Parquet")
    p.add_argument("--base", required=True, help="base model, e.g. FacebookAI/roberta-base (legacy ids work)")
    p.add_argument("--format", choices=FORMATS, default="csv")
    p.add_argument("--source", choices=sorted(SOURCES), default=PROJECT_SOURCE)
    p.add_argument("--sort", default="mean_gain", help="column to rank by (default mean_gain)")
    p.add_argument("--out", type=Path, help="file to write (default: standard output)")
    p.add_argument("--db", type=Path, help="SQLite store (default: $MRL_DB or ./leaderboard.db)")
    p.set_defaults(func=cmd_export)
    p = sub.add_parser("validity", help="Spearman (bootstrap CI) of the mean gain with F, L_n, LLC, probe, kNN")
    p.add_argument("--base", required=True)
    p.add_argument("--predictors-db", type=Path, help="read the predictors' scores from this store instead")
    p.add_argument("--source", choices=sorted(SOURCES), default=PROJECT_SOURCE)
    p.add_argument("--db", type=Path, help="SQLite store (default: $MRL_DB or ./leaderboard.db)")
    p.set_defaults(func=cmd_validity)
    p = sub.add_parser("card", help="one model's scores as the Hub's .eval_results YAML, and a model-card section")
    p.add_argument("--base", required=True)
    p.add_argument("--model", required=True, help="the model's repo id on that leaderboard")
    p.add_argument("--source", choices=sorted(SOURCES), default=PROJECT_SOURCE)
    p.add_argument("--url", default="http://127.0.0.1:7860", help="where the leaderboard is served (cited)")
    p.add_argument("--out-dir", type=Path, default=Path("."), help="the model repo's folder (default: here)")
    p.add_argument("--db", type=Path, help="SQLite store (default: $MRL_DB or ./leaderboard.db)")
    p.set_defaults(func=cmd_card)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    settings = settings_from_env(db_path=args.db)
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        return args.func(args, settings)
    except KeyError as e:
        parser.error(str(e))
    except LeaderboardError as e:
        logger.error("%s", e)
        return 1


if __name__ == "__main__":
    sys.exit(main())
