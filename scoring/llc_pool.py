"""SGLD chains spread over worker processes of one torch thread each (scoring/process_pool.py).

A MiniLM block's step is small matrices: one thread per chain keeps two cores busier than one process with two
threads or all chains vmapped in one (benchmarks/free_energy.py measures the three). Chain c always draws from
generator seed + c, whichever process runs it, so the estimate does not depend on how many workers there are.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

from scoring.config import SGLDConfig
from scoring.llc import LLCEstimate, estimate_llc_loop, summarise
from scoring.process_pool import map_all


def _run(args) -> LLCEstimate:
    model, data, loss_fn, cfg, n, device = args
    return estimate_llc_loop(model, data, loss_fn, cfg, n=n, device=device)


def chain_groups(chains: int, workers: int) -> list[tuple[int, int]]:
    """(first chain, count) per worker: ``chains`` split as evenly as possible over at most ``workers``."""
    workers = max(1, min(workers, chains))
    sizes = [chains // workers + (w < chains % workers) for w in range(workers)]
    starts = [sum(sizes[:w]) for w in range(workers)]
    return list(zip(starts, sizes, strict=True))


def sample_chains(model: nn.Module, data: tuple[Tensor, Tensor], loss_fn: Callable, cfg: SGLDConfig, *, n: int,
                  device: str = "cpu", workers: int = 1) -> LLCEstimate:
    """``estimate_llc_loop`` with its chains over ``workers`` processes (one: in this process), merged."""
    groups = chain_groups(cfg.num_chains, workers)
    if len(groups) == 1:
        return _run((model, data, loss_fn, cfg, n, device))
    sent = picklable(model)
    calls = [(sent, data, loss_fn, _group_config(cfg, first, count), n, device) for first, count in groups]
    return merge(map_all(_run, calls, len(calls)))


def picklable(model: nn.Module) -> nn.Module:
    """A copy of ``model`` without module hooks (transformers installs closures, which cannot be pickled; the
    sampled forward does not use them), its non-module attributes copied too."""
    import copy

    clone = copy.deepcopy(model)
    _strip_hooks(clone, set())
    return clone


def _strip_hooks(module: nn.Module, seen: set[int]) -> None:
    """Clear the hooks of ``module``, its submodules and the modules held as plain attributes, recursively."""
    for sub in module.modules():
        if id(sub) in seen:
            continue
        seen.add(id(sub))
        for hooks in (sub._forward_hooks, sub._forward_pre_hooks, sub._forward_hooks_with_kwargs,
                      sub._forward_pre_hooks_with_kwargs):
            hooks.clear()
        for value in vars(sub).values():
            if isinstance(value, nn.Module):
                _strip_hooks(value, seen)


def _group_config(cfg: SGLDConfig, first: int, count: int) -> SGLDConfig:
    from dataclasses import replace

    return replace(cfg, seed=cfg.seed + first, num_chains=count)


def merge(parts: list[LLCEstimate]) -> LLCEstimate:
    """One estimate from groups of chains that share w*, L_n(w*) and nβ (each group's acceptance weighted by its
    chains: every chain is probed alike)."""
    accepted = [(p.acceptance, len(p.per_chain)) for p in parts if p.acceptance is not None]
    acceptance = (sum(a * k for a, k in accepted) / sum(k for _, k in accepted)) if accepted else None
    return summarise(torch.cat([p.loss_traces for p in parts]), parts[0].init_loss, parts[0].nbeta, acceptance)
