"""What the ``python -m scoring`` subcommands share: resolving a model argument, building a scorer from the
command line, the scoring context, and the lines printed after scoring. Imports no torch at module level."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from data.settings import Settings
from data.store import Store

DEVICES = ("cpu", "cuda")
PROFILES = ("quick", "published")
LOCAL_ROOT_HELP = "directory of local datasets (default ../shared/datasets)"
ENDPOINT_HELP = "Hub endpoint (default: $HF_ENDPOINT or https://huggingface.co)"
MODEL_HELP = "Hub model id or local checkpoint directory"


def add_scoring_options(p: argparse.ArgumentParser) -> None:
    """The options of a command that builds scorers (score, stage): the suite and protocol, seeds, learning rates,
    the probe target, the data, the device and the store."""
    p.add_argument("--suite", default="quick", help="published | local | quick | name1,name2,...")
    p.add_argument("--profile", default="quick", choices=PROFILES)
    p.add_argument("--seeds", type=int, default=1, help="candidate seeds")
    p.add_argument("--base-seeds", type=int, default=3, help="base seeds (runs already stored are reused)")
    p.add_argument("--lrs", type=learning_rates, help=LRS_HELP)
    p.add_argument("--probe-target", help="probe target (default: the suite's NLI set)")
    p.add_argument("--local-root", type=Path, help=LOCAL_ROOT_HELP)
    p.add_argument("--device", default="cpu", choices=DEVICES)
    p.add_argument("--db", type=Path, help="SQLite store (default: $MRL_DB or ./leaderboard.db)")
    p.add_argument("--quiet", action="store_true")


def usage_error(message: str) -> int:
    """Say ``error: message`` on stderr; the exit code of a command line that cannot run (2)."""
    print(f"error: {message}", file=sys.stderr)
    return 2


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


LRS_HELP = ("intertraining: learning rates the base sweeps per target, e.g. 1e-4,3e-4 (the best at which no base "
            "seed fails; a target where the base stays within 10 points of the majority class is dropped); "
            "default: the profile's one rate, no sweep")


def learning_rates(text: str) -> tuple[float, ...]:
    """``--lrs 1e-4,3e-4`` as a tuple of distinct positive rates; argparse reports a bad list in one sentence."""
    try:
        rates = tuple(float(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a comma-separated list of numbers (e.g. 1e-4,3e-4)"
                                         ) from None
    if not all(0 < r < 1 for r in rates) or len(set(rates)) != len(rates):
        raise argparse.ArgumentTypeError(f"{text!r}: learning rates must be distinct and between 0 and 1")
    return rates


def make_scorer(name: str, args: argparse.Namespace, settings: Settings):
    """The registered scorer ``name``, configured by the command line's suite, profile, seeds and probe target."""
    from scoring import registry
    from scoring.base import ScoreOptions

    options = ScoreOptions(suite=args.suite, profile=args.profile, seeds=args.seeds, base_seeds=args.base_seeds,
                           probe_target=args.probe_target, lrs=getattr(args, "lrs", None))
    return registry.build(name, settings, options=options, local_root=args.local_root)


def scoring_context(args: argparse.Namespace, settings: Settings, store: Store):
    """Device and verbosity from the command line; runs already in ``store`` are reused."""
    from scoring.base import ScoringContext

    return ScoringContext.for_store(store, device=args.device, verbose=not args.quiet,
                                    cache_dir=Path(settings.cache_dir))


def probe_gain_line(store: Store, base_id: str) -> str:
    """Spearman(probe accuracy, mean gain) over the models that have both, with a bootstrap 95% CI."""
    from ranking.leaderboard import leaderboard_from
    from ranking.stats import correlation_text, spearman_with_ci
    from service.boards import read_board

    rows = leaderboard_from(read_board(store, base_id)).rows
    return correlation_text(spearman_with_ci(rows["probe_accuracy"], rows["mean_gain"]), "probe", "mean gain")


def summary_table(store: Store, base_id: str, repo_id: str, revision: str) -> str:
    """Per-target base mean ± std, candidate score and gain; then the mean gain, its CI and the flag."""
    from ranking.columns import format_value, interval_text
    from ranking.leaderboard import leaderboard_from
    from service.boards import read_board

    board = leaderboard_from(read_board(store, base_id))
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

    interval = interval_text(row.get("gain_ci_low"), row.get("gain_ci_high"), df=row.get("gain_df"),
                             n_seeds=row.get("n_seeds"))
    lines.append(f"mean gain {pts('mean_gain')} ({interval}); "
                 f"beats the base beyond seed noise: {'yes' if bool(row['beats_base']) else 'no'}; "
                 f"probe {format_value(row['probe_accuracy'], 'pct') or '–'}")
    return "\n".join(lines)


def add_run_flags(p: argparse.ArgumentParser) -> None:
    """The flags every one-off run takes, last in its help: --device, --quiet, and --db (hidden: accepted for
    symmetry with the other subcommands, unused)."""
    p.add_argument("--device", default="cpu", choices=DEVICES)
    p.add_argument("--db", type=Path, help=argparse.SUPPRESS)
    p.add_argument("--quiet", action="store_true")
