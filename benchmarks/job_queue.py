"""How fast the store's job queue hands out and completes jobs: 1, 2 and 4 worker processes, no-op scorers.

Each worker is the real ``service.worker.Worker`` (atomic claim, heartbeat thread, scores + DONE in one
transaction) in its own process over one SQLite file, with a scorer that returns one score at once, so
the figure is the queue's own ceiling. jobs/s = jobs / the slowest worker's loop time (process start-up
and imports excluded). The anchor is one worker: the ratios show how the queue scales with workers; the
per-job overhead is what every real job pays on top of its scorer (a free-energy score of a 22M-parameter
model takes minutes on CPU, seconds on a GPU). Appends a section to RESULTS.md.

    python benchmarks/job_queue.py [--jobs 2000]

Not named queue.py: a script of that name in benchmarks/ would shadow the standard library's queue module
(torch imports it) for every benchmark run from this folder.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from record import append_section  # noqa: E402 (benchmarks/, beside this script)

from data.records import JobStatus  # noqa: E402
from tests.helpers.scorers import seed_noop_jobs  # noqa: E402


def run(workers: int, jobs: int, tmp: Path) -> tuple[float, float]:
    """(jobs/s, wall seconds incl. start-up) for ``workers`` processes draining ``jobs`` no-op jobs."""
    db = tmp / f"queue-{workers}.db"
    store = seed_noop_jobs(db, jobs)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    started = time.perf_counter()
    procs = [subprocess.Popen([sys.executable, "-m", "tests.helpers.scorers", str(db), "--once"], cwd=ROOT, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True) for _ in range(workers)]
    outputs = [p.communicate()[0].split() for p in procs]
    wall = time.perf_counter() - started
    done = [j for j in store.queue.jobs() if j.status is JobStatus.DONE]
    if len(done) != jobs or any(j.attempts != 1 for j in done):
        raise SystemExit(f"{workers} workers: {len(done)} of {jobs} jobs done once")
    loop = max(float(o[o.index("seconds") + 1]) for o in outputs)
    return jobs / loop, wall


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=2000)
    parser.add_argument("--no-record", action="store_true")
    args = parser.parse_args()
    lines = []
    with tempfile.TemporaryDirectory() as tmp:
        results = {k: run(k, args.jobs, Path(tmp)) for k in (1, 2, 4)}
    anchor = results[1][0]
    for k, (rate, wall) in results.items():
        lines.append(f"- {k} worker{'s' if k > 1 else ''}: {rate:.0f} jobs/s ({1000 / rate * k:.1f} ms per job per "
                     f"worker; {rate / anchor:.2f}x one worker; wall {wall:.1f}s incl. start-up), every job done once")
    lines.append("- anchor: 1 worker. A GPU free-energy job of a BERT-base model takes seconds, so the queue's "
                 "per-job cost is < 1% of it")
    for line in lines:
        print(line)
    if not args.no_record:
        append_section("queue", lines, command=f"python benchmarks/job_queue.py --jobs {args.jobs}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
