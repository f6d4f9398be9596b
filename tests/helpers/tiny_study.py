"""The offline study in miniature: a tiny BERT base, the tiny two-target suite, every scorer shrunk."""

from __future__ import annotations

import random
from dataclasses import dataclass, replace
from pathlib import Path

from scoring.config import PROBE, QUICK, FreeEnergyConfig, SGLDConfig
from scoring.linear_probe import LinearProbeConfig
from scoring.sample_efficiency import SampleEfficiencyConfig
from scoring.study import StudyConfig
from tests.helpers.tiny_models import TINY_BERT, WORDS, build_base
from tests.helpers.tiny_suite import write_tiny_suite

BASE = "tiny/bert-base"
TINY_FT = replace(QUICK, lr=1e-3, max_train_examples=64, max_eval_examples=50, eval_every_examples=64,
                  patience_examples=256, max_length=24, batch_size=16, micro_batch_size=16, max_epochs=2)


@dataclass(frozen=True)
class TinyStudyWorld:
    base_dir: Path
    data_root: Path
    corpus: Path


def tiny_study_world(root: Path) -> TinyStudyWorld:
    base_dir = build_base(TINY_BERT, root / "base")
    rng = random.Random(0)
    corpus = root / "corpus.txt"
    corpus.write_text("\n".join(" ".join(rng.choices(WORDS, k=rng.randint(5, 15))) for _ in range(200)))
    return TinyStudyWorld(base_dir, write_tiny_suite(root / "data", n_train=120, n_test=60), corpus)


def tiny_study_config(corpus: Path) -> StudyConfig:
    sgld = SGLDConfig(epsilon=1e-4, gamma=100.0, num_chains=2, num_draws=10, num_burnin=2, batch_size=8)
    se_ft = replace(TINY_FT, max_epochs=1, batch_size=8, micro_batch_size=8)
    return StudyConfig(
        base_id=BASE, org="study", sources="cats,dogs", targets="cats,dogs", source_finetune=TINY_FT,
        target_finetune=TINY_FT, base_seeds=2,
        probe=LinearProbeConfig(probe=replace(PROBE, max_train_examples=120), target="cats"),
        free_energy=FreeEnergyConfig(sgld=sgld, corpus=str(corpus), num_sequences=32, seq_len=16, head_steps=5),
        guided_base_seeds=1,
        sample_efficiency=SampleEfficiencyConfig(n_labels=(8, 16, 32), seeds=1, rank=4, targets="cats", finetune=se_ft),
    )


def main() -> None:
    """``python -m tests.helpers.tiny_study OUT [--device cuda]``: the miniature study, e.g. to smoke-test a GPU."""
    import argparse
    import logging

    from scoring.study import run_study

    parser = argparse.ArgumentParser()
    parser.add_argument("out", type=Path)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    logging.basicConfig(level="INFO", format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    world = tiny_study_world(args.out / "world")
    report = run_study(tiny_study_config(world.corpus), args.out / "study", world.base_dir, device=args.device,
                       local_root=world.data_root)
    print(f"tiny study on {args.device}: {report.jobs_done} jobs done, {report.jobs_failed} failed, "
          f"{report.total_s:.0f}s {report.timings}")


if __name__ == "__main__":
    main()
