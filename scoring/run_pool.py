"""Fine-tuning runs one after another, or side by side in child processes of one torch thread each.

On 2 CPU cores two one-thread runs at once finish a MiniLM run every 24 s where one two-thread run takes 33 s
(measured on sst2 with the study's protocol, 2026-12-07): small matrices do not keep two threads busy. With
``workers`` > 1 the runs go to scoring/process_pool.py's spawned processes; each run is
independent (its own seed, data order and head), so the results do not depend on which process ran it.
On a GPU use one worker: runs share the device.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from scoring.config import FinetuneConfig
from scoring.examples import TargetData
from scoring.process_pool import map_all


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


def run_all(calls: Sequence[RunCall], workers: int = 1) -> list:
    """The ``FinetuneResult`` of every call, in order; an exception in any run is raised here."""
    if workers <= 1 or len(calls) <= 1:
        return [run_one(call) for call in calls]
    return map_all(run_one, calls, workers)
