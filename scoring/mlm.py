"""A checkpoint as a masked-LM scorer: its encoder, a head of its own, and the reference corpus's two splits.

Every model is treated alike, the base included: the reference corpus is cut into split A (``head_sequences``
windows, where every model's head is fitted: scoring/mlm_head.py) and split B (``num_sequences`` windows of the
replicate ``cfg.seed``, disjoint from A and from every other replicate's: L_n and SGLD). A shipped head is not
used: a finetuned classifier has none, and fitting every head under one rule keeps one model from being scored
under a head fitted to another.
"""

from __future__ import annotations

import functools
import hashlib
from pathlib import Path

import torch
from torch import Tensor, nn
from transformers import AutoConfig, AutoTokenizer
from transformers.modeling_outputs import BaseModelOutput

from data.errors import ScoringError
from scoring.config import FreeEnergyConfig
from scoring.mlm_head import token_counts, unigram_log_probs
from scoring.reference_corpus import MaskedCorpus, corpus_documents, masked_corpus

HEAD_SEED = 0  # split A's masks: the same in every replicate, so a model's head is fitted once


def mlm_loss(logits: Tensor, targets: Tensor) -> Tensor:
    """Mean masked-token cross-entropy; every sequence has the same number of targets, so this is also the
    mean over sequences of each sequence's mean."""
    return nn.functional.cross_entropy(logits.flatten(0, -2), targets.flatten())


class _GivenHidden(nn.Module):
    """Stands in for the encoder inside the masked-LM model: returns the hidden states it was handed."""

    def __init__(self):
        super().__init__()
        object.__setattr__(self, "hidden", None)

    def forward(self, *args, **kwargs) -> BaseModelOutput:
        return BaseModelOutput(last_hidden_state=self.hidden)


def detach_head(mlm: nn.Module) -> tuple[nn.Module, nn.Module, _GivenHidden]:
    """Split a masked-LM model into its encoder and its head: the encoder is returned, and the model keeps
    the head with a stand-in where the encoder was (tied output embeddings stay the original tensor)."""
    prefix = mlm.base_model_prefix
    encoder, given = getattr(mlm, prefix), _GivenHidden()
    setattr(mlm, prefix, given)
    return encoder, mlm, given


def head_logits(head: nn.Module, given: _GivenHidden, hidden: Tensor, positions: Tensor) -> Tensor:
    """Logits (batch, k, vocab) of the head at the masked positions only."""
    picked = torch.gather(hidden, 1, positions.unsqueeze(-1).expand(-1, -1, hidden.shape[-1]))
    return head_on(head, given, picked)


def head_on(head: nn.Module, given: _GivenHidden, picked: Tensor) -> Tensor:
    """Logits (batch, k, vocab) of the head on hidden states (batch, k, hidden) already at the masked positions."""
    object.__setattr__(given, "hidden", picked)
    try:
        return head(input_ids=torch.zeros(picked.shape[:2], dtype=torch.long, device=picked.device)).logits
    finally:
        object.__setattr__(given, "hidden", None)


class FixedHead(nn.Module):
    """The head as a constant callable (batch, k, hidden) -> logits; it has no parameters of its own."""

    def __init__(self, head: nn.Module, given: _GivenHidden):
        super().__init__()
        object.__setattr__(self, "head", head)
        object.__setattr__(self, "given", given)

    def forward(self, picked: Tensor) -> Tensor:
        return head_on(self.head, self.given, picked)


class BackboneWithHead(nn.Module):
    """Encoder + a fixed head. Its input packs each sequence's token ids and masked positions along the last
    dimension; its only parameters are the encoder's, so SGLD samples the backbone alone."""

    def __init__(self, backbone: nn.Module, head: nn.Module, given: _GivenHidden, seq_len: int):
        super().__init__()
        self.backbone, self.seq_len = backbone, seq_len
        object.__setattr__(self, "head", head)  # not a submodule: a constant
        object.__setattr__(self, "given", given)

    def forward(self, packed: Tensor) -> Tensor:
        ids, positions = packed[..., : self.seq_len], packed[..., self.seq_len:]
        hidden = self.backbone(input_ids=ids).last_hidden_state
        return head_logits(self.head, self.given, hidden, positions)


