"""Tiny real BERT and RoBERTa checkpoints built from configs, never downloaded (STYLE.md section 10).

A *base* is a freshly initialised ``*ForMaskedLM`` saved with ``save_pretrained()`` next to a word-level
tokenizer. A *candidate* is that base loaded into ``AutoModelForSequenceClassification`` and trained for a
few seeded AdamW steps on a synthetic classification task, so its encoder really differs from its parent
while the architecture fields the crawler matches on (``ARCHITECTURE_FIELDS``) stay equal.

Everything is seeded and runs on CPU in well under a second per checkpoint. The global torch RNG of the
caller is left untouched.
"""

from __future__ import annotations

import contextlib
import functools
import random
import shutil
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import torch
from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors
from transformers import (
    AutoConfig,
    AutoModelForMaskedLM,
    AutoModelForSequenceClassification,
    AutoTokenizer,
    PreTrainedConfig,
    PreTrainedTokenizerFast,
)

ModelType = Literal["bert", "roberta"]

ARCHITECTURE_FIELDS = ("model_type", "hidden_size", "num_hidden_layers", "num_attention_heads", "vocab_size")
"""config.json fields that identify an architecture family; base and candidate agree on all of them."""

CHECKPOINT_FILES = ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json")
"""Every file a saved tiny checkpoint consists of (transformers 5 writes no special_tokens_map.json)."""

WORDS: tuple[str, ...] = (
    "the", "of", "and", "to", "in", "is", "you", "that", "it", "he",
    "was", "for", "on", "are", "as", "with", "his", "they", "at", "be",
    "this", "have", "from", "or", "one", "had", "by", "word", "but", "not",
    "what", "all", "were", "we", "when", "your", "can", "said", "there", "use",
    "an", "each", "which", "she", "do", "how", "their", "if", "will", "up",
    "other", "about", "out", "many", "then", "them", "these", "so", "some", "her",
    "would", "make", "like", "him", "into", "time", "has", "look", "two", "more",
    "write", "go", "see", "number", "no", "way", "could", "people", "my", "than",
    "first", "water", "been", "call", "who", "oil", "its", "now", "find", "long",
    "down", "day", "did", "get", "come", "made", "may", "part", "over", "new",
    "sound", "take", "only", "little", "work", "know", "place", "year", "live", "me",
    "back", "give", "most", "very", "after", "thing", "our", "just", "name", "good",
    "sentence", "man", "think", "say", "great", "where", "help", "through", "much", "before",
    "line", "right", "too", "mean", "old", "any", "same", "tell", "boy", "follow",
    "came", "want", "show", "also", "around", "form", "three", "small", "set", "put",
    "end", "does", "another", "well", "large", "must", "big", "even", "such", "because",
    "turn", "here", "why", "ask", "went", "men", "read", "need", "land", "different",
    "home", "us", "move", "try", "kind", "hand", "picture", "again", "change", "off",
    "play", "spell", "air", "away", "animal", "house", "point", "page", "letter", "mother",
    "answer", "found", "study", "still", "learn", "should", "world", "high", "cat", "dog",
)
"""Two hundred common English words: the non-special part of every tiny vocabulary, in id order."""


@dataclass(frozen=True, slots=True)
class _Convention:
    """How one model type lays out its special tokens, tokenizer and position embeddings."""

    special_tokens: Mapping[str, str]  # tokenizer keyword -> token; first appearance gives the id order
    is_lowercase: bool
    single_template: str
    pair_template: str
    model_input_names: tuple[str, ...]
    position_offset: int  # position ids start here (RoBERTa counts from pad_token_id + 1)
    type_vocab_size: int


_CONVENTIONS: Mapping[str, _Convention] = {
    "bert": _Convention(
        special_tokens={
            "pad_token": "[PAD]",
            "unk_token": "[UNK]",
            "cls_token": "[CLS]",
            "sep_token": "[SEP]",
            "mask_token": "[MASK]",
        },
        is_lowercase=True,
        single_template="[CLS] $A [SEP]",
        pair_template="[CLS] $A [SEP] $B:1 [SEP]:1",
        model_input_names=("input_ids", "token_type_ids", "attention_mask"),
        position_offset=0,
        type_vocab_size=2,
    ),
    "roberta": _Convention(
        special_tokens={
            "bos_token": "<s>",
            "pad_token": "<pad>",
            "eos_token": "</s>",
            "unk_token": "<unk>",
            "cls_token": "<s>",
            "sep_token": "</s>",
            "mask_token": "<mask>",
        },
        is_lowercase=False,
        single_template="<s> $A </s>",
        pair_template="<s> $A </s> </s> $B </s>",
        model_input_names=("input_ids", "attention_mask"),
        position_offset=2,
        type_vocab_size=1,
    ),
}


