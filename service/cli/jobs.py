"""python -m data jobs: the scoring jobs and their status, one line each."""

from __future__ import annotations

import argparse
import sys

from data.records import JobStatus
from data.settings import Settings
from data.store import Store
from service.cli.args import add_store_options


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser("jobs", help="list scoring jobs and their status")
    p.add_argument("--status", choices=("all", "pending", "running", "done", "failed", "cancelled"), default="all")
    add_store_options(p)
    return p


def run(args: argparse.Namespace, settings: Settings) -> int:
    store = Store(settings.db_path)
    status = None if args.status == "all" else JobStatus(args.status.upper())
    for j in store.queue.jobs(status):
        error = (j.error or "").splitlines()[0][:100] if j.error else ""
        print(f"{j.id}\t{j.status.value}\t{j.scorer}\t{j.repo_id}@{j.revision[:8]}\tattempts {j.attempts}\t{error}")
    print(store.queue.queue_stats(), file=sys.stderr)
    return 0
