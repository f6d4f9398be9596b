"""python -m data submit: check a model on the Hub and queue it for scoring (the app's Submit tab)."""

from __future__ import annotations

import argparse
import sys

from data.settings import Settings
from data.store import Store
from service.cli.args import add_store_options


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser("submit", help="check a model on the Hub and queue it for scoring")
    p.add_argument("repo_id", help="Hub model id, e.g. me/my-roberta-finetune")
    p.add_argument("--revision", help="branch, tag or commit sha (default: main)")
    add_store_options(p)
    return p


def run(args: argparse.Namespace, settings: Settings) -> int:
    from data.errors import SubmissionRejected
    from data.hub import HubClient
    from data.submissions import submit

    try:
        result = submit(args.repo_id, args.revision, HubClient(settings), Store(settings.db_path), settings)
    except SubmissionRejected as e:
        print(f"refused: {e}", file=sys.stderr)
        return 1
    jobs = ", ".join(f"{j.scorer} #{j.id} {j.status.value}" for j in result.jobs)
    where = f"queue position {result.queue_position}" if result.queue_position else "nothing pending"
    print(f"{result.repo_id}@{result.sha[:8]} ({'queued' if result.is_new else 'already queued or scored'}) "
          f"for {result.base_id}: {jobs}; {where}")
    return 0
