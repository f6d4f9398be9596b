"""Guided vs standard dropout, measured: the same model, targets, data fractions and seeds, both protocols.

For each target and fraction of its training set, fine-tune with ``dropout="standard"`` and ``"guided"``
on the same seeds (the same data order and head init), then report each protocol's mean test score with a
95% t-interval over seeds and the paired difference guided − standard with its interval. Whatever comes
out is reported, no gain included.

    python -m scoring dropout-study MODEL --targets rte,mrpc --fractions 0.1,0.5 --seeds 3
"""

from __future__ import annotations

import math
import statistics
import time
from dataclasses import dataclass, replace
from pathlib import Path

from data.targets import suite
from scoring.config import QUICK, FinetuneConfig

# two-sided 95% Student t quantiles by degrees of freedom (1..10), enough for a handful of seeds
T95 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228)


def t_interval(values: list[float]) -> tuple[float, float]:
    """(mean, half-width of the 95% t-interval); half-width NaN with one value."""
    mean = statistics.fmean(values)
    if len(values) < 2:
        return mean, math.nan
    t = T95[min(len(values) - 2, len(T95) - 1)]
    return mean, t * statistics.stdev(values) / math.sqrt(len(values))


@dataclass(frozen=True, slots=True)
class StudyRow:
    target: str
    fraction: float
    n_train: int
    standard: list[float]
    guided: list[float]
    seconds: float

    def line(self) -> str:
        (ms, hs), (mg, hg) = t_interval(self.standard), t_interval(self.guided)
        md, hd = t_interval([g - s for g, s in zip(self.guided, self.standard, strict=True)])
        return (f"| {self.target} | {self.fraction:.0%} ({self.n_train}) | {100 * ms:.1f} ± {100 * hs:.1f} | "
                f"{100 * mg:.1f} ± {100 * hg:.1f} | {100 * md:+.1f} ± {100 * hd:.1f} | {self.seconds:.0f} s |")


HEADER = ("| target | train fraction (rows) | standard | guided | guided − standard (paired) | wall |\n"
          "|---|---|---|---|---|---|")


def run_study(model_dir: Path, targets: str, fractions: list[float], seeds: int, *, base: FinetuneConfig = QUICK,
              local_root: Path | None = None, cache_dir: Path | None = None, device: str = "cpu",
              echo=print) -> list[StudyRow]:
    from scoring.finetune import finetune
    from scoring.target_data import load_target

    rows = []
    echo(HEADER)
    for spec in suite(targets, local_root=local_root):
        full = load_target(spec, seed=0, local_root=local_root)
        for fraction in fractions:
            n = max(8, int(fraction * len(full.train)))
            cfg = replace(base, max_train_examples=n)
            started = time.perf_counter()
            scores = {mode: [finetune(model_dir, full, replace(cfg, dropout=mode, seed=seed), device=device,
                                      cache_dir=cache_dir, local_root=local_root).test_score for seed in range(seeds)]
                      for mode in ("standard", "guided")}
            row = StudyRow(full.name, fraction, n, scores["standard"], scores["guided"], time.perf_counter() - started)
            echo(row.line())
            rows.append(row)
    return rows
