import pytest

from data.records import ArchSignature, Kind, SkipReason
from data.selection import (
    aliases_of,
    canonical_id,
    is_tagged_descendant,
    json_depth,
    parse_base_model_tags,
    parse_config,
    relation_kind,
    resolve_base_id,
    screen_config,
    screen_listing,
    screen_size,
    weight_files,
)

ROBERTA = ArchSignature(model_type="roberta", hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
                        vocab_size=50265)
ROBERTA_CONFIG = {"model_type": "roberta", "hidden_size": 768, "num_hidden_layers": 12,
                  "num_attention_heads": 12, "vocab_size": 50265, "architectures": ["RobertaForSequenceClassification"]}


def test_aliases_cover_legacy_ids_both_ways():
    assert aliases_of("FacebookAI/roberta-base") == ("FacebookAI/roberta-base", "roberta-base")
    assert aliases_of("FacebookAI/roberta-base", "roberta-base") == ("FacebookAI/roberta-base", "roberta-base")
    assert "FacebookAI/roberta-base" in aliases_of("roberta-base")
    assert aliases_of("org/unknown") == ("org/unknown",)


@pytest.mark.parametrize(
    ("tags", "expected"),
    [
        (["base_model:FacebookAI/roberta-base", "base_model:finetune:FacebookAI/roberta-base"],
         {"FacebookAI/roberta-base": Kind.FINETUNE}),
        (["base_model:roberta-base"], {"roberta-base": Kind.FINETUNE}),
        (["base_model:adapter:FacebookAI/roberta-base", "base_model:FacebookAI/roberta-base"],
         {"FacebookAI/roberta-base": Kind.ADAPTER}),
        (["base_model:quantized:a/b"], {"a/b": Kind.QUANTIZED}),
        (["base_model:merge:a/b", "base_model:merge:c/d"], {"a/b": Kind.MERGE, "c/d": Kind.MERGE}),
        (["transformers", "roberta", "license:mit"], {}),
        (["base_model:"], {}),
    ],
)
def test_parse_base_model_tags(tags, expected):
    assert parse_base_model_tags(tags) == expected


def test_relation_kind_precedence_and_tagged_descendant():
    assert relation_kind(["base_model:finetune:x/y"]) is Kind.FINETUNE
    assert relation_kind([]) is Kind.FINETUNE
    assert relation_kind(["base_model:finetune:x/y", "base_model:merge:a/b"]) is Kind.MERGE
    assert relation_kind(["base_model:adapter:x/y", "base_model:quantized:a/b"]) is Kind.ADAPTER
    aliases = ("FacebookAI/roberta-base", "roberta-base")
    assert is_tagged_descendant(["base_model:roberta-base"], aliases)
    assert is_tagged_descendant(["base_model:finetune:FacebookAI/roberta-base"], aliases)
    assert not is_tagged_descendant(["base_model:FacebookAI/roberta-large", "roberta"], aliases)


def test_weight_files():
    assert weight_files(["model.safetensors", "config.json"]) == (True, False)
    assert weight_files(["pytorch_model.bin"]) == (False, True)
    assert weight_files(["sub/model-00001-of-00002.safetensors", "x.ckpt"]) == (True, True)
    assert weight_files(["tf_model.h5", "README.md"]) == (False, False)


def _screen(**overrides):
    args = {"kind": Kind.FINETUNE, "disabled": False, "private": False, "gated": False,
                "filenames": ["config.json", "model.safetensors"], "num_params": 125_000_000, "has_token": False,
                "max_params": 1_000_000_000}
    args.update(overrides)
    return screen_listing(**args)


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({}, None),
        ({"disabled": True, "gated": "auto"}, SkipReason.DISABLED),
        ({"private": True}, SkipReason.PRIVATE),
        ({"private": True, "has_token": True}, None),
        ({"gated": "manual"}, SkipReason.GATED),
        ({"gated": "auto", "has_token": True}, None),
        ({"kind": Kind.ADAPTER}, SkipReason.ADAPTER),
        ({"kind": Kind.QUANTIZED}, SkipReason.QUANTIZED),
        ({"kind": Kind.MERGE}, SkipReason.MERGE),
        ({"filenames": ["config.json", "pytorch_model.bin"]}, SkipReason.PICKLE_ONLY),
        ({"filenames": ["config.json", "README.md"]}, SkipReason.NO_WEIGHTS),
        ({"num_params": 1_000_000_001}, SkipReason.TOO_LARGE),
        ({"num_params": None}, None),
    ],
)
def test_screen_listing(overrides, expected):
    assert _screen(**overrides) is expected


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        (ROBERTA_CONFIG, None),
        ({**ROBERTA_CONFIG, "num_labels": 3, "id2label": {"0": "a"}}, None),
        ({**ROBERTA_CONFIG, "hidden_size": 1024}, SkipReason.ARCHITECTURE_MISMATCH),
        ({**ROBERTA_CONFIG, "num_hidden_layers": 6}, SkipReason.ARCHITECTURE_MISMATCH),
        ({**ROBERTA_CONFIG, "vocab_size": 50266}, SkipReason.ARCHITECTURE_MISMATCH),
        ({**ROBERTA_CONFIG, "model_type": "xlm-roberta"}, SkipReason.ARCHITECTURE_MISMATCH),
        ({**ROBERTA_CONFIG, "auto_map": {"AutoModel": "modeling.MyModel"}}, SkipReason.REMOTE_CODE),
        ({"hidden_size": 768}, SkipReason.INVALID_CONFIG),
        ([1, 2], SkipReason.INVALID_CONFIG),
        (None, SkipReason.INVALID_CONFIG),
    ],
)
def test_screen_config(config, expected):
    assert screen_config(config, ROBERTA) is expected


