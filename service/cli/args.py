"""What the command lines (python -m data | scoring | ranking, python app.py) share: the names users type, the store
options, positive numbers, logging, and how a bad setting ends them."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable, Iterable
from pathlib import Path

from data.selection import resolve_base_id
from data.settings import Settings


def resolve_base_arg(args: argparse.Namespace, known: Iterable[str] = ()) -> None:
    """Replace a legacy ``--base`` id (roberta-base) by its canonical id, saying so on stderr; a directory or an
    unknown id is left as typed."""
    base = getattr(args, "base", None)
    if isinstance(base, str) and not os.path.isdir(base):
        args.base, note = resolve_base_id(base, known)
        if note:
            print(f"note: {note}", file=sys.stderr)


def settings_from_env(**overrides) -> Settings:
    """``Settings.from_env()`` with ``overrides`` (``None`` ignored, as unset flags). A bad ``MRL_*`` value ends the
    command: one line ``error: <the sentence naming the variable>`` on stderr, exit code 2."""
    try:
        return Settings.from_env().with_overrides(**overrides)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        raise SystemExit(2) from None


def add_store_options(parser: argparse.ArgumentParser, *, endpoint: bool = True) -> None:
    """``--db`` (the SQLite store) and, where the command reaches the Hub, ``--endpoint``."""
    parser.add_argument("--db", type=Path, help="SQLite store (default: $MRL_DB or ./leaderboard.db)")
    if endpoint:
        parser.add_argument("--endpoint", help="Hub endpoint (default: $HF_ENDPOINT or https://huggingface.co)")


def positive(kind: Callable[[str], float]) -> Callable[[str], float]:
    """An argparse type: ``kind(text)`` when it is above 0, else the usage error "argument FLAG: must be positive"."""
    def parse(text: str) -> float:
        value = kind(text)
        if not value > 0:
            raise argparse.ArgumentTypeError(f"must be positive, not {text}")
        return value

    parse.__name__ = kind.__name__  # argparse's "invalid int value: 'x'"
    return parse


def configure_logging(level: str) -> None:
    """Log lines on stderr at ``level``; the HTTP clients' request lines only at WARNING or above."""
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    for noisy in ("httpx", "httpx2", "httpcore", "httpcore2", "huggingface_hub"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLevelName(level)))