def special_tokens(model_type: ModelType) -> tuple[str, ...]:
    """The special tokens of ``model_type`` in id order, e.g. ``("<s>", "<pad>", ...)`` for RoBERTa."""
    return tuple(dict.fromkeys(_CONVENTIONS[model_type].special_tokens.values()))


@dataclass(frozen=True, slots=True, kw_only=True)
class TinySpec:
    """The architecture of a tiny checkpoint; ``build_config()`` turns it into a fresh transformers config."""

    model_type: ModelType
    hidden_size: int = 32
    num_hidden_layers: int = 2
    num_attention_heads: int = 2
    intermediate_size: int = 37
    max_len: int = 64  # longest tokenized input, special tokens included

    @property
    def vocab(self) -> tuple[str, ...]:
        """Special tokens first, then ``WORDS``; a token's position is its id."""
        return special_tokens(self.model_type) + WORDS

    def build_config(self) -> PreTrainedConfig:
        """A new config (configs are mutable, so each call builds its own)."""
        convention = _CONVENTIONS[self.model_type]
        token_ids = {
            f"{role.removesuffix('_token')}_token_id": self.vocab.index(token)
            for role, token in convention.special_tokens.items()
            if role in ("pad_token", "bos_token", "eos_token")
        }
        return AutoConfig.for_model(
            self.model_type,
            vocab_size=len(self.vocab),
            hidden_size=self.hidden_size,
            num_hidden_layers=self.num_hidden_layers,
            num_attention_heads=self.num_attention_heads,
            intermediate_size=self.intermediate_size,
            max_position_embeddings=self.max_len + convention.position_offset,
            type_vocab_size=convention.type_vocab_size,
            **token_ids,
        )


TINY_BERT = TinySpec(model_type="bert")
TINY_ROBERTA = TinySpec(model_type="roberta")


def write_word_tokenizer(
    out_dir: Path, vocab: Sequence[str], model_type: ModelType, *, model_max_length: int = 64
) -> None:
    """Save a word-level tokenizer over ``vocab`` (ids are positions) that ``AutoTokenizer`` loads offline.

    Words split on whitespace and punctuation; anything outside ``vocab`` becomes the unknown token.
    ``model_type`` picks the special tokens (which ``vocab`` must contain), lowercasing and the
    ``[CLS] ... [SEP]`` / ``<s> ... </s>`` template. The result is a plain ``tokenizer.json`` loaded by
    transformers' built-in ``TokenizersBackend``, so no ``trust_remote_code`` is involved.
    """
    convention = _CONVENTIONS[model_type]
    token_to_id = {token: i for i, token in enumerate(vocab)}
    if len(token_to_id) != len(vocab):
        raise ValueError("vocab has duplicate tokens")
    missing = [token for token in special_tokens(model_type) if token not in token_to_id]
    if missing:
        raise ValueError(f"vocab lacks the {model_type} special tokens {missing}")

    tokenizer = Tokenizer(models.WordLevel(token_to_id, unk_token=convention.special_tokens["unk_token"]))
    if convention.is_lowercase:
        tokenizer.normalizer = normalizers.Lowercase()
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tokenizer.post_processor = processors.TemplateProcessing(
        single=convention.single_template,
        pair=convention.pair_template,
        special_tokens=[(token, token_to_id[token]) for token in special_tokens(model_type)],
    )
    PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        model_max_length=model_max_length,
        model_input_names=list(convention.model_input_names),
        **convention.special_tokens,
    ).save_pretrained(out_dir)


