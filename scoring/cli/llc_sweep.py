"""python -m scoring llc-sweep REPO_ID --base BASE: calibrate SGLD for the free energy, one row per
(epsilon, gamma): the LLC, its spread over chains, the trace's drift and a verdict."""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

from data.settings import Settings
from scoring.cli.common import MODEL_HELP, add_run_flags, resolve_model


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser("llc-sweep", help="calibrate SGLD for the free energy: LLC and trace drift per "
                              "(epsilon, gamma)")
    p.add_argument("repo_id", help=MODEL_HELP)
    p.add_argument("--base", required=True, help="the base model, whose tokenizer cuts the reference corpus (Hub id "
                   "or directory)")
    p.add_argument("--epsilon", default="1e-6,3e-6,1e-5", help="comma-separated step sizes")
    p.add_argument("--gamma", default="100,1000,10000", help="comma-separated localization strengths")
    p.add_argument("--draws", type=int, default=100)
    p.add_argument("--chains", type=int, default=2)
    p.add_argument("--local-root", type=Path)
    add_run_flags(p)
    p.set_defaults(seeds=1, base_seeds=1)
    return p


def run(args: argparse.Namespace, settings: Settings) -> int:
    from scoring.config import FreeEnergyConfig
    from scoring.free_energy import Reference, calibration_sweep

    _, revision, model_dir = resolve_model(args.repo_id, settings)
    _, _, base_dir = resolve_model(args.base, settings)
    cfg = FreeEnergyConfig(corpus=settings.reference_corpus)
    cfg = replace(cfg, sgld=replace(cfg.sgld, num_chains=args.chains, num_draws=args.draws))
    ref = Reference(base_dir, cfg, local_root=args.local_root)
    rows = calibration_sweep(model_dir, revision, ref, cfg, [float(v) for v in args.epsilon.split(",")],
                             [float(v) for v in args.gamma.split(",")], cache_dir=Path(settings.cache_dir),
                             device=args.device)
    print(f"{'epsilon':>9} {'gamma':>9} {'llc':>9} {'std':>7} {'drift':>7}  verdict")
    for r in rows:
        verdict = "stable" if r.stable else ("; ".join(r.diagnostics) or "drifting")
        print(f"{r.epsilon:>9.2g} {r.gamma:>9.3g} {r.llc:>9.2f} {r.llc_std:>7.2f} {r.drift:>7.2f}  {verdict}")
    return 0
