"""Make an intermediate model: fine-tune a base on a source task and save it as a Hub-style repo.

This is how the paper's in-house candidates are made (and the offline study's): the saved directory has
safetensors weights, the tokenizer, and a model card whose ``base_model:`` front matter gives the Hub's
model-tree tags when the directory is served by ``python -m data serve-hub``.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from scoring.config import FinetuneConfig
from scoring.examples import TargetData
from scoring.finetune import FinetuneResult, load_classifier, train_classifier

logger = logging.getLogger(__name__)


def train_source_model(base_dir: Path, base_id: str, source: TargetData, cfg: FinetuneConfig, out_dir: Path, *,
                       device: str = "cpu", verbose: bool = False) -> FinetuneResult:
    """Fine-tune ``base_dir`` on ``source`` and save the result (weights, tokenizer, card) to ``out_dir``."""
    num_labels = 1 if source.metric == "spearman" else source.num_labels
    model, tokenizer = load_classifier(base_dir, num_labels, seed=cfg.seed)
    result = train_classifier(model, tokenizer, source, cfg, device=device, verbose=verbose)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    model.config.id2label = dict(enumerate(source.label_names))
    model.config.label2id = {name: i for i, name in enumerate(source.label_names)}
    model.cpu().save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    card = (f"---\nbase_model: {base_id}\ndatasets:\n- {source.name}\nlicense: apache-2.0\n"
            f"tags:\n- intertraining\n- {source.name}\n---\n"
            f"# {out_dir.name}\n\n{base_id} fine-tuned on {source.name} (dataset revision {source.revision}) "
            f"with the `{cfg.profile}` profile: test {source.metric} {result.test_score:.4f}.\n")
    (out_dir / "README.md").write_text(card)
    (out_dir / "training.json").write_text(json.dumps({
        "base_model": base_id, "source": source.name, "dataset_revision": source.revision, "profile": cfg.profile,
        "seed": cfg.seed, "test_score": result.test_score, "eval_score": result.eval_score, "steps": result.steps,
    }, indent=1))
    logger.info("saved %s fine-tuned on %s to %s (test %.4f)", base_id, source.name, out_dir, result.test_score)
    return result
