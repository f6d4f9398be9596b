"""The sampled block: one encoder layer of a masked-LM model on cached lower-layer states.

The weight-refined LLC (Wang et al., arXiv 2410.02984) samples a named set of weights and holds the rest at w*.
Here that set is the encoder's last layer: the layers below it are fixed, so their output on split B (the input
of the last layer) is computed once, and each SGLD step runs the last layer and the fixed head only. For the
post-LN BERT layer (BERT, RoBERTa and their copies: a self-attention with query/key/value and a dense + LayerNorm
output, then a feed-forward with its own LayerNorm) keys and values are computed at every position but queries,
the attention output, the feed-forward, the head and the logits only at the masked positions: the loss is
exactly the full model's (tests/unit/scoring/test_llc_block.py). Any other layer falls back to its own forward
over every position, then the masked positions are picked.

``BlockLoss`` is an ``nn.Module`` whose parameters are the layer's and whose input is a batch of split-B row
indices, so the generic estimators of scoring/llc.py sample it unchanged.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from data.errors import ScoringError


def encoder_layers(encoder: nn.Module) -> nn.ModuleList:
    """The encoder's stack of layers: its longest ``nn.ModuleList``."""
    lists = [m for m in encoder.modules() if isinstance(m, nn.ModuleList) and len(m) > 0]
    if not lists:
        raise ScoringError("the encoder has no stack of layers to sample a block of")
    return max(lists, key=len)


def is_post_ln_bert_layer(layer: nn.Module) -> bool:
    """True for a BERT-style layer the masked-position fast path computes exactly."""
    att = getattr(layer, "attention", None)
    self_att = getattr(att, "self", None)
    needed = [getattr(self_att, n, None) for n in ("query", "key", "value")]
    out = getattr(att, "output", None)
    return (None not in needed and hasattr(self_att, "scaling") and hasattr(out, "dense")
            and hasattr(out, "LayerNorm") and hasattr(layer, "intermediate") and hasattr(layer, "output")
            and hasattr(layer.output, "LayerNorm") and not getattr(layer, "is_decoder", False)
            and not getattr(layer, "add_cross_attention", False))


def pick(hidden: Tensor, positions: Tensor) -> Tensor:
    """Rows (batch, k, hidden) of ``hidden`` (batch, seq, hidden) at ``positions`` (batch, k)."""
    return torch.gather(hidden, 1, positions.unsqueeze(-1).expand(-1, -1, hidden.shape[-1]))


def bert_layer_at(layer: nn.Module, hidden: Tensor, positions: Tensor) -> Tensor:
    """The post-LN BERT layer's output at ``positions`` only, from its input ``hidden`` at every position (no
    padding: every window is full). Equal to ``pick(layer(hidden), positions)``."""
    att = layer.attention.self
    b, t, _ = hidden.shape
    heads, size = att.num_attention_heads, att.attention_head_size
    at = pick(hidden, positions)
    k = at.shape[1]
    query = att.query(at).view(b, k, heads, size).transpose(1, 2)
    key = att.key(hidden).view(b, t, heads, size).transpose(1, 2)
    value = att.value(hidden).view(b, t, heads, size).transpose(1, 2)
    weights = torch.softmax(query @ key.transpose(-1, -2) * att.scaling, dim=-1)
    context = (weights @ value).transpose(1, 2).reshape(b, k, heads * size)
    out = layer.attention.output
    attended = out.LayerNorm(out.dense(context) + at)
    return layer.output.LayerNorm(layer.output.dense(layer.intermediate(attended)) + attended)


def layer_at(layer: nn.Module, hidden: Tensor, positions: Tensor) -> Tensor:
    """Any layer's output at ``positions``: its own forward over every position, then the masked rows."""
    out = layer(hidden)
    return pick(out[0] if isinstance(out, tuple) else out, positions)


class BlockLoss(nn.Module):
    """The last layer (sampled) + a fixed head over cached split-B states. Input: (batch,) row indices; output:
    logits (batch, k, vocab) at the rows' masked positions. Its parameters are the layer's alone."""

    def __init__(self, layer: nn.Module, head, states: Tensor, positions: Tensor, *, fast: bool | None = None):
        super().__init__()
        self.layer = layer
        self.register_buffer("states", states, persistent=False)
        self.register_buffer("positions", positions, persistent=False)
        object.__setattr__(self, "head", head)  # a callable (batch, k, hidden) -> logits; a constant
        self.fast = is_post_ln_bert_layer(layer) if fast is None else fast

    def forward(self, rows: Tensor) -> Tensor:
        hidden, positions = self.states[rows], self.positions[rows]
        at = bert_layer_at if self.fast else layer_at
        return self.head(at(self.layer, hidden, positions))


@torch.no_grad()
def lower_states(encoder: nn.Module, input_ids: Tensor, *, batch: int = 64) -> tuple[Tensor, Tensor]:
    """(input of the last layer, output of the whole encoder) for every row of ``input_ids``, in eval mode."""
    inputs, outputs = [], []
    for ids in input_ids.split(batch):
        out = encoder(input_ids=ids, output_hidden_states=True)
        inputs.append(out.hidden_states[-2])
        outputs.append(out.last_hidden_state)
    return torch.cat(inputs), torch.cat(outputs)
