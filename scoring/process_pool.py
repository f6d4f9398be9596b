"""Spawned child processes of one torch thread each, kept for the life of this process (one pool per size).

Fine-tuning runs (scoring/run_pool.py) and SGLD chains (scoring/llc_pool.py) are spread over them. A pool of
``workers`` processes is made on first use and shut down at exit.
"""

from __future__ import annotations

import atexit
import multiprocessing
import os
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor


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
