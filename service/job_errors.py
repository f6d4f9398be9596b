"""What a user may read of a failure: one sentence, with no traceback, server path, host name or process id.

A job's stored error (``jobs.error``) is shown on the public job list and on a personal ranking's page; the full
exception, traceback included, goes to the worker's log instead.
"""

from __future__ import annotations

import re
import socket
from collections.abc import Sequence

from data.errors import LeaderboardError

MAX_CHARS = 300
# an absolute or relative file path: "/", "~/", "./" or "../" not inside a word, a repo id ("org/model") or a URL
_PATH = re.compile(r"(?<![\w.:/~-])(?:~|\.{1,2})?/[^\s'\"`,;()\[\]{}<>]+")


def public_error(error: BaseException, *, hide: Sequence[str] = ()) -> str:
    """A LeaderboardError's message (the project's own sentence) made safe by ``redact``; for anything else (an
    unexpected crash, whose message may quote code, memory or paths) its class name only."""
    if isinstance(error, LeaderboardError):
        text = redact(str(error), hide=hide)
        if text:
            return text
    return f"The scoring worker failed unexpectedly ({type(error).__name__}); it has been logged."


def redact(text: str, *, hide: Sequence[str] = ()) -> str:
    """The first line of ``text`` without paths, this host's name or any of ``hide`` (a worker's name), at most
    ``MAX_CHARS`` long; "" when nothing fit to show is left (a traceback)."""
    lines = text.strip().splitlines()
    line = lines[0].strip() if lines else ""
    if line.startswith("Traceback"):
        return ""
    for secret in sorted({*hide, socket.gethostname()} - {""}, key=len, reverse=True):
        line = re.sub(rf"(?<![\w.-]){re.escape(secret)}(?![\w.-])", "<worker>", line)
    line = _PATH.sub("<path>", line)
    return line if len(line) <= MAX_CHARS else line[: MAX_CHARS - 1] + "…"
