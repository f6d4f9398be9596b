"""What the command lines (python -m data | scoring | ranking, python app.py) share: the names users type, and how a
bad setting ends them."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Iterable

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
