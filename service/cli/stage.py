"""python -m scoring stage probe|full --base BASE: the two-stage policy. Stage 1 runs the registered prefilter
on every candidate of the base; stage 2 runs the full scorer on the top K by probe accuracy. Both print the
probe's Spearman correlation with the mean gain."""

from __future__ import annotations

import argparse
from pathlib import Path

from data.settings import Settings
from data.store import Store
from scoring import registry
from service.cli.common import (
    DEVICES,
    ENDPOINT_HELP,
    LRS_HELP,
    PROFILES,
    learning_rates,
    make_scorer,
    probe_gain_line,
    scoring_context,
)


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser("stage", help="the two-stage policy: probe every candidate, or intertrain the top K")
    p.add_argument("stage", choices=("probe", "full"))
    p.add_argument("--base", required=True, help="a crawled base model")
    p.add_argument("--top-k", type=int, default=10, help="stage full: how many candidates by probe accuracy")
    p.add_argument("--suite", default="quick")
    p.add_argument("--profile", default="quick", choices=PROFILES)
    p.add_argument("--seeds", type=int, default=1)
    p.add_argument("--base-seeds", type=int, default=3)
    p.add_argument("--lrs", type=learning_rates, help=LRS_HELP)
    p.add_argument("--probe-target")
    p.add_argument("--local-root", type=Path)
    p.add_argument("--device", default="cpu", choices=DEVICES)
    p.add_argument("--db", type=Path)
    p.add_argument("--endpoint", help=ENDPOINT_HELP)
    p.add_argument("--quiet", action="store_true")
    return p


def run(args: argparse.Namespace, settings: Settings) -> int:
    from data.hub import HubClient
    from service.stages import probe_candidates, score_top_k

    store = Store(settings.db_path)
    hub = HubClient(settings)
    ctx = scoring_context(args, settings, store)
    if args.stage == "probe":
        n = probe_candidates(store, args.base, make_scorer(registry.prefilter(), args, settings), hub.snapshot, ctx)
        print(f"stage 1: probed {n} models of {args.base}")
    else:
        scorer = make_scorer(registry.gain_scorer(), args, settings)
        n = score_top_k(store, args.base, args.top_k, scorer, hub.snapshot, ctx)
        print(f"stage 2: intertraining for the top {n} candidates of {args.base} by probe")
    print(probe_gain_line(store, args.base))
    return 0
