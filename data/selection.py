"""Pure selection rules of the crawler: which listed models are candidates for a base, and why not.

Nothing here does I/O; every rule takes plain values and returns a verdict, so each is tested alone.
"""

from __future__ import annotations

import json
from collections.abc import Iterable

from data.records import ArchSignature, Kind, SkipReason

# Legacy ids the Hub still resolves, keyed by today's canonical id. Models finetuned years ago carry
# base_model tags with the old id, so a crawl lists both.
LEGACY_ALIASES: dict[str, tuple[str, ...]] = {
    "FacebookAI/roberta-base": ("roberta-base",),
    "FacebookAI/roberta-large": ("roberta-large",),
    "FacebookAI/xlm-roberta-base": ("xlm-roberta-base",),
    "google-bert/bert-base-uncased": ("bert-base-uncased",),
    "google-bert/bert-base-cased": ("bert-base-cased",),
    "google-bert/bert-large-uncased": ("bert-large-uncased",),
    "google-bert/bert-base-multilingual-cased": ("bert-base-multilingual-cased",),
    "google-t5/t5-base": ("t5-base",),
    "google-t5/t5-small": ("t5-small",),
    "distilbert/distilbert-base-uncased": ("distilbert-base-uncased",),
    "distilbert/distilroberta-base": ("distilroberta-base",),
}

_RELATIONS = {kind.value: kind for kind in Kind}
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl")
ADAPTER_CONFIG = "adapter_config.json"
MAX_JSON_DEPTH = 32  # real config.json files nest 3-4 levels; a hostile one nests 100,000
SAFETENSORS_SUFFIX = ".safetensors"


def aliases_of(repo_id: str, *also: str) -> tuple[str, ...]:
    """The canonical id first, then every other id the base is known by (deduplicated, in order)."""
    names = [repo_id, *also, *LEGACY_ALIASES.get(repo_id, ())]
    for canonical, legacy in LEGACY_ALIASES.items():
        if repo_id in legacy:
            names.append(canonical)
    return tuple(dict.fromkeys(names))


def canonical_id(repo_id: str) -> str:
    """Today's id of a base known by a legacy id (roberta-base -> FacebookAI/roberta-base); else unchanged.
    Legacy ids match in any case, as the Hub resolves them (RoBERTa-base -> FacebookAI/roberta-base)."""
    folded = repo_id.strip().lower()
    for canonical, legacy in LEGACY_ALIASES.items():
        if folded in legacy or folded == canonical.lower():
            return canonical
    return repo_id


def resolve_base_id(name: str, known: Iterable[str] = ()) -> tuple[str, str | None]:
    """(canonical id, a sentence saying so when ``name`` was another id of it) for a base a user named.

    ``known`` (e.g. the store's bases) are matched case-insensitively too; any other name is returned as typed."""
    text = name.strip()
    canonical = canonical_id(text)
    if canonical == text:
        canonical = {k.lower(): k for k in known}.get(text.lower(), text)
    if canonical == text:
        return text, None
    return canonical, f"{text} is {canonical} on the Hub today; using {canonical}"


def parse_base_model_tags(tags: Iterable[str]) -> dict[str, Kind]:
    """Parent id -> relation, from ``base_model:<id>`` and ``base_model:<relation>:<id>`` tags.

    A bare ``base_model:<id>`` tag means a finetune unless a relation tag names the same parent.
    """
    parents: dict[str, Kind] = {}
    for tag in tags:
        if not tag.startswith("base_model:"):
            continue
        rest = tag[len("base_model:"):]
        relation, _, parent = rest.partition(":")
        if parent and relation in _RELATIONS:
            parents[parent] = _RELATIONS[relation]
        elif rest:
            parents.setdefault(rest, Kind.FINETUNE)
    return parents


def relation_kind(tags: Iterable[str]) -> Kind:
    """How the model relates to its parent(s): merge beats adapter beats quantized beats finetune."""
    kinds = set(parse_base_model_tags(tags).values())
    for kind in (Kind.MERGE, Kind.ADAPTER, Kind.QUANTIZED):
        if kind in kinds:
            return kind
    return Kind.FINETUNE


