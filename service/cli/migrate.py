"""python -m data migrate: create or upgrade the store's schema."""

from __future__ import annotations

import argparse

from data.settings import Settings
from data.store import Store
from service.cli.args import add_store_options


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser("migrate", help="create or upgrade the store's schema")
    add_store_options(p)
    return p


def run(args: argparse.Namespace, settings: Settings) -> int:
    print(f"{settings.db_path}: schema version {Store(settings.db_path).schema_version()}")
    return 0
