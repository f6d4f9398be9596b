"""python -m data import-published: IBM's published model-recycling results as their own score source."""

from __future__ import annotations

import argparse

from data.settings import Settings
from data.store import Store
from service.cli.args import add_store_options, positive


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser("import-published",
                              help="import IBM's published model-recycling results as their own score source")
    p.add_argument("--source", help="URL prefix or local directory laid out like github.com/IBM/model-recycling "
                                    "(default: its master branch on raw.githubusercontent.com)")
    p.add_argument("--timeout-s", type=positive(float), default=30.0,
                   help="per-file download timeout in seconds")
    add_store_options(p)
    return p


def run(args: argparse.Namespace, settings: Settings) -> int:
    from data.published import PUBLISHED_DEFAULT_SOURCE, import_published

    report = import_published(Store(settings.db_path), args.source or PUBLISHED_DEFAULT_SOURCE,
                              timeout_s=args.timeout_s)
    for line in report.summary_lines():
        print(line)
    return 0