def build_base(spec: TinySpec, out_dir: Path, *, seed: int = 0) -> Path:
    """Save a freshly initialised ``*ForMaskedLM`` for ``spec`` plus its tokenizer to ``out_dir``.

    The weights depend only on ``spec`` and ``seed``: the same seed gives a byte-identical
    ``model.safetensors``. Returns ``out_dir``.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = AutoModelForMaskedLM.from_config(spec.build_config())
    model.save_pretrained(out_dir)  # transformers 5 always writes safetensors
    write_word_tokenizer(out_dir, spec.vocab, spec.model_type, model_max_length=spec.max_len)
    return out_dir


def _parity_labels(word_idx: torch.Tensor, num_words: int, num_labels: int) -> torch.Tensor:
    """How many words come from the first half of the word list, modulo ``num_labels``."""
    return (word_idx < num_words // 2).sum(dim=1) % num_labels


def _first_word_labels(word_idx: torch.Tensor, num_words: int, num_labels: int) -> torch.Tensor:
    """The first word's position in the word list, modulo ``num_labels``."""
    return word_idx[:, 0] % num_labels


TASKS: Mapping[str, Callable[[torch.Tensor, int, int], torch.Tensor]] = {
    "parity": _parity_labels,
    "first_word": _first_word_labels,
}
"""Synthetic label rules: (word indices [batch, length], number of words, num_labels) -> labels [batch]."""

_BATCH_SIZE = 8
_SENTENCE_WORDS = 12
_LR = 1e-3