def is_tagged_descendant(tags: Iterable[str], aliases: Iterable[str]) -> bool:
    return not set(parse_base_model_tags(tags)).isdisjoint(aliases)


def weight_files(filenames: Iterable[str]) -> tuple[bool, bool]:
    """(has safetensors weights, has pickle weights) from a repo's file list."""
    names = [name.rsplit("/", 1)[-1] for name in filenames]
    has_safetensors = any(n.endswith(SAFETENSORS_SUFFIX) for n in names)
    has_pickle = any(n.endswith(PICKLE_SUFFIXES) for n in names)
    return has_safetensors, has_pickle


def listing_verdict(info, *, has_token: bool, max_params: int) -> SkipReason | None:
    """``screen_listing`` of a model's Hub listing (a data.hub.HubModelInfo)."""
    return screen_listing(kind=relation_kind(info.tags), disabled=info.disabled, private=info.private,
                          gated=info.gated, filenames=info.filenames or (), num_params=info.num_params,
                          has_token=has_token, max_params=max_params)


def screen_listing(
    *, kind: Kind, disabled: bool, private: bool, gated: bool | str, filenames: Iterable[str],
    num_params: int | None, has_token: bool, max_params: int,
) -> SkipReason | None:
    """Decide from listing metadata alone (no request); None means the config must be checked next."""
    if disabled:
        return SkipReason.DISABLED
    if private and not has_token:
        return SkipReason.PRIVATE
    if gated and not has_token:
        return SkipReason.GATED
    if kind is not Kind.FINETUNE:
        return SkipReason(kind.value)
    names = [name.rsplit("/", 1)[-1] for name in filenames]
    if ADAPTER_CONFIG in names:
        return SkipReason.ADAPTER  # an adapter without its base_model:adapter tag
    has_safetensors, has_pickle = weight_files(names)
    if not has_safetensors:
        return SkipReason.PICKLE_ONLY if has_pickle else SkipReason.NO_WEIGHTS
    if is_known_size(num_params) and num_params > max_params:
        return SkipReason.TOO_LARGE
    return None


def is_known_size(num_params: int | None) -> bool:
    """A usable parameter count: a positive whole number (a listing can say nothing, or -5)."""
    return isinstance(num_params, int) and not isinstance(num_params, bool) and num_params > 0


def screen_size(num_params: int | None, max_params: int) -> SkipReason | None:
    """The size rule once the weights' headers were read: an unknown size is refused, never let through."""
    if not is_known_size(num_params):
        return SkipReason.UNKNOWN_SIZE
    return SkipReason.TOO_LARGE if num_params > max_params else None


def screen_config(config: object, base: ArchSignature) -> SkipReason | None:
    """Decide from the model's config.json (already parsed); None means a candidate."""
    if not isinstance(config, dict):
        return SkipReason.INVALID_CONFIG
    if "auto_map" in config or config.get("trust_remote_code"):
        return SkipReason.REMOTE_CODE
    if config.get("quantization_config"):
        return SkipReason.QUANTIZED
    try:
        signature = ArchSignature.from_config(config)
    except ValueError:
        return SkipReason.INVALID_CONFIG
    if signature != base:
        return SkipReason.ARCHITECTURE_MISMATCH
    return None


def parse_config(raw: bytes, *, max_depth: int = MAX_JSON_DEPTH) -> object:
    """config.json bytes as JSON, or None when they are not JSON, not UTF-8, or nested deeper than
    ``max_depth`` (the caller has already capped their size)."""
    try:
        value = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        return None
    return value if json_depth(value, max_depth) <= max_depth else None


def json_depth(value: object, limit: int) -> int:
    """How deeply ``value`` nests (a scalar is 0, ``{}`` is 1), counted level by level, at most to ``limit`` + 1."""
    depth, level = 0, [value]
    while depth <= limit:
        containers = [item for item in level if isinstance(item, dict | list)]
        if not containers:
            return depth
        depth += 1
        level = [child for c in containers for child in (c.values() if isinstance(c, dict) else c)]
    return depth
