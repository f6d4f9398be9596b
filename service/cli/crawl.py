"""python -m data crawl: find the finetuned descendants of a base model on the Hub and store them."""

from __future__ import annotations

import argparse
import sys

from data.settings import Settings
from data.store import Store
from service.cli.args import add_store_options, positive


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser("crawl", help="find finetuned descendants of a base model on the Hub")
    p.add_argument("--base", required=True, help="base model repo id, e.g. FacebookAI/roberta-base")
    p.add_argument("--limit", type=positive(int), help="consider at most N models (by downloads)")
    p.add_argument("--concurrency", type=positive(int),
                   help="parallel per-model requests (default 8)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    add_store_options(p)
    return p


def run(args: argparse.Namespace, settings: Settings) -> int:
    from data.crawler import crawl
    from data.hub import HubClient

    store = Store(settings.db_path)
    report = crawl(args.base, HubClient(settings), store, settings, limit=args.limit, verbose=not args.quiet)
    print(report.summary())
    for repo_id, error in sorted(report.failed.items()):
        print(f"failed: {repo_id}: {error}", file=sys.stderr)
    return 1 if report.failed else 0