@contextlib.contextmanager
def one_thread():
    """Torch on one thread for the block: a sum's order, and so a trained checkpoint's bytes, does not depend on
    how many threads the session happens to use (a test may have set 1; an xdist worker does)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def build_candidate(
    base_dir: Path,
    out_dir: Path,
    *,
    seed: int = 0,
    steps: int = 5,
    num_labels: int = 2,
    task: str = "parity",
) -> Path:
    """Finetune the base in ``base_dir`` for ``steps`` seeded AdamW steps on ``task``; save it to ``out_dir``.

    Each step sees a fresh batch of random sentences over the base tokenizer's words, labelled by the
    rule ``TASKS[task]``. The classification head is initialised and dropout drawn from ``seed``, so the
    same seed gives identical weights. Model (safetensors) and tokenizer are saved. Returns ``out_dir``.

    Labels are named ``f"{task}_{i}"``: transformers 5 leaves the default ``LABEL_0``/``LABEL_1`` map out of
    config.json, and named labels make every candidate's config.json state its ``num_labels``.
    """
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; known tasks: {sorted(TASKS)}")
    tokenizer = AutoTokenizer.from_pretrained(base_dir)
    special = set(tokenizer.all_special_tokens)
    words = [
        token
        for token, _ in sorted(tokenizer.get_vocab().items(), key=lambda item: item[1])
        if token not in special
    ]

    generator = torch.Generator().manual_seed(seed)
    word_idx = torch.randint(len(words), (steps * _BATCH_SIZE, _SENTENCE_WORDS), generator=generator)
    labels = TASKS[task](word_idx, len(words), num_labels)
    batch = tokenizer([" ".join(words[i] for i in row) for row in word_idx.tolist()], return_tensors="pt")

    with torch.random.fork_rng(devices=[]), one_thread():  # the same bytes whatever the session's thread count
        torch.manual_seed(seed)
        model = AutoModelForSequenceClassification.from_pretrained(
            base_dir, id2label={i: f"{task}_{i}" for i in range(num_labels)}, use_safetensors=True
        )
        optimizer = torch.optim.AdamW(model.parameters(), lr=_LR)
        model.train()
        for step in range(steps):
            rows = slice(step * _BATCH_SIZE, (step + 1) * _BATCH_SIZE)
            loss = model(**{name: value[rows] for name, value in batch.items()}, labels=labels[rows]).loss
            loss.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    return out_dir


def _is_complete(checkpoint_dir: Path) -> bool:
    return all((checkpoint_dir / name).is_file() for name in CHECKPOINT_FILES)


def _build_once(out_dir: Path, build: Callable[[Path], Path]) -> Path:
    """Reuse ``out_dir`` if complete; otherwise build into a sibling tmp dir and rename it into place.

    The rename is atomic, so an interrupted build never leaves a half-written ``out_dir`` behind, and
    two processes racing on the same ``root`` both end up with one complete checkpoint.
    """
    if _is_complete(out_dir):
        return out_dir
    shutil.rmtree(out_dir, ignore_errors=True)  # incomplete: a file was deleted, or an older layout
    tmp_dir = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}-", dir=out_dir.parent))
    build(tmp_dir)
    try:
        tmp_dir.rename(out_dir)
    except OSError:
        shutil.rmtree(tmp_dir)
        if not _is_complete(out_dir):
            raise
    return out_dir


@functools.cache
def tiny_checkpoints(root: Path) -> dict[str, Path]:
    """Build (or reuse) a base and a candidate per tiny spec under ``root``, once per process.

    Returns ``{"bert-base", "bert-candidate", "roberta-base", "roberta-candidate"} -> dir``, all with
    seed 0. Complete dirs already under ``root`` are reused as they are. The dict is shared between
    callers: don't mutate it.
    """
    root.mkdir(parents=True, exist_ok=True)
    checkpoints: dict[str, Path] = {}
    for spec in (TINY_BERT, TINY_ROBERTA):
        base_dir = _build_once(root / f"{spec.model_type}-base", functools.partial(build_base, spec))
        candidate_dir = _build_once(
            root / f"{spec.model_type}-candidate", functools.partial(build_candidate, base_dir)
        )
        checkpoints[f"{spec.model_type}-base"] = base_dir
        checkpoints[f"{spec.model_type}-candidate"] = candidate_dir
    return checkpoints


def shared_root(tmp_path_factory) -> Path:
    """Where this test run (each xdist worker its own) keeps the tiny checkpoints it builds once: pytest's base
    temp folder. What lies there is read-only to tests; a test that changes a checkpoint copies it first."""
    return tmp_path_factory.getbasetemp() / "tiny-shared"


def tiny_family_hub(root: Path, base_id: str = "tiny/bert-base", n_candidates: int = 3, *,
                    models: Path | None = None):
    """A LocalHub (not started) with a tiny BERT base and ``n_candidates`` finetunes tagged as its
    descendants (``org/cand-i``: seed i, 3 + i steps, i downloads). The checkpoints are built under ``models``
    (default ``root``), each once: pass ``shared_root(tmp_path_factory)`` to share them across a test run."""
    from data.local_hub import LocalHub

    models = models or root
    ckpt = tiny_checkpoints(models / "tiny")
    tags = ("transformers", "bert", f"base_model:{base_id}", f"base_model:finetune:{base_id}")
    hub = LocalHub()
    hub.add_files_from_dir(base_id, ckpt["bert-base"], tags=("transformers", "bert"))
    for i in range(n_candidates):
        build = functools.partial(build_candidate, ckpt["bert-base"], seed=i, steps=3 + i)
        model = _build_once(models / f"cand-{i}", build)
        hub.add_files_from_dir(f"org/cand-{i}", model, tags=tags, downloads=i)
    return hub


def pretrain_mlm(base: Path, corpus: Path, out: Path, *, steps: int = 300) -> Path:
    """The tiny base trained as a masked LM on ``corpus`` (seeded): its features name a masked token's
    neighbours, so a head fitted on them beats the unigram model."""
    from scoring.mlm import mlm_loss
    from scoring.reference_corpus import corpus_documents, masked_corpus

    tok = AutoTokenizer.from_pretrained(base)
    docs, name = corpus_documents(str(corpus))
    data = masked_corpus(tok, docs, name, num_sequences=400, seq_len=24, mask_prob=0.15, seed=7)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = AutoModelForMaskedLM.from_pretrained(base).train()
        opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
        for _ in range(steps):
            rows = torch.randint(len(data), (16,))
            logits = model(input_ids=data.input_ids[rows]).logits
            picked = logits.gather(1, data.positions[rows].unsqueeze(-1).expand(-1, -1, logits.shape[-1]))
            loss = mlm_loss(picked, data.targets[rows])
            opt.zero_grad()
            loss.backward()
            opt.step()
    model.save_pretrained(out)
    write_word_tokenizer(out, TINY_BERT.vocab, "bert")
    return out


def learnable_csv(path: Path, n: int = 60, seed: int = 0) -> Path:
    """A user's CSV (sentence, topic) whose label is whether the first word comes early in WORDS: tiny models learn
    it from the tokens (the personal ranking's tests)."""
    import csv

    rng = random.Random(seed)
    with path.open("w", newline="") as f:
        out = csv.writer(f)
        out.writerow(["sentence", "topic"])
        for _ in range(n):
            first = rng.randrange(40)
            out.writerow([" ".join([WORDS[first], *rng.choices(WORDS, k=rng.randint(3, 9))]),
                          "early" if first < 20 else "late"])
    return path
