"""python -m scoring work: claim queued jobs and score them, in this process or as Ray tasks on a cluster."""

from __future__ import annotations

import argparse
from pathlib import Path

from data.settings import Settings
from data.store import Store
from service.cli.common import DEVICES, ENDPOINT_HELP, LOCAL_ROOT_HELP, usage_error


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser("work", help="claim queued jobs and score them (in-process, or on a Ray cluster)")
    p.add_argument("--once", action="store_true", help="stop when the queue is empty instead of waiting")
    p.add_argument("--scorers", help="comma-separated scorers to take, 'personal' for personal rankings (default: all)")
    p.add_argument("--max-jobs", type=int, help="stop after this many jobs")
    p.add_argument("--ray", metavar="ADDRESS", help="dispatch jobs as Ray tasks: a cluster address or 'auto'")
    p.add_argument("--gpus-per-task", type=float, default=None, help="Ray: GPUs per task (default 1 with "
                   "--device cuda, else 0)")
    p.add_argument("--local-root", type=Path, help=LOCAL_ROOT_HELP)
    p.add_argument("--device", default="cpu", choices=DEVICES)
    p.add_argument("--db", type=Path)
    p.add_argument("--endpoint", help=ENDPOINT_HELP)
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(seeds=1, base_seeds=1)
    return p


def run(args: argparse.Namespace, settings: Settings) -> int:
    from scoring import registry

    scorers = [s.strip() for s in args.scorers.split(",")] if args.scorers else None
    from data.records import PERSONAL_JOB

    unknown = [s for s in registry.unknown(scorers or ()) if s != PERSONAL_JOB]
    if unknown:
        return usage_error(f"unknown scorers {', '.join(unknown)}; known: {', '.join(registry.SCORERS)}")
    store = Store(settings.db_path)
    report = _run_on_ray(args, settings, store, scorers) if args.ray else _run_here(args, settings, store, scorers)
    print(f"{report.done} done, {report.failed} failed, {report.retried} to retry, {report.released} released "
          f"in {report.seconds:.0f}s; queue: {store.queue.queue_stats()}")
    return 0


def _run_here(args: argparse.Namespace, settings: Settings, store: Store, scorers: list[str] | None):
    from service.worker import Worker

    worker = Worker(store, settings, scorers=scorers, device=args.device, local_root=args.local_root,
                    verbose=not args.quiet)
    worker.install_signal_handlers()
    return worker.run(once=args.once, max_jobs=args.max_jobs)


def _run_on_ray(args: argparse.Namespace, settings: Settings, store: Store, scorers: list[str] | None):
    from service.ray_driver import RayDriver

    driver = RayDriver(store, settings, address=args.ray, scorers=scorers, device=args.device,
                       num_gpus=args.gpus_per_task, local_root=args.local_root)
    return driver.run(once=args.once, max_jobs=args.max_jobs)
