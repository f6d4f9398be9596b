"""python -m scoring llc-sweep REPO_ID --base BASE: calibrate SGLD for the free energy by the stated rule
(scoring/llc_calibration.py): down a ladder of steps, for each localization from the weakest, each rung keeping
draws for the same simulated time after a burn-in of at least three relaxation times 2/(epsilon gamma), the MALA
acceptance probed on kept steps only; the first rung whose acceptance reaches the target is chosen. One row per
rung (its steps: burn-in + draws)."""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

from data.settings import Settings
from service.cli.common import MODEL_HELP, add_run_flags, resolve_model


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser("llc-sweep", help="calibrate SGLD for the free energy: the largest step whose MALA "
                              "acceptance reaches the target, weakest localization first")
    p.add_argument("repo_id", help=MODEL_HELP)
    p.add_argument("--base", required=True, help="the base model, whose tokenizer cuts the reference corpus (Hub id "
                   "or directory)")
    p.add_argument("--epsilon", default="4e-5,2e-5,1e-5,5e-6", help="step ladder, descending (comma-separated); "
                   "the default brackets the free energy's 1e-5 for its default sampled block, the last encoder "
                   "layer (for the whole encoder this command's former ladder was 4e-6,2e-6,1e-6,5e-7)")
    p.add_argument("--gamma", default="1000,10000", help="localization ladder, ascending (comma-separated)")
    p.add_argument("--time", type=float, default=0.01, help="simulated time per rung, epsilon x steps: three "
                   "quarters of time/epsilon steps are kept as draws, after a burn-in of the other quarter or of 3 "
                   "relaxation times 3 x 2/(epsilon gamma) steps, whichever is longer; MALA is probed on the draws "
                   "only (0.01 at gamma 1000, epsilon 1e-5: 600 burn-in steps, then 750 draws spanning 3.75 "
                   "relaxation times)")
    p.add_argument("--preconditioner", choices=("none", "rmsprop"), default="none",
                   help="plain SGLD or RMSProp-preconditioned SGLD (scoring/config.py SGLDConfig)")
    p.add_argument("--target", type=float, default=0.9, help="mean MALA acceptance to reach")
    p.add_argument("--chains", type=int, default=2)
    p.add_argument("--local-root", type=Path)
    add_run_flags(p)
    p.set_defaults(seeds=1, base_seeds=1)
    return p


def run(args: argparse.Namespace, settings: Settings) -> int:
    from scoring.config import FreeEnergyConfig
    from scoring.free_energy import Reference, free_energy
    from scoring.llc_calibration import choose_step

    _, revision, model_dir = resolve_model(args.repo_id, settings)
    _, _, base_dir = resolve_model(args.base, settings)
    cfg = FreeEnergyConfig(corpus=settings.reference_corpus)
    cfg = replace(cfg, sgld=replace(cfg.sgld, num_chains=args.chains, preconditioner=args.preconditioner))
    ref = Reference(base_dir, cfg, local_root=args.local_root)

    def estimate_at(sgld):
        return free_energy(model_dir, revision, ref, replace(cfg, sgld=sgld), cache_dir=Path(settings.cache_dir),
                           device=args.device).llc

    choice = choose_step(estimate_at, cfg.sgld, ladder=_floats(args.epsilon), gammas=_floats(args.gamma),
                         target=args.target, time=args.time)
    print(f"{'epsilon':>9} {'gamma':>9} {'steps':>7} {'llc':>9} {'std':>7} {'accept':>7} {'drift':>7} {'R-hat':>6}")
    for r in choice.rungs:
        e = r.estimate
        figures = (f"{e.mean:>9.2f} {e.std:>7.2f} {e.acceptance or float('nan'):>7.3f} {e.drift:>7.2f} "
                   f"{e.r_hat:>6.3f}" if e else f"diverged: {r.error}")
        print(f"{r.epsilon:>9.2g} {r.gamma:>9.3g} {r.steps:>7d} {figures}")
    if choice.epsilon is None:
        print(choice.reason)
        return 1
    print(f"chosen: epsilon {choice.epsilon:g}, gamma {choice.gamma:g} (acceptance "
          f"{choice.estimate.acceptance:.3f} >= {args.target:g}), llc {choice.estimate.mean:.2f}")
    return 0


def _floats(text: str) -> tuple[float, ...]:
    return tuple(float(v) for v in text.split(","))