def pack(corpus: MaskedCorpus) -> Tensor:
    return torch.cat([corpus.input_ids, corpus.positions], dim=1)


def load_pretrained(cls, model_dir: Path, **kwargs):
    model_dir = Path(model_dir)
    if not any(model_dir.glob("*.safetensors")):
        raise ScoringError(f"{model_dir} has no safetensors weights")
    try:
        return cls.from_pretrained(model_dir, use_safetensors=True, trust_remote_code=False,
                                   attn_implementation="eager", **kwargs)
    except (OSError, ValueError) as e:
        raise ScoringError(f"{model_dir}: cannot load with {cls.__name__}: {e}") from e


def untie_decoder(encoder: nn.Module, head: nn.Module) -> None:
    """A decoder tied to the input embeddings gets its own copy of them at w*: the head stays a constant while
    SGLD (and any gradient taken of the scored model) moves the encoder's embeddings through the input only."""
    out = head.get_output_embeddings()
    if out is not None and any(out.weight is p for p in encoder.parameters()):
        out.weight = nn.Parameter(out.weight.detach().clone(), requires_grad=False)


def head_tensors(encoder: nn.Module, head: nn.Module) -> list[str]:
    """The head's own parameters: every one not shared with the encoder (a decoder tied to the input
    embeddings keeps the model's own embeddings, see ``untie_decoder``)."""
    shared = {id(p) for p in encoder.parameters()}
    return sorted(name for name, p in head.named_parameters() if id(p) not in shared)


@functools.lru_cache(maxsize=4)
def _corpus_counts(base_dir: str, spec: str, local_root: str | None, vocab_size: int) -> Tensor:
    tokenizer = AutoTokenizer.from_pretrained(base_dir)
    docs, _ = corpus_documents(spec, local_root=Path(local_root) if local_root else None)
    return token_counts(tokenizer, docs, vocab_size)


class Reference:
    """The masked reference corpus in the base's tokenization: split A (``head_sequences`` windows, the same for
    every replicate) and split B (``num_sequences`` windows of replicate ``cfg.seed``, after A and the earlier
    replicates' windows), and the unigram model of the corpus's text outside split B."""

    def __init__(self, base_dir: Path, cfg: FreeEnergyConfig, *, local_root: Path | None):
        tokenizer = AutoTokenizer.from_pretrained(base_dir)
        docs, self.name = corpus_documents(cfg.corpus, local_root=local_root)
        shape = {"seq_len": cfg.seq_len, "mask_prob": cfg.mask_prob}
        self.head_split = masked_corpus(tokenizer, docs, self.name, num_sequences=cfg.head_sequences,
                                        seed=HEAD_SEED, **shape)
        self.sample_split = masked_corpus(tokenizer, docs, self.name, num_sequences=cfg.num_sequences,
                                          skip=cfg.head_sequences + cfg.seed * cfg.num_sequences,
                                          seed=HEAD_SEED + 1 + cfg.seed, **shape)
        self.revision = hashlib.sha256(f"{self.head_split.revision}:{self.sample_split.revision}".encode()
                                       ).hexdigest()[:16]
        self.vocab_size = AutoConfig.from_pretrained(base_dir, trust_remote_code=False).vocab_size
        counts = _corpus_counts(str(base_dir), cfg.corpus, str(local_root) if local_root else None,
                                self.vocab_size).clone()
        counts -= _counts_of(self.sample_split, tokenizer, self.vocab_size)
        self.unigram = unigram_log_probs(counts.clamp(min=0))
        self.unigram_ce = float(-self.unigram[self.sample_split.targets].double().mean())


def _counts_of(corpus: MaskedCorpus, tokenizer, vocab_size: int) -> Tensor:
    """Token counts of the corpus's original text (masked tokens restored), special tokens left out."""
    ids = corpus.input_ids.scatter(1, corpus.positions, corpus.targets).flatten()
    ids = ids[~torch.isin(ids, torch.tensor(tokenizer.all_special_ids, dtype=torch.long))]
    return torch.bincount(ids, minlength=vocab_size)[:vocab_size].double()
