"""A masked-LM head that fits: every model's head starts as the corpus's unigram model and is fitted to convergence.

The decoder's bias starts at the log unigram frequencies of the reference corpus (add-one counts over its text
outside the sampled split) and the LayerNorm scales of the head's transform at zero, so the untrained head
predicts exactly the unigram distribution whatever the encoder says. Adam then fits the head's own tensors (not
the decoder weight, which stays the model's input embeddings) on the frozen encoder's features at split A's
masked positions, computed once: on three quarters of split A's windows, until the loss on the last quarter
improves by less than ``head_tol`` nats between two checks ``head_check_every`` steps apart (the head ends at
its best check). A head that has not converged by ``head_max_steps``, or
whose model's L_n(w*) on split B is not below the unigram cross-entropy, fails the estimate (scoring/llc_gate.py).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import torch
from torch import Tensor, nn

logger = logging.getLogger(__name__)

HEAD_BATCH = 64  # sequences per fitting step
HELD_OUT = 0.25  # the share of split A's rows the head is not trained on: its stopping rule's loss


@dataclass(frozen=True, slots=True)
class HeadFit:
    steps: int
    converged: bool
    loss: float  # over all of split A at the end
    start_loss: float  # the unigram head's, over split A


def unigram_log_probs(counts: Tensor) -> Tensor:
    """log p(token) from token counts, add-one smoothed (every token of the vocabulary gets a count of 1)."""
    smoothed = counts.double() + 1.0
    return (smoothed / smoothed.sum()).log().float()


def token_counts(tokenizer, documents: list[str], vocab_size: int, *, batch: int = 1024) -> Tensor:
    """How often each token id occurs in ``documents`` (tokenized without special tokens)."""
    counts = torch.zeros(vocab_size, dtype=torch.float64)
    for start in range(0, len(documents), batch):
        ids = tokenizer(documents[start:start + batch], add_special_tokens=False)["input_ids"]
        flat = torch.tensor([i for row in ids for i in row], dtype=torch.long)
        counts += torch.bincount(flat, minlength=vocab_size)[:vocab_size].double()
    return counts


@torch.no_grad()
def start_as_unigram(head: nn.Module, names: list[str], log_probs: Tensor, *, seed: int, std: float) -> None:
    """Seeded BERT initialisation of the head tensors ``names``, then: decoder bias = ``log_probs``, LayerNorm
    scales and shifts 0 (the transform outputs 0, so the logits are the bias)."""
    gen = torch.Generator().manual_seed(seed)
    params = dict(head.named_parameters())
    for module_name, module in head.named_modules():
        for name, param in module.named_parameters(recurse=False):
            full = f"{module_name}.{name}" if module_name else name
            if full not in names:
                continue
            if isinstance(module, nn.LayerNorm) or param.ndim < 2:
                param.zero_()
            else:
                param.copy_(torch.randn(param.shape, generator=gen) * std)
    bias = decoder_bias(head)
    if bias is None or not any(bias is params[n] for n in names):
        raise ValueError("the head has no decoder bias of its own to start at the unigram frequencies")
    bias.copy_(log_probs.to(bias.dtype))


def decoder_bias(head: nn.Module) -> nn.Parameter | None:
    out = head.get_output_embeddings()
    return getattr(out, "bias", None) if out is not None else None


def fit_head(head_logits, params: list[nn.Parameter], features: Tensor, targets: Tensor, *, lr: float,
             max_steps: int, tol: float, check_every: int, seed: int) -> HeadFit:
    """Adam on ``params`` over the first HELD_OUT-complement of the rows, until the loss over the held-out rest
    improves by < ``tol`` between two checks ``check_every`` steps apart, once it is ``tol`` below where it
    started (a head that starts at the unigram model with a zero transform first has to leave it); the
    parameters end at the best check.

    ``head_logits(features)`` maps (rows, k, hidden) features to (rows, k, vocab) logits; minibatches of
    HEAD_BATCH rows are drawn with a seeded generator. Stopping on held-out rows keeps the head from memorising
    split A (its decoder reads 30k tokens from a few thousand targets)."""
    cut = max(1, len(features) - max(1, round(HELD_OUT * len(features))))
    train_x, train_y, check_x, check_y = features[:cut], targets[:cut], features[cut:], targets[cut:]

    def check_loss() -> float:
        with torch.no_grad():
            return float(sum(_loss(head_logits(f), t) * len(f)
                             for f, t in zip(check_x.split(256), check_y.split(256), strict=True)) / len(check_x))

    opt = torch.optim.Adam(params, lr=lr)
    gen = torch.Generator().manual_seed(seed)
    start = best = check_loss()
    best_state = [p.detach().clone() for p in params]
    for step in range(1, max_steps + 1):
        idx = torch.randint(len(train_x), (min(HEAD_BATCH, len(train_x)),), generator=gen)
        loss = _loss(head_logits(train_x[idx]), train_y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % check_every == 0:
            current = check_loss()
            improved = best - current
            if current < best:
                best, best_state = current, [p.detach().clone() for p in params]
            if improved < tol and best < start - tol:  # converged, once it has left the unigram start
                _restore(params, best_state)
                logger.info("head fitted in %d steps: held-out loss %.4f (unigram %.4f)", step, best, start)
                return HeadFit(step, True, best, start)
    _restore(params, best_state)
    logger.warning("head not converged after %d steps (held-out loss %.4f)", max_steps, best)
    return HeadFit(max_steps, False, best, start)


def _restore(params: list[nn.Parameter], state: list[Tensor]) -> None:
    with torch.no_grad():
        for p, v in zip(params, state, strict=True):
            p.copy_(v)


def _loss(logits: Tensor, targets: Tensor) -> Tensor:
    return nn.functional.cross_entropy(logits.flatten(0, -2), targets.flatten())
