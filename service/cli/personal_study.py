"""python -m scoring personal-study: does personalising help? Measured on the study (issue 19, point 5).

For each study target t whose gains the snapshot holds, the personal estimators run on each model's frozen
features of t's training rows (the probe's subsample and cache: a finished ``python -m scoring study --out DIR``
has them, so this takes seconds) and are compared, by Spearman across models with bootstrap CIs
(ranking/personal_validation.py), with the measured gain on t, beside the general rank's baseline: each model's
mean gain over the other targets. Writes the figures to a JSON file (the app's Insights reads the bundled one).
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import time
from datetime import UTC, datetime
from pathlib import Path

from data.settings import DEFAULT_SNAPSHOT, Settings
from service.cli.common import LOCAL_ROOT_HELP

DEFAULT_OUT = DEFAULT_SNAPSHOT.parent / "personal_validation.json"


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser("personal-study", help="measure on the study whether personal estimators beat the "
                              "general rank, target by target")
    p.add_argument("--study-dir", type=Path, required=True, help="a study's --out directory (store, hub, cache)")
    p.add_argument("--snapshot", type=Path, default=DEFAULT_SNAPSHOT, help="the snapshot holding the gains")
    p.add_argument("--local-root", type=Path, help=LOCAL_ROOT_HELP)
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"JSON to write (default {DEFAULT_OUT.name})")
    p.set_defaults(seeds=1, base_seeds=1, db=None)
    return p


def snapshot_gains(snapshot: Path) -> tuple[str, dict[str, dict[str, float]]]:
    """(base id, target -> repo id -> gain in points, the base at 0) from a study snapshot's board."""
    import tempfile

    from data.store import Store
    from ranking.leaderboard import leaderboard_from
    from service.boards import read_board
    from service.bundles import STUDY, apply_bundle, read_study

    with tempfile.TemporaryDirectory() as tmp:
        store = Store(Path(tmp) / "gains.db")
        apply_bundle(store, STUDY, snapshot, read_study)
        base = store.bases()[0].repo_id
        board = leaderboard_from(read_board(store, base))
    gains = {}
    for target in board.suite:
        column = board.rows[["repo_id", f"gain:{target}"]].dropna()
        gains[target] = {base: 0.0, **{r: 100 * g for r, g in zip(column["repo_id"], column[f"gain:{target}"],
                                                                  strict=True)}}
    return base, gains


def model_dirs(study_dir: Path, base_id: str) -> dict[str, tuple[str, Path]]:
    """repo id -> (revision the study scored, checkpoint directory), for the base and every study candidate."""
    from data.store import Store
    from service.cli.study import base_directory

    store = Store(study_dir / "study.db")
    base = store.get_base(base_id)
    found = {base_id: (base.sha, base_directory(None))}
    for c in store.candidates(base_id):
        found[c.repo_id] = (c.sha, study_dir / "hub" / c.repo_id)
    return found


def estimates_on(target, repo_id: str, revision: str, model_dir: Path, cache_dir: Path, built) -> dict[str, float]:
    """Every personal estimator on the model's features of the target's training rows (the probe's cached ones)."""
    from scoring.config import PROBE
    from scoring.probe import target_features

    (train_x, train_y), _ = target_features(model_dir, target, PROBE, cache_dir=cache_dir,
                                            model_key=f"{repo_id}@{revision}")
    out = {}
    for estimator in built:
        result = estimator.checked(train_x, train_y)
        out[estimator.metric] = result.value if result.status == "ok" else math.nan
    return out


def _finite(value):
    """NaN (an estimate that failed, a correlation that is undefined) as JSON null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


def run(args: argparse.Namespace, settings: Settings) -> int:
    import pandas as pd

    from data.targets import suite
    from ranking.personal_validation import validation_markdown, validation_rows
    from scoring.config import PROBE
    from scoring.target_data import load_target
    from service.personal import estimators

    started = time.perf_counter()
    base_id, gains = snapshot_gains(args.snapshot)
    dirs = model_dirs(args.study_dir, base_id)
    specs = {s.name: s for s in suite(",".join(gains), local_root=args.local_root)}
    built = estimators(settings)
    frames, models = {}, {}
    for target, by_model in gains.items():
        data = load_target(specs[target], seed=PROBE.seed, local_root=args.local_root)
        records = []
        for repo_id, gain in by_model.items():
            others = [g[repo_id] for t, g in gains.items() if t != target and repo_id in g]
            revision, model_dir = dirs[repo_id]
            values = estimates_on(data, repo_id, revision, model_dir, args.study_dir / "cache", built)
            records.append({"repo_id": repo_id, "gain": gain, "general": sum(others) / len(others) if others
                            else math.nan, **values})
        frames[target], models[target] = pd.DataFrame(records), records
    rows = validation_rows(frames)
    doc = {"generated": datetime.now(UTC).isoformat(timespec="seconds"), "machine": platform.processor() or
           platform.machine(), "base_id": base_id, "snapshot": args.snapshot.name, "models": models, "rows": rows,
           "seconds": round(time.perf_counter() - started, 1)}
    args.out.write_text(json.dumps(_finite(doc), indent=1, allow_nan=False) + "\n")
    print("\n".join(validation_markdown(rows)))
    print(f"wrote {args.out} in {doc['seconds']} s")
    return 0
