"""Known-answer tests for the tiny BERT/RoBERTa checkpoints in tests/helpers/tiny_models.py.

pytest-socket (pyproject addopts) blocks every host but localhost and conftest points HF_ENDPOINT at a
closed port, so each load below proves the checkpoints work offline.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoConfig, AutoModelForMaskedLM, AutoModelForSequenceClassification, AutoTokenizer

from tests.helpers.tiny_models import (
    ARCHITECTURE_FIELDS,
    CHECKPOINT_FILES,
    TINY_BERT,
    TINY_ROBERTA,
    WORDS,
    TinySpec,
    build_base,
    build_candidate,
    shared_root,
    tiny_checkpoints,
    write_word_tokenizer,
)

MODEL_TYPES = pytest.mark.parametrize("model_type", ["bert", "roberta"])
SPECS = pytest.mark.parametrize("spec", [TINY_BERT, TINY_ROBERTA], ids=lambda spec: spec.model_type)


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return tiny_checkpoints(shared_root(tmp_path_factory) / "tiny")


def _config_json(checkpoint_dir: Path) -> dict:
    return json.loads((checkpoint_dir / "config.json").read_text())


def test_specs_have_the_documented_sizes() -> None:
    bert, roberta = TINY_BERT.build_config(), TINY_ROBERTA.build_config()
    assert (bert.hidden_size, bert.num_hidden_layers, bert.num_attention_heads, bert.intermediate_size) == (
        32, 2, 2, 37,
    )
    assert bert.vocab_size == roberta.vocab_size == len(WORDS) + 5 == 205
    assert (bert.pad_token_id, bert.max_position_embeddings) == (0, 64)
    assert (roberta.pad_token_id, roberta.bos_token_id, roberta.eos_token_id) == (1, 0, 2)
    assert roberta.max_position_embeddings == TINY_ROBERTA.max_len + 2 == 66


@pytest.mark.parametrize("name", ["bert-base", "bert-candidate", "roberta-base", "roberta-candidate"])
def test_checkpoints_are_safetensors_only(checkpoints: dict[str, Path], name: str) -> None:
    assert sorted(path.name for path in checkpoints[name].iterdir()) == sorted(CHECKPOINT_FILES)


@SPECS
def test_base_reloads_with_the_logits_of_the_in_memory_model(spec: TinySpec, tmp_path: Path) -> None:
    base_dir = build_base(spec, tmp_path / "base", seed=3)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(3)
        in_memory = AutoModelForMaskedLM.from_config(spec.build_config()).eval()

    reloaded, loading_info = AutoModelForMaskedLM.from_pretrained(
        base_dir, use_safetensors=True, output_loading_info=True
    )
    tokenizer = AutoTokenizer.from_pretrained(base_dir)
    batch = tokenizer(["the cat and the dog", "water is good"], padding=True, return_tensors="pt")

    assert not loading_info["missing_keys"] and not loading_info["unexpected_keys"]
    with torch.no_grad():
        assert torch.equal(reloaded.eval()(**batch).logits, in_memory(**batch).logits)


@SPECS
def test_base_bytes_depend_only_on_the_seed(spec: TinySpec, tmp_path: Path) -> None:
    first, again, other = (
        build_base(spec, tmp_path / name, seed=seed) for name, seed in (("a", 0), ("b", 0), ("c", 1))
    )

    assert (first / "model.safetensors").read_bytes() == (again / "model.safetensors").read_bytes()
    embeddings = f"{spec.model_type}.embeddings.word_embeddings.weight"
    assert not torch.equal(
        load_file(first / "model.safetensors")[embeddings], load_file(other / "model.safetensors")[embeddings]
    )


def test_building_leaves_the_global_rng_alone(tmp_path: Path) -> None:
    state = torch.random.get_rng_state()
    base_dir = build_base(TINY_BERT, tmp_path / "base", seed=7)
    build_candidate(base_dir, tmp_path / "candidate", seed=7)
    assert torch.equal(torch.random.get_rng_state(), state)


@MODEL_TYPES
def test_candidate_encoder_differs_from_its_base(checkpoints: dict[str, Path], model_type: str) -> None:
    base = load_file(checkpoints[f"{model_type}-base"] / "model.safetensors")
    candidate = load_file(checkpoints[f"{model_type}-candidate"] / "model.safetensors")
    encoder_keys = [key for key in base if key.startswith(f"{model_type}.encoder.")]

    assert len(encoder_keys) == 32  # 2 layers x 16 tensors
    assert all(not torch.equal(base[key], candidate[key]) for key in encoder_keys)


@MODEL_TYPES
def test_candidate_keeps_the_architecture_signature(checkpoints: dict[str, Path], model_type: str) -> None:
    base = _config_json(checkpoints[f"{model_type}-base"])
    candidate = _config_json(checkpoints[f"{model_type}-candidate"])

    assert {field: candidate[field] for field in ARCHITECTURE_FIELDS} == {
        field: base[field] for field in ARCHITECTURE_FIELDS
    }
    assert base["model_type"] == model_type
    assert candidate["id2label"] == {"0": "parity_0", "1": "parity_1"} and "id2label" not in base
    assert AutoConfig.from_pretrained(checkpoints[f"{model_type}-candidate"]).num_labels == 2


@MODEL_TYPES
def test_candidate_reloads_as_a_classifier_with_nothing_missing(
    checkpoints: dict[str, Path], model_type: str
) -> None:
    model, loading_info = AutoModelForSequenceClassification.from_pretrained(
        checkpoints[f"{model_type}-candidate"], use_safetensors=True, output_loading_info=True
    )
    assert not loading_info["missing_keys"] and not loading_info["unexpected_keys"]
    assert model.config.num_labels == 2


def test_candidate_weights_depend_on_seed_and_task(checkpoints: dict[str, Path], tmp_path: Path) -> None:
    base_dir = checkpoints["bert-base"]
    seed_0 = build_candidate(base_dir, tmp_path / "seed-0", seed=0)
    seed_1 = build_candidate(base_dir, tmp_path / "seed-1", seed=1)
    first_word = build_candidate(base_dir, tmp_path / "first-word", task="first_word")
    weights = {path.name: (path / "model.safetensors").read_bytes() for path in (seed_0, seed_1, first_word)}

    assert weights["seed-0"] == (checkpoints["bert-candidate"] / "model.safetensors").read_bytes()
    assert weights["seed-1"] != weights["seed-0"]
    assert weights["first-word"] != weights["seed-0"]


def test_candidate_num_labels_is_written_to_its_config(checkpoints: dict[str, Path], tmp_path: Path) -> None:
    candidate_dir = build_candidate(checkpoints["roberta-base"], tmp_path / "candidate", num_labels=3)

    assert _config_json(candidate_dir)["id2label"] == {"0": "parity_0", "1": "parity_1", "2": "parity_2"}
    assert AutoConfig.from_pretrained(candidate_dir).num_labels == 3


def test_unknown_task_is_rejected(checkpoints: dict[str, Path], tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="parity"):
        build_candidate(checkpoints["bert-base"], tmp_path / "candidate", task="sentiment")


@pytest.mark.parametrize(
    ("name", "text", "expected_tokens", "expected_ids"),
    [
        ("bert-base", "The cat and the dog", "[CLS] the cat and the dog [SEP]", [2, 5, 203, 7, 5, 204, 3]),
        ("bert-candidate", "the zyzzyva, dog", "[CLS] the [UNK] [UNK] dog [SEP]", [2, 5, 1, 1, 204, 3]),
        ("roberta-base", "the cat and the dog", "<s> the cat and the dog </s>", [0, 5, 203, 7, 5, 204, 2]),
        ("roberta-candidate", "The zyzzyva dog", "<s> <unk> <unk> dog </s>", [0, 3, 3, 204, 2]),
    ],
)
def test_tokenizer_maps_words_to_known_ids(
    checkpoints: dict[str, Path], name: str, text: str, expected_tokens: str, expected_ids: list[int]
) -> None:
    tokenizer = AutoTokenizer.from_pretrained(checkpoints[name])
    ids = tokenizer(text)["input_ids"]

    assert ids == expected_ids
    assert tokenizer.convert_ids_to_tokens(ids) == expected_tokens.split()
    assert "auto_map" not in json.loads((checkpoints[name] / "tokenizer_config.json").read_text())


def test_write_word_tokenizer_requires_the_special_tokens(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"\[MASK\]"):
        write_word_tokenizer(tmp_path, ["[PAD]", "[UNK]", "[CLS]", "[SEP]", *WORDS], "bert")


def test_tiny_checkpoints_reuses_complete_dirs_and_repairs_incomplete_ones(tmp_path: Path) -> None:
    root = tmp_path / "cache"
    first = tiny_checkpoints(root)
    mtimes = {name: (path / "model.safetensors").stat().st_mtime_ns for name, path in first.items()}
    (first["roberta-candidate"] / "model.safetensors").unlink()
    tiny_checkpoints.cache_clear()

    again = tiny_checkpoints(root)

    assert again == first
    assert all(
        (path / "model.safetensors").stat().st_mtime_ns == mtimes[name]
        for name, path in again.items()
        if name != "roberta-candidate"
    )
    rebuilt = (again["roberta-candidate"] / "model.safetensors").read_bytes()
    assert rebuilt == (tiny_checkpoints(tmp_path / "fresh")["roberta-candidate"] / "model.safetensors").read_bytes()
    assert sorted(path.name for path in root.iterdir()) == sorted(first)  # no tmp dirs left behind
