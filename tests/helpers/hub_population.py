"""A seeded population of Hub models around one base, with the crawler's expected verdict for each.

``build_population(hub, n_finetunes)`` fills a LocalHub with descendants of ``FacebookAI/roberta-base``
in every shape the crawler must handle (tagged under the canonical id or the legacy ``roberta-base``,
untagged but config-matching, mismatched configs, gated, private, pickle-only, weightless, adapters,
quantized, merges, remote code, broken configs, oversized, disabled) plus models of other bases that
must not be found. It returns the expected verdicts so tests compare the crawl against known answers.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass

from data.records import Kind, Match, SkipReason

BASE_ID = "FacebookAI/roberta-base"
LEGACY_ID = "roberta-base"
MAX_PARAMS = 200_000_000  # crawl with Settings(max_params=MAX_PARAMS)

ROBERTA = {"model_type": "roberta", "hidden_size": 768, "num_hidden_layers": 12, "num_attention_heads": 12,
           "vocab_size": 50265, "intermediate_size": 3072, "max_position_embeddings": 514}
ROBERTA_LARGE = {**ROBERTA, "hidden_size": 1024, "num_hidden_layers": 24, "num_attention_heads": 16,
                 "intermediate_size": 4096}
BERT = {"model_type": "bert", "hidden_size": 768, "num_hidden_layers": 12, "num_attention_heads": 12,
        "vocab_size": 30522}
WEIGHTS = b"\x08\x00\x00\x00\x00\x00\x00\x00{}      "  # a placeholder: the crawler never downloads weights


@dataclass(frozen=True, slots=True)
class Expected:
    status: str  # "ok" | "skipped"
    skip_reason: SkipReason | None
    kind: Kind
    match: Match


@dataclass(frozen=True, slots=True)
class Shape:
    """One kind of model in the population and the verdict it must get."""

    name: str
    share: float
    tags: tuple[str, ...]
    config: dict | bytes | None
    weights: tuple[str, ...] = ("model.safetensors",)
    expected: Expected | None = None  # None: must not be found at all
    gated: bool | str = False
    private: bool = False
    disabled: bool = False
    parameters: int = 124_647_170


def _tags(*relations: str, parent: str = BASE_ID) -> tuple[str, ...]:
    tags = ["transformers", "safetensors", "roberta", "text-classification", f"base_model:{parent}"]
    tags += [f"base_model:{relation}:{parent}" for relation in relations]
    return tuple(tags)


def _ok(match: Match = Match.TAG) -> Expected:
    return Expected("ok", None, Kind.FINETUNE, match)


def _skip(reason: SkipReason, kind: Kind = Kind.FINETUNE, match: Match = Match.TAG) -> Expected:
    return Expected("skipped", reason, kind, match)


UNTAGGED = ("transformers", "safetensors", "roberta", "text-classification")
SHAPES: tuple[Shape, ...] = (
    Shape("tagged", 0.36, _tags("finetune"), ROBERTA, expected=_ok()),
    Shape("legacy-tag", 0.08, _tags("finetune", parent=LEGACY_ID), ROBERTA, expected=_ok()),
    Shape("bare-tag", 0.04, _tags(), ROBERTA, expected=_ok()),
    Shape("untagged", 0.16, UNTAGGED, ROBERTA, expected=_ok(Match.CONFIG)),
    Shape("grandchild", 0.02, _tags("finetune", parent="someone/roberta-base-mnli"), ROBERTA,
          expected=_ok(Match.CONFIG)),
    Shape("tagged-mismatch", 0.04, _tags("finetune"), ROBERTA_LARGE,
          expected=_skip(SkipReason.ARCHITECTURE_MISMATCH)),
    Shape("roberta-large", 0.08, _tags("finetune", parent="FacebookAI/roberta-large"), ROBERTA_LARGE,
          expected=_skip(SkipReason.ARCHITECTURE_MISMATCH, match=Match.CONFIG)),
    Shape("gated", 0.03, _tags("finetune"), ROBERTA, gated="manual", expected=_skip(SkipReason.GATED)),
    Shape("private", 0.02, _tags("finetune"), ROBERTA, private=True, expected=None),
    Shape("pickle-only", 0.04, _tags("finetune"), ROBERTA, weights=("pytorch_model.bin",),
          expected=_skip(SkipReason.PICKLE_ONLY)),
    Shape("no-weights", 0.01, _tags("finetune"), ROBERTA, weights=(), expected=_skip(SkipReason.NO_WEIGHTS)),
    Shape("adapter", 0.04, _tags("adapter"), None, weights=("adapter_model.safetensors",),
          expected=_skip(SkipReason.ADAPTER, Kind.ADAPTER)),
    Shape("quantized", 0.01, _tags("quantized"), ROBERTA, expected=_skip(SkipReason.QUANTIZED, Kind.QUANTIZED)),
    Shape("merge", 0.01, _tags("merge"), ROBERTA, expected=_skip(SkipReason.MERGE, Kind.MERGE)),
    Shape("remote-code", 0.02, _tags("finetune"), {**ROBERTA, "auto_map": {"AutoModel": "modeling_x.X"}},
          expected=_skip(SkipReason.REMOTE_CODE)),
    Shape("broken-config", 0.01, _tags("finetune"), b'{"model_type": "roberta", "hidden_size": 7',
          expected=_skip(SkipReason.INVALID_CONFIG)),
    Shape("no-config", 0.01, _tags("finetune"), None, expected=_skip(SkipReason.NO_CONFIG)),
    Shape("oversize", 0.01, _tags("finetune"), ROBERTA, parameters=MAX_PARAMS + 1,
          expected=_skip(SkipReason.TOO_LARGE)),
    Shape("disabled", 0.01, _tags("finetune"), ROBERTA, disabled=True, expected=_skip(SkipReason.DISABLED)),
    Shape("other-base", 0.04, ("transformers", "bert", "base_model:google-bert/bert-base-uncased",
                               "base_model:finetune:google-bert/bert-base-uncased"), BERT, expected=None),
)


def _files(shape: Shape, repo_id: str) -> dict[str, bytes]:
    files = {"README.md": f"---\nlicense: mit\nbase_model: {BASE_ID}\n---\n# {repo_id}\n".encode()}
    if isinstance(shape.config, dict):
        files["config.json"] = json.dumps({**shape.config, "architectures": ["RobertaForSequenceClassification"],
                                           "_name_or_path": repo_id}).encode()
    elif isinstance(shape.config, bytes):
        files["config.json"] = shape.config
    if shape.name == "adapter":
        files["adapter_config.json"] = json.dumps({"base_model_name_or_path": BASE_ID, "r": 8}).encode()
    for name in shape.weights:
        files[name] = WEIGHTS
    return files


def add_base(hub) -> str:
    return hub.add_model(
        BASE_ID, files={"config.json": json.dumps({**ROBERTA, "architectures": ["RobertaForMaskedLM"]}).encode(),
                        "model.safetensors": WEIGHTS},
        tags=("transformers", "safetensors", "roberta", "fill-mask"), downloads=10_000_000, likes=500,
        pipeline_tag="fill-mask", card_data={"license": "mit"}, parameters=124_697_433, aliases=(LEGACY_ID,),
    )


def add_shape(hub, shape: Shape, repo_id: str, downloads: int) -> None:
    hub.add_model(
        repo_id, files=_files(shape, repo_id), tags=shape.tags, downloads=downloads, likes=downloads % 17,
        gated=shape.gated, private=shape.private, disabled=shape.disabled, pipeline_tag="text-classification",
        card_data={"license": "mit" if downloads % 3 else "apache-2.0"}, parameters=shape.parameters,
    )


def build_population(hub, n_models: int, *, seed: int = 0) -> dict[str, Expected]:
    """Add the base and ``n_models`` models to ``hub``; returns repo_id -> expected verdict of the
    models a crawl of BASE_ID (no token, max_params=MAX_PARAMS) must record."""
    rng = random.Random(seed)
    add_base(hub)
    expected: dict[str, Expected] = {}
    for shape in SHAPES:
        for i in range(max(1, round(shape.share * n_models))):
            repo_id = f"{shape.name}-org{i % 7}/{shape.name}-model-{i:05d}"
            add_shape(hub, shape, repo_id, downloads=rng.randrange(0, 100_000))
            if shape.expected is not None:
                expected[repo_id] = shape.expected
    return expected


def shape_named(name: str) -> Shape:
    return next(s for s in SHAPES if s.name == name)
