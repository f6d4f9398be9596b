"""The learning rate of one (base, target), chosen by a small sweep of the base alone, and the suite's floor.

For each learning rate of ``IntertrainingConfig.lrs`` the base is fine-tuned at every base seed. A rate at
which any seed fails its checks (scoring/run_check.py) is out; of the rest, the one with the highest mean
*eval* score is chosen (ties: the smaller rate), so the test split plays no part in the choice. The target is
then kept only if the base's mean test score at that rate is at least ``min_base_margin`` above the test
split's majority-class rate (a Spearman target: at least ``min_base_margin``): a target the base cannot learn
measures noise, not transfer. Candidates are fine-tuned at the chosen rate only; a dropped target gets no
candidate runs.

``choose_lr`` is pure: it takes a function that runs the base at (lr, seed) and returns the run's result and
failure reasons, so the rule is tested on known outcomes.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from scoring.finetune import FinetuneResult

RunBase = Callable[[float, int], tuple[FinetuneResult, tuple[str, ...]]]


@dataclass(frozen=True, slots=True)
class LrChoice:
    """The sweep's outcome for one target: the rate (None when dropped), why, and what each rate scored."""

    lr: float | None
    reason: str  # "" when the target is kept
    lrs: tuple[float, ...]
    eval_means: tuple[float, ...]
    test_means: tuple[float, ...]
    failed: tuple[int, ...]  # failed base seeds per rate
    majority_rate: float
    runs: tuple[tuple[FinetuneResult, tuple[str, ...]], ...]  # the base's runs at the chosen rate, by seed

    @property
    def kept(self) -> bool:
        return self.lr is not None


def choose_lr(run_base: RunBase, lrs: Sequence[float], seeds: int, metric: str, margin: float) -> LrChoice:
    """Run the base at every (lr, seed), pick the rate as the module says, apply the floor."""
    outcomes = {lr: [run_base(lr, seed) for seed in range(seeds)] for lr in lrs}
    eval_means = tuple(statistics.fmean(r.eval_score for r, _ in outcomes[lr]) for lr in lrs)
    test_means = tuple(statistics.fmean(r.test_score for r, _ in outcomes[lr]) for lr in lrs)
    failed = tuple(sum(bool(reasons) for _, reasons in outcomes[lr]) for lr in lrs)
    majority = next((r.majority_rate for runs in outcomes.values() for r, _ in runs), math.nan)
    ok = [i for i in range(len(lrs)) if failed[i] == 0 and math.isfinite(eval_means[i])]
    best = max(ok, key=lambda i: (eval_means[i], -lrs[i])) if ok else None
    reason = _drop_reason(lrs, failed, seeds, best, test_means, majority, metric, margin)
    chosen = None if reason or best is None else lrs[best]
    runs = tuple(outcomes[lrs[best]]) if best is not None else ()
    return LrChoice(lr=chosen, reason=reason, lrs=tuple(lrs), eval_means=eval_means, test_means=test_means,
                    failed=failed, majority_rate=majority, runs=runs)


def _drop_reason(lrs, failed, seeds, best, test_means, majority, metric, margin) -> str:
    if best is None:
        counts = ", ".join(f"lr {lr:g}: {n} of {seeds}" for lr, n in zip(lrs, failed, strict=True))
        return f"at every learning rate some base seed failed its checks ({counts} failed)"
    score = test_means[best]
    if metric == "accuracy" and math.isfinite(majority):
        if score < majority + margin:
            return (f"the base's mean test accuracy {score:.2%} (lr {lrs[best]:g}) is under {margin:.0%} above the "
                    f"majority-class rate {majority:.2%}: near chance")
    elif score < margin:
        return f"the base's mean test {metric} {score:.3f} (lr {lrs[best]:g}) is under {margin:.2f}: near chance"
    return ""
