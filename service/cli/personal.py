"""python -m scoring personal: rank a base's candidates on your own labelled rows (a file or a Hub dataset).

The request goes through the store's queue like every job: by default this process then works the queue's
personal rankings until its own is done and prints the table; ``--no-wait`` only queues it (a running
``python -m scoring work`` takes it) and prints its id.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from data.settings import Settings
from data.store import Store
from service.cli.common import DEVICES, ENDPOINT_HELP, usage_error
from service.personal_submit import START_WORKER


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser("personal", help="rank a base's candidates on your own labelled data")
    p.add_argument("--base", required=True, help="the base model whose leaderboard's candidates are ranked")
    p.add_argument("--data", required=True, help="a CSV, JSONL or Parquet file, or a Hub dataset id")
    p.add_argument("--text-column", default="text")
    p.add_argument("--pair-column", help="an optional second text column (sentence pairs)")
    p.add_argument("--label-column", default="label")
    p.add_argument("--config", help="Hub dataset: its config")
    p.add_argument("--split", default="train", help="Hub dataset: the split (default train)")
    p.add_argument("--revision", help="Hub dataset: a commit sha, branch or tag")
    p.add_argument("--top-k", type=int, help="candidates besides the base (default: MRL_PERSONAL_TOP_K or 10)")
    p.add_argument("--models", help="rank these instead of the top K, with the base: Hub ids (owner/name[@revision]) "
                                    "and local checkpoint folders (./dir), comma-separated")
    p.add_argument("--out", type=Path, help="also write the ranking to this .csv or .json file")
    p.add_argument("--no-wait", action="store_true", help="queue it and print its id; a worker runs it")
    p.add_argument("--device", default="cpu", choices=DEVICES)
    p.add_argument("--db", type=Path)
    p.add_argument("--endpoint", help=ENDPOINT_HELP)
    p.set_defaults(seeds=1, base_seeds=1)
    return p


def read_data(args: argparse.Namespace, settings: Settings):
    """The user's rows from the file or the Hub dataset ``--data`` names (UserDataError: one sentence)."""
    from data.user_data import Columns, UploadLimits, read_hub_dataset, read_upload

    columns = Columns(text=args.text_column, label=args.label_column, pair=args.pair_column)
    limits = UploadLimits(max_rows=settings.personal_max_rows, max_bytes=settings.personal_max_bytes)
    path = Path(args.data)
    if path.is_file():
        return read_upload(path, columns, name=path.name, limits=limits)
    if path.exists() or args.data.endswith((".csv", ".jsonl", ".parquet")):
        raise FileNotFoundError(f"{args.data} is not a readable file")
    return read_hub_dataset(args.data, columns=columns, config=args.config, split=args.split,
                            revision=args.revision, limits=limits, cache_dir=Path(settings.cache_dir) / "datasets")


def run(args: argparse.Namespace, settings: Settings) -> int:
    from data.errors import LeaderboardError, StoreError, public_sentence
    from data.user_data import UserDataError
    from service.personal import submit
    from service.personal_submit import unfetchable_sentence

    if args.out is not None and args.out.suffix not in (".csv", ".json"):
        return usage_error(f"--out must end in .csv or .json, got {args.out}")
    try:
        data = read_data(args, settings)
    except (UserDataError, FileNotFoundError) as e:
        return usage_error(str(e))
    store = Store(settings.db_path)
    try:
        request = submit(store, settings, base_id=args.base, data=data, top_k=args.top_k, models=args.models,
                         any_path=True)
    except StoreError as e:
        return usage_error(public_sentence(e))
    except LeaderboardError as e:  # our sentence, naming what the user typed
        return usage_error(str(e))
    which = (f"{request.summary['models']} models" if request.models else
             f"base {request.base_id} and its top {request.top_k}")
    print(f"queued personal ranking {request.id}: {data.num_rows} rows, {data.num_classes} classes, {which}")
    if missing := request.summary.get("not_fetchable"):
        print(f"cannot be fetched now, so listed unranked: {unfetchable_sentence(missing)}")
    if args.no_wait and not store.queue.worker_alive():
        print(f"no scoring worker is running: start one with `{START_WORKER}`")
    if args.no_wait:
        return 0
    return _work_and_print(store, settings, request.id, args)


def _work_and_print(store: Store, settings: Settings, request_id: str, args: argparse.Namespace) -> int:
    from data.records import PERSONAL_JOB, JobStatus
    from ranking.personal import personal_csv, personal_frame, personal_json
    from service.worker import Worker

    worker = Worker(store, settings, scorers=[PERSONAL_JOB], device=args.device)
    worker.install_signal_handlers()
    while (request := store.requests.personal(request_id)) is not None and request.status in (JobStatus.PENDING,
                                                                                     JobStatus.RUNNING):
        report = worker.run(once=True)
        if report.done + report.failed + report.retried == 0:
            time.sleep(2)  # another worker holds it
    request = store.requests.personal(request_id)
    if request is None or request.result is None:
        print(f"error: the personal ranking {request_id} did not finish: "
              f"{request.error if request else 'it expired'}")
        for model in request.progress if request else ():
            print(f"  {model['repo_id']}: {model.get('error') or 'scored'}")
        return 1
    frame = personal_frame(request.result)
    print(frame.drop(columns=["revision", "seconds"]).to_string(index=False))
    print(request.result.rule)
    if args.out is not None:
        render = personal_csv if args.out.suffix == ".csv" else personal_json
        args.out.write_bytes(render(request.result))
        print(f"wrote {args.out}")
    return 0