def test_signature_reads_t5_names():
    sig = ArchSignature.from_config({"model_type": "t5", "d_model": 768, "num_layers": 12, "num_heads": 12,
                                     "vocab_size": 32128})
    assert (sig.hidden_size, sig.num_hidden_layers, sig.num_attention_heads) == (768, 12, 12)


@pytest.mark.parametrize(("typed", "canonical"), [
    ("roberta-base", "FacebookAI/roberta-base"), ("bert-base-uncased", "google-bert/bert-base-uncased"),
    ("bert-base-cased", "google-bert/bert-base-cased"), ("t5-base", "google-t5/t5-base"),
    (" T5-Base ", "google-t5/t5-base"), ("distilroberta-base", "distilbert/distilroberta-base"),
])
def test_legacy_base_names_resolve_to_the_canonical_id_with_a_note(typed, canonical):
    assert resolve_base_id(typed) == (canonical, f"{typed.strip()} is {canonical} on the Hub today; using {canonical}")
    assert canonical_id(typed) == canonical


def test_canonical_and_unknown_names_are_kept_and_known_bases_match_in_any_case():
    assert resolve_base_id("FacebookAI/roberta-base") == ("FacebookAI/roberta-base", None)
    assert resolve_base_id("org/never-heard-of") == ("org/never-heard-of", None)
    assert resolve_base_id("Microsoft/DeBERTa-v3-base", known=["microsoft/deberta-v3-base"])[0] == \
        "microsoft/deberta-v3-base"
    assert resolve_base_id("microsoft/deberta-v3-base", known=["microsoft/deberta-v3-base"]) == (
        "microsoft/deberta-v3-base", None)



def test_one_rule_set_for_crawl_and_submit_remote_code_quantization_adapters():
    config = {"model_type": "roberta", "hidden_size": 768, "num_hidden_layers": 12, "num_attention_heads": 12,
              "vocab_size": 50265}
    assert screen_config(config, ROBERTA) is None
    assert screen_config({**config, "trust_remote_code": True}, ROBERTA) is SkipReason.REMOTE_CODE
    assert screen_config({**config, "auto_map": {}}, ROBERTA) is SkipReason.REMOTE_CODE
    assert screen_config({**config, "quantization_config": {"bits": 4}}, ROBERTA) is SkipReason.QUANTIZED
    listing = {"kind": Kind.FINETUNE, "disabled": False, "private": False, "gated": False, "num_params": 10,
               "has_token": False, "max_params": 100}
    assert screen_listing(filenames=["model.safetensors"], **listing) is None
    assert screen_listing(filenames=["model.safetensors", "sub/adapter_config.json"], **listing) is SkipReason.ADAPTER


@pytest.mark.parametrize(("num_params", "verdict"), [
    (None, SkipReason.UNKNOWN_SIZE), (-5, SkipReason.UNKNOWN_SIZE), (0, SkipReason.UNKNOWN_SIZE),
    (True, SkipReason.UNKNOWN_SIZE), (100, None), (101, SkipReason.TOO_LARGE),
])
def test_the_size_rule_never_fails_open(num_params, verdict):
    assert screen_size(num_params, 100) is verdict
    listing = {"kind": Kind.FINETUNE, "disabled": False, "private": False, "gated": False,
               "filenames": ["model.safetensors"], "has_token": False, "max_params": 100}
    # the listing alone refuses only a known size over the limit; an unknown one goes on to the headers
    assert screen_listing(num_params=num_params, **listing) is (SkipReason.TOO_LARGE if num_params == 101 else None)


def test_config_parsing_is_bounded_in_depth_and_never_raises():
    assert parse_config(b'{"a": {"b": [1]}}') == {"a": {"b": [1]}}
    assert json_depth({"a": {"b": [1]}}, 32) == 3 and json_depth(7, 32) == 0 and json_depth({}, 32) == 1
    assert parse_config(b"[" * 33 + b"]" * 33) is None and parse_config(b"[" * 32 + b"]" * 32) is not None
    assert parse_config(b"[" * 100_000 + b"]" * 100_000) is None  # RecursionError inside json, caught
    assert parse_config(b"\xff\xfe") is None and parse_config(b"{") is None
