"""python -m data serve-hub: serve a directory of model repos as a Hub endpoint on 127.0.0.1."""

from __future__ import annotations

import argparse
from pathlib import Path

from data.settings import Settings
from service.cli.args import add_store_options


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser("serve-hub", help="serve a directory of model repos as a local Hub endpoint")
    p.add_argument("--root", type=Path, required=True, help="ROOT/<org>/<name>/ holds each repo's files")
    p.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (default: any free port)")
    add_store_options(p)
    return p


def run(args: argparse.Namespace, settings: Settings) -> int:
    import time

    from data.local_hub import LocalHub
    from data.local_hub.directory import load_directory

    hub = LocalHub()
    repos = load_directory(hub, args.root)
    url = hub.start(port=args.port)
    print(f"serving {len(repos)} repos from {args.root} at {url} (Ctrl-C stops)", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        hub.stop()
    return 0
