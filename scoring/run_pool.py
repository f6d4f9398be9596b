"""Fine-tuning runs one after another, or side by side in child processes of one torch thread each.

On 2 CPU cores two one-thread runs at once finish a MiniLM run every 24 s where one two-thread run takes 33 s
(measured on sst2 with the study's protocol, 2026-12-07): small matrices do not keep two threads busy. A
``RunPool`` of ``workers`` > 1 keeps that many spawned processes for the life of this process; each run is
independent (its own seed, data order and head), so the results do not depend on which process ran it.
On a GPU use one worker: runs share the device.
"""

from __future__ import annotations

import atexit
import multiprocessing
import os
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from scoring.config import FinetuneConfig
from scoring.examples import TargetData


@dataclass(frozen=True, slots=True)
class RunCall:
    """One fine-tuning run: ``scoring.finetune.finetune``'s arguments."""

    model_dir: Path
    target: TargetData
    cfg: FinetuneConfig
    device: str = "cpu"
    cache_dir: Path | None = None
    local_root: Path | None = None


def run_one(call: RunCall):
    from scoring.finetune import finetune

    return finetune(call.model_dir, call.target, call.cfg, device=call.device, cache_dir=call.cache_dir,
                    local_root=call.local_root)


def _one_thread() -> None:
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[name] = "1"
    import torch

    torch.set_num_threads(1)


_executors: dict[int, ProcessPoolExecutor] = {}


def _executor(workers: int) -> ProcessPoolExecutor:
    if workers not in _executors:
        _executors[workers] = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"),
                                                  initializer=_one_thread)
        atexit.register(_executors[workers].shutdown, cancel_futures=True)
    return _executors[workers]


def map_all(fn, items: Sequence, workers: int) -> list:
    """``fn`` (a module-level function) over ``items`` in the pool's processes, results in order."""
    return list(_executor(workers).map(fn, items))


def run_all(calls: Sequence[RunCall], workers: int = 1) -> list:
    """The ``FinetuneResult`` of every call, in order; an exception in any run is raised here."""
    if workers <= 1 or len(calls) <= 1:
        return [run_one(call) for call in calls]
    return list(_executor(workers).map(run_one, calls))
