"""A benchmark's section of benchmarks/RESULTS.md, in the one format every script writes:

    ## <name> — YYYY-MM-DD HH:MM UTC — <machine>
    `<command>`<note>

    <the lines, as given: a bullet carries its own "- ">

appended after a blank line. The scripts import it as a top-level module (``from record import ...``): benchmarks/
is no package, and the folder of the script run is on ``sys.path``.
"""

from __future__ import annotations

import os
import platform
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def machine(*extra: str, cpu: bool = False) -> str:
    """``x86_64, 2 cores, Python 3.11.7``; with ``cpu`` the CPU's model after the cores; then ``extra``."""
    return ", ".join([platform.machine(), f"{os.cpu_count()} cores", *([cpu_model()] if cpu else []),
                      f"Python {platform.python_version()}", *extra])


def section(name: str, lines: Iterable[str], *, command: str | None = None, note: str = "",
            host: str | None = None) -> str:
    """The section's text, ending in a newline: the heading (now, ``host`` or else ``machine()``), the command in
    backticks followed by ``note`` (no command, no such line), a blank line, then ``lines``."""
    heading = f"## {name} — {datetime.now(UTC):%Y-%m-%d %H:%M} UTC — {host or machine()}"
    return "\n".join([heading, *([f"`{command}`{note}"] if command else []), "", *lines]) + "\n"


def append(text: str, path: Path = RESULTS) -> None:
    """``text`` (a ``section``) at the end of ``path``, after a blank line."""
    with open(path, "a", encoding="utf-8") as f:
        f.write("\n" + text)


def append_section(name: str, lines: Iterable[str], *, command: str | None = None, note: str = "",
                   host: str | None = None, path: Path = RESULTS) -> str:
    """``section(...)`` appended to ``path``; returns its text."""
    text = section(name, lines, command=command, note=note, host=host)
    append(text, path)
    return text
