"""Wall time of the offline study (``python -m scoring study``), per stage, from a snapshot it wrote.

    python benchmarks/study.py [--snapshot data/snapshot/study.json] [--wall-s SECONDS]

Reads the stage timings, device and versions the study stored in the snapshot's ``meta`` and appends them
to ``benchmarks/RESULTS.md``; the anchor is the budget on 2 CPU cores (issue 29: every stage but the free energy,
whose protocol issue 30 changes, within 150 min), printed as a ratio. ``--wall-s`` adds the process's own wall
time (start-up included) when you measured it.
"""

from __future__ import annotations

import argparse
import json
import platform
from pathlib import Path

from record import append_section  # benchmarks/, beside this script

ROOT = Path(__file__).resolve().parents[1]
BUDGET_S = 150 * 60  # the study's budget on 2 CPU cores, the free energy left out (issue 29)
ORDER = ("sources", "crawl", "linear_probe", "free_energy", "knn", "intertraining", "guided_dropout",
         "sample_efficiency", "snapshot")
OUTSIDE_BUDGET = ("free_energy",)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--snapshot", type=Path, default=ROOT / "data" / "snapshot" / "study.json")
    parser.add_argument("--wall-s", type=float, help="the study process's wall time, start-up included")
    parser.add_argument("--note", default="")
    args = parser.parse_args()
    meta = json.loads(args.snapshot.read_text())["meta"]
    timings = meta["timings_s"]
    total = sum(timings.values())
    budgeted = sum(v for k, v in timings.items() if k not in OUTSIDE_BUDGET)
    stages = ", ".join(f"{k} {timings[k]:.0f}s" for k in ORDER if k in timings)
    lines = [
        f"- stages: {stages}",
        f"- total of the stages: {total:.0f}s ({total / 60:.1f} min)",
        (f"- every stage but the free energy: {budgeted:.0f}s ({budgeted / 60:.1f} min); budget on 2 CPU cores "
         f"{BUDGET_S // 60} min: {budgeted / BUDGET_S:.2f}x the budget"),
    ]
    if args.wall_s:
        lines.append(f"- process wall time (imports and start-up included): {args.wall_s:.0f}s")
    print(append_section("study", lines, command=meta["command"], note=f" — {args.note}" if args.note else "",
                         host=(f"{meta['device']}, Python {meta['python']}, torch {meta['torch']} (study run "
                               f"{meta['created']}, on {platform.machine()})")))


if __name__ == "__main__":
    main()
