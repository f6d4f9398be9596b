"""What the three command lines (python -m data | scoring | ranking) share about the names users type."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Iterable

from data.selection import resolve_base_id


def resolve_base_arg(args: argparse.Namespace, known: Iterable[str] = ()) -> None:
    """Replace a legacy ``--base`` id (roberta-base) by its canonical id, saying so on stderr; a directory or an
    unknown id is left as typed."""
    base = getattr(args, "base", None)
    if isinstance(base, str) and not os.path.isdir(base):
        args.base, note = resolve_base_id(base, known)
        if note:
            print(f"note: {note}", file=sys.stderr)
