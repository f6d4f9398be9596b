"""python -m scoring stage probe|full --base BASE: the two-stage policy. Stage 1 runs the registered prefilter
on every candidate of the base; stage 2 runs the full scorer on the top K by probe accuracy. Both print the
probe's Spearman correlation with the mean gain."""

from __future__ import annotations

import argparse

from data.settings import Settings
from data.store import Store
from scoring import registry
from service.cli.common import (
    ENDPOINT_HELP,
    add_scoring_options,
    make_scorer,
    probe_gain_line,
    scoring_context,
)


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser("stage", help="the two-stage policy: probe every candidate, or intertrain the top K")
    p.add_argument("stage", choices=("probe", "full"))
    p.add_argument("--base", required=True, help="a crawled base model")
    p.add_argument("--top-k", type=int, default=10, help="stage full: how many candidates by probe accuracy")
    add_scoring_options(p)
    p.add_argument("--endpoint", help=ENDPOINT_HELP)
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
