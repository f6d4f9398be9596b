"""python -m data crawl | candidates | import-published | seed-snapshot | serve-hub | migrate"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from data.cli import resolve_base_arg, settings_from_env
from data.errors import LeaderboardError
from data.escape import csv_cell
from data.records import CandidateStatus
from data.settings import Settings
from data.store import Store

logger = logging.getLogger("data")

CANDIDATE_FIELDS = (
    "repo_id", "sha", "status", "skip_reason", "kind", "match", "downloads", "likes", "license",
    "last_modified", "num_params",
)


def configure_logging(level: str) -> None:
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    for noisy in ("httpx", "httpx2", "httpcore", "httpcore2", "huggingface_hub"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLevelName(level)))


def cmd_crawl(args: argparse.Namespace, settings: Settings) -> int:
    from data.crawler import crawl
    from data.hub import HubClient

    store = Store(settings.db_path)
    report = crawl(args.base, HubClient(settings), store, settings, limit=args.limit, verbose=not args.quiet)
    print(report.summary())
    for repo_id, error in sorted(report.failed.items()):
        print(f"failed: {repo_id}: {error}", file=sys.stderr)
    return 1 if report.failed else 0


def cmd_candidates(args: argparse.Namespace, settings: Settings) -> int:
    store = Store(settings.db_path)
    base = store.get_base(args.base)
    if base is None:
        print(f"error: {args.base} has not been crawled into {settings.db_path}; run: "
              f"python -m data crawl --base {args.base}", file=sys.stderr)
        return 1
    status = None if args.status == "all" else CandidateStatus(args.status)
    rows = [_candidate_row(c) for c in store.candidates(base.repo_id, status=status)]
    if args.format == "json":
        for row in rows:
            print(json.dumps(row))
    else:
        writer = csv.DictWriter(sys.stdout, fieldnames=CANDIDATE_FIELDS, lineterminator="\n")
        writer.writeheader()
        writer.writerows({k: csv_cell(v) for k, v in row.items()} for row in rows)
    return 0


def cmd_serve_hub(args: argparse.Namespace, settings: Settings) -> int:
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


def cmd_import_published(args: argparse.Namespace, settings: Settings) -> int:
    from data.published import PUBLISHED_DEFAULT_SOURCE, import_published

    source = args.source or PUBLISHED_DEFAULT_SOURCE
    report = import_published(Store(settings.db_path), source, timeout_s=args.timeout_s)
    for line in report.summary_lines():
        print(line)
    return 0


def cmd_seed_snapshot(args: argparse.Namespace, settings: Settings) -> int:
    from data.settings import snapshot_path_of
    from data.snapshot import seed_store

    path = snapshot_path_of(args.snapshot) if args.snapshot else settings.snapshot_path
    if path is None:
        print("error: no snapshot to seed from (MRL_SNAPSHOT=none): pass --snapshot PATH", file=sys.stderr)
        return 2
    print(seed_store(Store(settings.db_path), path).summary())
    return 0


def cmd_migrate(args: argparse.Namespace, settings: Settings) -> int:
    version = Store(settings.db_path).schema_version()
    print(f"{settings.db_path}: schema version {version}")
    return 0


def cmd_submit(args: argparse.Namespace, settings: Settings) -> int:
    from data.errors import SubmissionRejected
    from data.hub import HubClient
    from data.submissions import submit

    store = Store(settings.db_path)
    try:
        result = submit(args.repo_id, args.revision, HubClient(settings), store, settings)
    except SubmissionRejected as e:
        print(f"refused: {e}", file=sys.stderr)
        return 1
    jobs = ", ".join(f"{j.scorer} #{j.id} {j.status.value}" for j in result.jobs)
    where = f"queue position {result.queue_position}" if result.queue_position else "nothing pending"
    print(f"{result.repo_id}@{result.sha[:8]} ({'queued' if result.is_new else 'already queued or scored'}) "
          f"for {result.base_id}: {jobs}; {where}")
    return 0


def cmd_jobs(args: argparse.Namespace, settings: Settings) -> int:
    from data.records import JobStatus

    store = Store(settings.db_path)
    status = None if args.status == "all" else JobStatus(args.status.upper())
    for j in store.jobs(status):
        error = (j.error or "").splitlines()[0][:100] if j.error else ""
        print(f"{j.id}\t{j.status.value}\t{j.scorer}\t{j.repo_id}@{j.revision[:8]}\tattempts {j.attempts}\t{error}")
    print(store.queue_stats(), file=sys.stderr)
    return 0


def _candidate_row(c) -> dict:
    return {
        "repo_id": c.repo_id,
        "sha": c.sha,
        "status": c.status.value,
        "skip_reason": c.skip_reason.value if c.skip_reason else None,
        "kind": c.kind.value,
        "match": c.match.value,
        "downloads": c.downloads,
        "likes": c.likes,
        "license": c.license,
        "last_modified": c.last_modified.isoformat() if c.last_modified else None,
        "num_params": c.num_params,
    }


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--db", type=Path, help="SQLite store (default: $MRL_DB or ./leaderboard.db)")
    common.add_argument("--endpoint", help="Hub endpoint (default: $HF_ENDPOINT or https://huggingface.co)")
    parser = argparse.ArgumentParser(prog="python -m data", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("crawl", parents=[common], help="find finetuned descendants of a base model on the Hub")
    p.add_argument("--base", required=True, help="base model repo id, e.g. FacebookAI/roberta-base")
    p.add_argument("--limit", type=int, help="consider at most N models (by downloads)")
    p.add_argument("--concurrency", type=int, help="parallel per-model requests (default 8)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_crawl)

    p = sub.add_parser("candidates", parents=[common], help="print the crawled candidates of a base")
    p.add_argument("--base", required=True)
    p.add_argument("--format", choices=("csv", "json"), default="csv")
    p.add_argument("--status", choices=("ok", "skipped", "all"), default="all")
    p.set_defaults(func=cmd_candidates)

    p = sub.add_parser("import-published", parents=[common],
                       help="import IBM's published model-recycling results as their own score source")
    p.add_argument("--source", help="URL prefix or local directory laid out like github.com/IBM/model-recycling "
                                     "(default: its master branch on raw.githubusercontent.com)")
    p.add_argument("--timeout-s", type=float, default=30.0, help="per-file download timeout in seconds")
    p.set_defaults(func=cmd_import_published)

    p = sub.add_parser("seed-snapshot", parents=[common],
                       help="add to the store what it lacks of a results snapshot (as python app.py does at start)")
    p.add_argument("--snapshot", metavar="PATH", help="snapshot file (default: $MRL_SNAPSHOT or "
                                                      "data/snapshot/study.json)")
    p.set_defaults(func=cmd_seed_snapshot)

    p = sub.add_parser("serve-hub", parents=[common], help="serve a directory of model repos as a local Hub endpoint")
    p.add_argument("--root", type=Path, required=True, help="ROOT/<org>/<name>/ holds each repo's files")
    p.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (default: any free port)")
    p.set_defaults(func=cmd_serve_hub)

    p = sub.add_parser("submit", parents=[common], help="check a model on the Hub and queue it for scoring")
    p.add_argument("repo_id", help="Hub model id, e.g. me/my-roberta-finetune")
    p.add_argument("--revision", help="branch, tag or commit sha (default: main)")
    p.set_defaults(func=cmd_submit)

    p = sub.add_parser("jobs", parents=[common], help="list scoring jobs and their status")
    p.add_argument("--status", choices=("all", "pending", "running", "done", "failed", "cancelled"), default="all")
    p.set_defaults(func=cmd_jobs)

    p = sub.add_parser("migrate", parents=[common], help="create or upgrade the store's schema")
    p.set_defaults(func=cmd_migrate)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "limit", None) is not None and args.limit <= 0:
        parser.error("--limit must be positive")
    if getattr(args, "concurrency", None) is not None and args.concurrency <= 0:
        parser.error("--concurrency must be positive")
    if getattr(args, "timeout_s", None) is not None and args.timeout_s <= 0:
        parser.error("--timeout-s must be positive")
    settings = settings_from_env(db_path=args.db, hub_endpoint=args.endpoint,
                                 crawl_concurrency=getattr(args, "concurrency", None))  # one "error:" line, exit 2
    configure_logging(settings.log_level)
    resolve_base_arg(args)
    try:
        return args.func(args, settings)
    except LeaderboardError as e:
        logger.error("%s", e)
        return 1


if __name__ == "__main__":
    sys.exit(main())
