"""Which features should a personal ranking use: the last layer's, or the mean over every layer (TransformerRanker,
ACL Findings 2024, reports LogME's Pearson with fine-tuned accuracy rising from 0.58 to 0.86 on 20 LMs x 6 tasks)?

    python benchmarks/personal_layers.py [--study-dir out/study] [--snapshot data/snapshot/study.json]
                                         [--local-root ../shared/datasets] [--no-record]

Measured on the study's own checkpoints (the base and its candidates, from ``--study-dir``/hub, each checked
against the snapshot's sha256) and its targets: per target, the personal estimators (scoring/personal_estimators.py:
the cross-validated probe, kNN and LogME) on the target's train rows (the probe's subsample, 1,000 rows), with
features of the last layer and of the layer mean (scoring/probe.py ``extract_features(layers=...)``); the answer is
the candidate's intertraining gain on that target (mean over seeds of the candidate's test score minus the base's,
from the snapshot). Per target and estimator: Spearman's ρ over the candidates; then the mean over targets for each
feature kind and the per-target differences. The anchor is the last layer (the product's choice before this run).
The last-layer LogME is checked against the snapshot's ``logme_target`` on the same rows. Appends to RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from record import append_section  # noqa: E402 (benchmarks/, beside this script)


def gains_by_target(snapshot: dict, base_id: str) -> dict[str, dict[str, float]]:
    """{target: {candidate: mean test score - the base's mean}} from the snapshot's passing intertraining runs."""
    scores = defaultdict(list)
    for s in snapshot["scores"]:
        if s["scorer"] == "intertraining" and s["metric"] == "target_score" and s.get("status", "ok") == "ok":
            scores[(s["target"], s["repo_id"])].append(s["value"])
    means = {key: sum(v) / len(v) for key, v in scores.items()}
    out: dict[str, dict[str, float]] = defaultdict(dict)
    for (target, repo_id), mean in means.items():
        if repo_id != base_id and (target, base_id) in means:
            out[target][repo_id] = mean - means[(target, base_id)]
    return dict(out)


def spearman(x: list[float], y: list[float]) -> float:
    import pandas as pd

    return float(pd.Series(x, dtype=float).corr(pd.Series(y, dtype=float), method="spearman"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--study-dir", type=Path, default=ROOT / "out" / "study")
    parser.add_argument("--snapshot", type=Path, default=ROOT / "data" / "snapshot" / "study.json")
    parser.add_argument("--local-root", type=Path, default=ROOT.parent / "shared" / "datasets")
    parser.add_argument("--no-record", action="store_true")
    args = parser.parse_args()

    import torch

    from data.settings import Settings
    from data.targets import suite
    from scoring.config import PROBE
    from scoring.probe import _subsample, extract_features, load_encoder
    from scoring.target_data import load_target
    from service.personal import estimators
    from service.personal_models import weights_digest

    snapshot = json.loads(args.snapshot.read_text())
    base_id = snapshot["meta"]["study"]["base_id"]
    checkpoints = snapshot["meta"]["checkpoints"]
    gains = gains_by_target(snapshot, base_id)
    logme_snapshot = {(s["repo_id"], s["target"]): s["value"] for s in snapshot["scores"]
                      if s["metric"] == "logme_target"}
    models = {}
    for repo_id, digest in checkpoints.items():
        folder = args.study_dir / "hub" / repo_id
        if weights_digest(folder) != digest:
            raise SystemExit(f"{folder}: not the snapshot's weights (run the study or restore it first)")
        models[repo_id] = folder
    built = estimators(Settings())
    targets = [load_target(spec, seed=PROBE.seed, local_root=args.local_root)
               for spec in suite(",".join(sorted(gains)), local_root=args.local_root)]
    started = time.perf_counter()
    rows = []  # (target, estimator, layers, rho)
    checks = []
    for target in targets:
        train = _subsample(target.train, PROBE.max_train_examples, PROBE.seed)
        labels = torch.tensor([int(e.label) for e in train])
        values: dict[tuple[str, str], dict[str, float]] = defaultdict(dict)  # (estimator, layers) -> {model: v}
        for repo_id, folder in models.items():
            model, tokenizer = load_encoder(folder)
            for layers in ("last", "mean"):
                features = extract_features(model, tokenizer, train, PROBE, layers=layers)
                for estimator in built:
                    result = estimator.checked(features, labels)
                    if result.status == "ok":
                        values[(estimator.name, layers)][repo_id] = result.value
                    if estimator.name == "logme" and layers == "last" and (repo_id, target.name) in logme_snapshot:
                        checks.append(abs(result.value - logme_snapshot[(repo_id, target.name)]))
        candidates = sorted(gains[target.name])
        for (name, layers), by_model in values.items():
            have = [c for c in candidates if c in by_model]
            rho = spearman([by_model[c] for c in have], [gains[target.name][c] for c in have])
            rows.append((target.name, name, layers, rho, len(have)))
        print(f"{target.name}: " + ", ".join(f"{n}/{lay} ρ {r:+.2f}" for t, n, lay, r, _ in rows
                                              if t == target.name), flush=True)
    seconds = time.perf_counter() - started
    lines = summary(rows, checks, seconds, len(models), targets)
    print("\n".join(lines))
    if not args.no_record:
        append_section("personal_layers", lines, command="python benchmarks/personal_layers.py",
                       note="; anchor: last-layer features (the personal ranking's choice before this run)")
    return 0


def summary(rows, checks, seconds, n_models, targets) -> list[str]:
    import statistics

    names = sorted({r[1] for r in rows})
    out = [(f"{n_models} study models (the base and its candidates), {len(targets)} targets "
            f"({', '.join(t.name for t in targets)}), 1,000 train rows each; {seconds:.0f} s. "
            f"Last-layer LogME against the snapshot's: max |difference| {max(checks, default=float('nan')):.2g}.")]
    for name in names:
        last = {r[0]: r[3] for r in rows if r[1] == name and r[2] == "last"}
        mean = {r[0]: r[3] for r in rows if r[1] == name and r[2] == "mean"}
        common = sorted(set(last) & set(mean))
        diffs = [mean[t] - last[t] for t in common]
        out.append(f"- {name}: Spearman ρ with the target's gain, mean over {len(common)} targets — last layer "
                   f"{statistics.fmean(last[t] for t in common):+.2f}, layer mean "
                   f"{statistics.fmean(mean[t] for t in common):+.2f} (ratio to the anchor: difference "
                   f"{statistics.fmean(diffs):+.2f}; per target " + ", ".join(f"{t} {d:+.2f}" for t, d in
                                                                             zip(common, diffs, strict=True)) + ")")
    return out


if __name__ == "__main__":
    raise SystemExit(main())
