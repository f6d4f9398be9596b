"""python -m data candidates: print the crawled candidates of a base (CSV or one JSON object a line)."""

from __future__ import annotations

import argparse
import csv
import json
import sys

from data.escape import csv_cell
from data.records import CandidateStatus
from data.settings import Settings
from data.store import Store
from service.cli.args import add_store_options

FIELDS = ("repo_id", "sha", "status", "skip_reason", "kind", "match", "downloads", "likes", "license",
          "last_modified", "num_params")


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser("candidates", help="print the crawled candidates of a base")
    p.add_argument("--base", required=True)
    p.add_argument("--format", choices=("csv", "json"), default="csv")
    p.add_argument("--status", choices=("ok", "skipped", "all"), default="all")
    add_store_options(p)
    return p


def run(args: argparse.Namespace, settings: Settings) -> int:
    store = Store(settings.db_path)
    base = store.get_base(args.base)
    if base is None:
        print(f"error: {args.base} has not been crawled into {settings.db_path}; run: "
              f"python -m data crawl --base {args.base}", file=sys.stderr)
        return 1
    status = None if args.status == "all" else CandidateStatus(args.status)
    rows = [candidate_row(c) for c in store.candidates(base.repo_id, status=status)]
    if args.format == "json":
        for row in rows:
            print(json.dumps(row))
    else:
        writer = csv.DictWriter(sys.stdout, fieldnames=FIELDS, lineterminator="\n")
        writer.writeheader()
        writer.writerows({k: csv_cell(v) for k, v in row.items()} for row in rows)
    return 0


def candidate_row(c) -> dict:
    return {"repo_id": c.repo_id, "sha": c.sha, "status": c.status.value,
            "skip_reason": c.skip_reason.value if c.skip_reason else None, "kind": c.kind.value,
            "match": c.match.value, "downloads": c.downloads, "likes": c.likes, "license": c.license,
            "last_modified": c.last_modified.isoformat() if c.last_modified else None, "num_params": c.num_params}
