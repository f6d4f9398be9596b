"""The offline study in miniature: a tiny BERT base, the tiny two-target suite, every scorer shrunk.

``python -m tests.helpers.tiny_study OUT`` runs it; ``python -m tests.helpers.tiny_study work WORLD DB ...`` is one
more worker process on a study's queue (the end-to-end test starts these, and kills one).
"""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass, replace
from pathlib import Path

from scoring.config import PROBE, QUICK, FreeEnergyConfig, LinearProbeConfig, SampleEfficiencyConfig, SGLDConfig
from service.study import StudyConfig
from tests.helpers.tiny_models import TINY_BERT, WORDS, build_base
from tests.helpers.tiny_suite import write_reference_text, write_tiny_suite

BASE = "tiny/bert-base"
# the targets' protocol: one the tiny base learns under (with the sources' one it predicts one class: a failed run)
TINY_FT = replace(QUICK, lr=1e-2, max_train_examples=400, max_eval_examples=50, eval_every_examples=64,
                  patience_examples=256, max_length=24, batch_size=16, micro_batch_size=16, max_epochs=3)
# the sources' (intermediate models'): short, so the study candidates keep probing above the end-to-end test's
# submitted finetunes and stage 2's choice does not depend on when those arrive
SOURCE_FT = replace(TINY_FT, lr=1e-3, max_train_examples=64, max_epochs=2)


@dataclass(frozen=True)
class TinyStudyWorld:
    base_dir: Path
    data_root: Path
    corpus: Path


def world_at(root: Path) -> TinyStudyWorld:
    """Where ``tiny_study_world(root)`` puts the base, the suite and the corpus."""
    return TinyStudyWorld(root / "base", root / "data", root / "corpus.txt")


def tiny_study_world(root: Path) -> TinyStudyWorld:
    world = world_at(root)
    build_base(TINY_BERT, world.base_dir)
    rng = random.Random(0)
    world.corpus.write_text("\n".join(" ".join(rng.choices(WORDS, k=rng.randint(5, 15))) for _ in range(200)))
    write_tiny_suite(world.data_root, n_train=400, n_test=60)
    write_reference_text(world.data_root, n_rows=2000)  # the guided-dropout Fisher's "local" corpus: 256 x 62 tokens
    return world


def tiny_study_config(corpus: Path) -> StudyConfig:
    sgld = SGLDConfig(epsilon=1e-4, gamma=100.0, num_chains=2, num_draws=10, num_burnin=2, batch_size=8)
    se_ft = replace(TINY_FT, max_epochs=1, batch_size=8, micro_batch_size=8)
    return StudyConfig(
        base_id=BASE, org="study", sources="cats,dogs", targets="cats,dogs", source_finetune=TINY_FT,
        source_fallback=None, target_finetune=TINY_FT, base_seeds=2, candidate_seeds=1,
        lrs=(),  # the sweep has its own tests
        probe=LinearProbeConfig(probe=replace(PROBE, max_train_examples=120), target="cats"),
        free_energy=FreeEnergyConfig(sgld=sgld, corpus=str(corpus), num_sequences=32, seq_len=16, head_sequences=32,
                                     head_max_steps=5, halving_check=False),
        guided_base_seeds=1, run_workers=1,
        top_k=4,  # every model the tests put on the Hub (2 sources + the end-to-end test's 2 submissions), so stage
        # 2 never depends on the order in which probe jobs finish
        sample_efficiency=SampleEfficiencyConfig(n_labels=(8, 16, 32), seeds=1, rank=4, targets="cats", finetune=se_ft,
                                                 steps=2),
    )


def study_settings(world: TinyStudyWorld, db_path: Path, hub_url: str, *, job_lease_s: float = 600.0):
    """Settings for one more worker on a tiny study's store: the study's own (its scorers, top-K = every source,
    its cache), quick Hub retries and the given job lease."""
    from data.settings import Settings
    from data.targets import suite

    cfg = tiny_study_config(world.corpus)
    sources = suite(cfg.sources, local_root=world.data_root)
    return Settings(db_path=db_path, hub_endpoint=hub_url, cache_dir=db_path.parent / "cache", snapshot_path=None,
                    crawl_scorers=("linear_probe", "free_energy"), top_k=cfg.top_k or len(sources),
                    crawl_backoff_base_s=0.01,
                    crawl_backoff_max_s=0.05, job_lease_s=job_lease_s)


@dataclass(frozen=True)
class HeldScorer:
    """A scorer that, its scores computed, touches ``hold_path`` and blocks instead of returning them: a worker
    that dies mid-job at a moment the test chooses (heartbeats sent, nothing written)."""

    scorer: object
    hold_path: Path

    @property
    def name(self) -> str:
        return self.scorer.name

    def score(self, job, ctx):
        scores = self.scorer.score(job, ctx)
        self.hold_path.write_text(f"{job.repo_id}@{job.revision} {self.name}: {len(scores)} scores held\n")
        threading.Event().wait()  # until the process is killed
        return scores


def work(argv: list[str]) -> None:
    """``python -m tests.helpers.tiny_study work WORLD DB --hub URL --name NAME [--scorers a,b] [--lease S]
    [--hold PATH]``: a worker with the study's scorers that drains the queue once and exits."""
    import argparse

    from data.store import Store
    from service.study import study_scorers
    from service.worker import Worker

    parser = argparse.ArgumentParser(prog="python -m tests.helpers.tiny_study work")
    parser.add_argument("world", type=Path, help="the tiny world's root (tiny_study_world)")
    parser.add_argument("db", type=Path, help="the study's store")
    parser.add_argument("--hub", required=True, help="the Hub endpoint serving the study's repos")
    parser.add_argument("--name", required=True, help="the worker's name on the jobs it claims")
    parser.add_argument("--scorers", help="comma-separated scorers to claim (default: any)")
    parser.add_argument("--lease", type=float, default=600.0, help="job lease in seconds")
    parser.add_argument("--hold", type=Path, help="block in the first job, after scoring it, touching this file")
    args = parser.parse_args(argv)
    world = world_at(args.world)
    make = study_scorers(tiny_study_config(world.corpus), world.data_root)
    worker = Worker(Store(args.db), study_settings(world, args.db, args.hub, job_lease_s=args.lease),
                    scorers=args.scorers.split(",") if args.scorers else None, name=args.name,
                    scorer_factory=(lambda name: HeldScorer(make(name), args.hold)) if args.hold else make)
    worker.install_signal_handlers()
    report = worker.run(once=True)
    print(f"worker {args.name}: {report.done} done, {report.failed} failed, {report.retried} retried, "
          f"{report.released} released in {report.seconds:.1f}s", flush=True)


def main() -> None:
    """``python -m tests.helpers.tiny_study OUT [--device cuda]``: the miniature study, e.g. to smoke-test a GPU."""
    import argparse
    import logging
    import sys

    from service.study import run_study

    logging.basicConfig(level="INFO", format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if sys.argv[1:2] == ["work"]:
        work(sys.argv[2:])
        return
    parser = argparse.ArgumentParser()
    parser.add_argument("out", type=Path)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    world = tiny_study_world(args.out / "world")
    report = run_study(tiny_study_config(world.corpus), args.out / "study", world.base_dir, device=args.device,
                       local_root=world.data_root)
    print(f"tiny study on {args.device}: {report.jobs_done} jobs done, {report.jobs_failed} failed, "
          f"{report.total_s:.0f}s {report.timings}")


if __name__ == "__main__":
    main()
