"""The study's source models: clean training rows, train, check, keep — or reject with a reason.

For each source dataset, before training: every training row whose text is in any study target's eval or test
split (``scoring/overlap.py``; every target of the suite, kept by the sweep or not) is dropped, then the
source's ``max_train_examples`` are drawn (seeded) from what is left, so a source trains on as many rows as
before. After training, the source model is checked on its own task's test split with the run check
(``scoring/run_check.py``: one class, within 2 points of the majority-class rate, a training loss that did not
fall by 10%): a source that did not learn its task is not an intermediate model. A passing source is saved as a
Hub repo under ``OUT/hub/<org>/``; a failing one under ``OUT/rejected/<org>/`` (never served, never a
candidate). Both keep ``training.json`` with the check, the rows removed per target and the weights' sha256.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
from dataclasses import dataclass, replace
from pathlib import Path

from data.targets import TargetSpec, suite
from scoring.config import FinetuneConfig
from scoring.examples import TargetData
from scoring.overlap import count_overlap, held_out_texts, remove_overlap, texts_of
from scoring.run_check import failure_reasons
from scoring.target_data import load_target, subsample

logger = logging.getLogger(__name__)

WEIGHTS = "model.safetensors"


@dataclass(frozen=True, slots=True)
class CleanSource:
    data: TargetData  # the training rows left after the removal, subsampled
    removed: dict[str, int]  # rows of the full train split removed per target
    remaining_overlap: int  # rows of ``data.train`` still overlapping a target (0 unless the removal is broken)


def clean_source(spec: TargetSpec, ft: FinetuneConfig, held: dict[str, set[str]], local_root: Path | None
                 ) -> CleanSource:
    """The source's data with every row overlapping a target's held-out text removed before subsampling."""
    full = load_target(spec, max_eval=ft.max_eval_examples, seed=0, local_root=local_root)
    kept, removed = remove_overlap(full.train, held)
    train = subsample(kept, ft.max_train_examples, f"{spec.name}/train/0")
    remaining = count_overlap(train, set().union(*held.values())) if held else 0
    return CleanSource(replace(full, train=train), removed, remaining)


def held_out_by_target(targets: str, local_root: Path | None) -> dict[str, set[str]]:
    """Every suite target's eval and test texts (whole splits, not the study's subsample), by name."""
    return {spec.name: held_out_texts(load_target(spec, local_root=local_root))
            for spec in suite(targets, local_root=local_root)}


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def prepare_source(spec: TargetSpec, repo_id: str, base_copy: Path, base_id: str, ft: FinetuneConfig,
                   held: dict[str, set[str]], out_dir: Path, *, device: str, local_root: Path | None,
                   verbose: bool = False, fallback: FinetuneConfig | None = None, first: dict | None = None) -> dict:
    """Clean, train, check and place one source (hub/ when it passes, rejected/ when not); its check record. A
    source that fails under ``ft`` is trained once more under ``fallback`` (when given) before it is rejected;
    ``first``: the check of a failed first attempt stored by an earlier run (only the fallback is then run)."""
    if first is None:
        first = _train_and_check(spec, repo_id, base_copy, base_id, ft, held, out_dir, device=device,
                                 local_root=local_root, verbose=verbose)
        if first["status"] == "ok" or fallback is None:
            return first
    logger.info("source %s failed its check (%s): trained again with the fallback recipe", spec.name,
                first["reason"])
    second = _train_and_check(spec, repo_id, base_copy, base_id, fallback, held, out_dir, device=device,
                              local_root=local_root, verbose=verbose, first=first)
    return second


def _train_and_check(spec: TargetSpec, repo_id: str, base_copy: Path, base_id: str, ft: FinetuneConfig,
                     held: dict[str, set[str]], out_dir: Path, *, device: str, local_root: Path | None,
                     verbose: bool, first: dict | None = None) -> dict:
    from scoring.intertrain import train_source_model

    clean = clean_source(spec, ft, held, local_root)
    partial = out_dir / "partial" / repo_id
    shutil.rmtree(partial, ignore_errors=True)
    result = train_source_model(base_copy, base_id, clean.data, ft, partial, device=device, verbose=verbose)
    reasons = failure_reasons(result, clean.data.metric)
    check = {"source": spec.name, "repo_id": repo_id, "metric": clean.data.metric, "test_score": result.test_score,
             "majority_rate": result.majority_rate, "status": "rejected" if reasons else "ok",
             "reason": "; ".join(reasons), "train_rows": len(clean.data.train), "removed": clean.removed,
             "remaining_overlap": clean.remaining_overlap, "loss_start": result.loss_start,
             "loss_end": result.loss_end, "sha256": sha256_of(partial / WEIGHTS),
             "recipe": "fallback" if first is not None else "standard", "epochs": ft.max_epochs, "lr": ft.lr}
    if first is not None:
        check["first_attempt"] = {k: first.get(k) for k in ("test_score", "reason", "train_rows", "epochs", "lr")}
    record = json.loads((partial / "training.json").read_text())
    (partial / "training.json").write_text(json.dumps({**record, "check": check}, indent=1))
    final = out_dir / ("rejected" if reasons else "hub") / repo_id
    final.parent.mkdir(parents=True, exist_ok=True)
    for place in ("hub", "rejected"):  # this attempt replaces an earlier one wherever it was kept
        shutil.rmtree(out_dir / place / repo_id, ignore_errors=True)
    os.replace(partial, final)
    logger.info("source %s: test %.4f (majority %.4f), %s; removed %s", spec.name, result.test_score,
                result.majority_rate, check["status"] + (f" ({check['reason']})" if reasons else ""), clean.removed)
    return check


def stored_check(out_dir: Path, repo_id: str) -> dict | None:
    """The check record of a source already prepared (hub/ or rejected/), None when it must be trained."""
    for place in ("hub", "rejected"):
        path = out_dir / place / repo_id / "training.json"
        if path.is_file():
            record = json.loads(path.read_text())
            if "check" in record:
                return record["check"]
    return None


def target_overlap(targets: str, local_root: Path | None) -> dict[str, int]:
    """"a|b": texts of target a (every split) found in target b's eval or test split, for every ordered pair of
    the suite's targets: two targets built from the same text would share sentences (sst2 and subj do)."""
    specs = suite(targets, local_root=local_root)
    data = {spec.name: load_target(spec, local_root=local_root) for spec in specs}
    all_texts = {name: texts_of((*d.train, *d.eval, *d.test)) for name, d in data.items()}
    held = {name: held_out_texts(d) for name, d in data.items()}
    return {f"{a}|{b}": len(all_texts[a] & held[b]) for a in data for b in data if a != b}
