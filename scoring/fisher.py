"""Fisher-guided dropout (Sharma et al., arXiv 2406.14005): which sub-layers to regularise, from the
empirical diagonal Fisher of the pretraining loss.

1. ``empirical_fisher``: F_i = mean over N examples of (dL_k/dθ_i)², with per-example gradients from
   ``torch.func`` (``vmap`` of ``grad``) in chunks; ``empirical_fisher_hooks`` forms them layer by layer from
   one batched backward (the fast path for BERT-family encoders, used by ``model_fisher_scores``);
   ``empirical_fisher_loop`` is the batch-size-1 reference.
2. ``dropout_groups``: each dropout module, by name, with the parameters that feed it: a dropout named
   ``P.dropout`` regularises the output of its parent ``P``, so its group is every parameter under ``P.``
   (BERT/RoBERTa: ``embeddings``; per layer ``attention.self`` = Q/K/V for the attention-probability
   dropout, ``attention.output`` = dense + LayerNorm, ``output`` = FFN dense + LayerNorm: 37 modules for
   12 layers). Never by position in ``model.modules()``.
3. ``module_scores``: per module, the mean over its parameter tensors of each tensor's mean Fisher.
4. ``guided_rates``: rank modules by score; rates fall linearly from ``p_max`` (lowest Fisher) to ``p_min``
   (highest), fixed during training. ``apply_rates`` sets them on a classifier; its own head dropout stays.

``model_fisher_rates`` does it all for a checkpoint on the free-energy reference corpus (masked-LM loss,
the checkpoint's own MLM head, or one fitted on its frozen encoder when it ships none), cached on disk.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

import torch
from torch import Tensor, nn
from torch.func import functional_call, grad, vmap

from data.atomic import atomic_write_bytes
from scoring.config import GUIDED, GuidedDropoutConfig

logger = logging.getLogger(__name__)

LossFn = Callable[[Tensor, Tensor], Tensor]


def empirical_fisher(model: nn.Module, inputs: Tensor, targets: Tensor, loss_fn: LossFn, *, chunk: int = 8
                     ) -> dict[str, Tensor]:
    """Diagonal empirical Fisher of ``loss_fn`` (a batch mean) over the examples, per named parameter."""
    params = {k: p.detach() for k, p in model.named_parameters()}
    buffers = {k: b.detach() for k, b in model.named_buffers()}

    def one(p: dict[str, Tensor], x: Tensor, y: Tensor) -> Tensor:
        return loss_fn(functional_call(model, (p, buffers), (x.unsqueeze(0),)), y.unsqueeze(0))

    per_example = vmap(grad(one), in_dims=(None, 0, 0), randomness="same")
    fisher = {k: torch.zeros_like(p) for k, p in params.items()}
    for x, y in zip(inputs.split(chunk), targets.split(chunk), strict=True):
        for k, g in per_example(params, x, y).items():
            fisher[k].add_(g.square().sum(dim=0))
    return {k: v / len(inputs) for k, v in fisher.items()}


def empirical_fisher_hooks(model: nn.Module, inputs: Tensor, targets: Tensor, loss_fn: LossFn, *, chunk: int = 16
                           ) -> dict[str, Tensor]:
    """The same Fisher from one batched forward/backward per chunk: hooks keep each layer's input and the
    gradient at its output, and the per-example gradients are formed layer by layer (Linear: sum over
    positions of δ aᵀ; LayerNorm: of δ ⊙ x̂; Embedding: δ scattered onto the example's rows), squared and
    summed. Exact for models whose examples do not interact (no batch norm) and whose parameters all belong
    to Linear, LayerNorm or Embedding modules (BERT-family encoders); raises NotImplementedError otherwise."""
    layers = [m for m in model.modules() if isinstance(m, nn.Linear | nn.LayerNorm | nn.Embedding)]
    owned = {id(p) for m in layers for p in m.parameters(recurse=False)}
    if any(id(p) not in owned for p in model.parameters()):
        raise NotImplementedError("a parameter outside Linear/LayerNorm/Embedding layers")
    names = {id(p): k for k, p in model.named_parameters()}
    fisher = {k: torch.zeros_like(p) for k, p in model.named_parameters()}
    saved: dict[nn.Module, list] = {}

    def keep(module, args, output):
        record = [args[0].detach(), None]
        saved[module] = record
        output.register_hook(lambda g: record.__setitem__(1, g.detach()))

    handles = [m.register_forward_hook(keep) for m in layers]
    parents = {m: name.rsplit(".", 1)[0] for name, m in model.named_modules() if m in layers}
    try:
        for x, y in zip(inputs.split(chunk), targets.split(chunk), strict=True):
            saved.clear()
            model.zero_grad(set_to_none=True)
            (loss_fn(model(x), y) * len(x)).backward()  # the sum of the examples' losses
            summed = {parents[m]: d for m, (_, d) in saved.items()
                      if isinstance(m, nn.Embedding) and d is not None and d.shape[0] == len(x)}
            for module, (a, delta) in saved.items():
                if delta is None:
                    continue
                if delta.shape[0] != len(x):  # a broadcast embedding (position ids of shape (1, T)): it is
                    # summed with a batched sibling (word embeddings), whose output gradient is the same
                    delta = summed[parents[module]]
                    a = a.expand(len(x), *a.shape[1:])
                _accumulate(module, a, delta, fisher, names)
    finally:
        for h in handles:
            h.remove()
        model.zero_grad(set_to_none=True)
    return {k: v / len(inputs) for k, v in fisher.items()}


def _accumulate(module: nn.Module, a: Tensor, delta: Tensor, fisher: dict[str, Tensor], names: dict) -> None:
    b = delta.shape[0]
    if isinstance(module, nn.Embedding):
        ids, d = a.reshape(b, -1), delta.reshape(b, -1, delta.shape[-1])
        target = fisher[names[id(module.weight)]]
        for k in range(b):
            rows, inverse = ids[k].unique(return_inverse=True)
            g = torch.zeros(len(rows), d.shape[-1], dtype=d.dtype, device=d.device).index_add_(0, inverse, d[k])
            target.index_add_(0, rows, g.square())
        return
    a, d = a.reshape(b, -1, a.shape[-1]), delta.reshape(b, -1, delta.shape[-1])
    if isinstance(module, nn.Linear):
        fisher[names[id(module.weight)]].add_(torch.einsum("bto,bti->boi", d, a).square().sum(0))
    else:  # LayerNorm: y = x̂ ⊙ w + b
        x_hat = nn.functional.layer_norm(a, module.normalized_shape, eps=module.eps)
        if module.weight is not None:
            fisher[names[id(module.weight)]].add_((d * x_hat).sum(1).square().sum(0))
    if module.bias is not None:
        fisher[names[id(module.bias)]].add_(d.sum(1).square().sum(0))


def empirical_fisher_loop(model: nn.Module, inputs: Tensor, targets: Tensor, loss_fn: LossFn) -> dict[str, Tensor]:
    """The same Fisher with one backward pass per example (batch size 1, as the paper's code did)."""
    params = dict(model.named_parameters())
    fisher = {k: torch.zeros_like(p) for k, p in params.items()}
    for x, y in zip(inputs, targets, strict=True):
        grads = torch.autograd.grad(loss_fn(model(x.unsqueeze(0)), y.unsqueeze(0)), list(params.values()))
        for k, g in zip(params, grads, strict=True):
            fisher[k].add_(g.square())
    return {k: v / len(inputs) for k, v in fisher.items()}


def dropout_groups(encoder: nn.Module) -> dict[str, list[str]]:
    """Dropout module name -> names of the parameters of its parent module (the sub-layer it regularises)."""
    params = [n for n, _ in encoder.named_parameters()]
    groups = {}
    for name, module in encoder.named_modules():
        if isinstance(module, nn.Dropout) and "." in name:
            parent = name.rsplit(".", 1)[0] + "."
            members = [p for p in params if p.startswith(parent)]
            if members:
                groups[name] = members
    return groups


def module_scores(fisher: dict[str, Tensor], groups: dict[str, list[str]]) -> dict[str, float]:
    """Per dropout module: the mean over its parameter tensors of each tensor's mean Fisher."""
    return {name: float(torch.stack([fisher[p].mean() for p in members]).mean()) for name, members in groups.items()}


def guided_rates(scores: dict[str, float], *, p_max: float = 0.1, p_min: float = 0.0) -> dict[str, float]:
    """Rates falling linearly with Fisher rank: the lowest score gets ``p_max``, the highest ``p_min``
    (ties broken by name, so the assignment is deterministic)."""
    if not 0 <= p_min <= p_max < 1:
        raise ValueError(f"need 0 <= p_min <= p_max < 1, got {p_min}, {p_max}")
    order = sorted(scores, key=lambda name: (scores[name], name))
    if len(order) == 1:
        return {order[0]: p_max}
    step = (p_max - p_min) / (len(order) - 1)
    return {name: p_max - rank * step for rank, name in enumerate(order)}


def apply_rates(model: nn.Module, rates: dict[str, float]) -> int:
    """Set the encoder's dropout rates on a model (an encoder or a task model holding one); returns how many
    modules were set. Raises KeyError naming a module the model does not have."""
    modules = dict(model.named_modules())
    prefix = getattr(model, "base_model_prefix", "")
    for name, p in rates.items():
        module = modules.get(name) or modules.get(f"{prefix}.{name}")
        if not isinstance(module, nn.Dropout):
            raise KeyError(f"the model has no dropout module {name!r}")
        module.p = float(p)
    return len(rates)


def model_fisher_scores(model_dir: Path, cfg: GuidedDropoutConfig | None = None, *, revision: str = "",
                        cache_dir: Path | None = None, local_root: Path | None = None, device: str = "cpu"
                        ) -> dict[str, float]:
    """Per-dropout-module Fisher scores of a checkpoint under its masked-LM loss on the reference corpus."""
    from scoring.config import FreeEnergyConfig
    from scoring.free_energy import scored_model
    from scoring.mlm import Reference, mlm_loss, pack

    cfg = cfg or GUIDED
    if not revision:
        from scoring.base import directory_revision

        revision = directory_revision(model_dir)
    key = hashlib.sha256(json.dumps([revision, asdict(cfg)]).encode()).hexdigest()[:16]
    path = Path(cache_dir) / "fisher" / f"{key}.json" if cache_dir else None
    if path is not None and path.exists():
        try:
            return json.loads(path.read_text())
        except (ValueError, OSError) as e:  # a damaged cache file is rebuilt, never fatal
            logger.warning("a cached Fisher file is damaged (%s): it is rebuilt", e)
            path.unlink(missing_ok=True)
    fe_cfg = FreeEnergyConfig(num_sequences=cfg.num_examples, head_sequences=max(1, cfg.num_examples // 4),
                              seq_len=cfg.seq_len, seed=cfg.sample_seed, corpus=cfg.corpus)
    ref = Reference(model_dir, fe_cfg, local_root=local_root)  # its own head fitted on split A, Fisher on B
    model = scored_model(model_dir, revision, ref, fe_cfg, cache_dir=cache_dir, device=device)
    encoder = model.backbone
    x, y = pack(ref.sample_split).to(device), ref.sample_split.targets.to(device)
    try:
        fisher = empirical_fisher_hooks(model, x, y, mlm_loss, chunk=cfg.chunk)
    except NotImplementedError:
        fisher = empirical_fisher(model, x, y, mlm_loss, chunk=cfg.chunk)
    fisher = {k.removeprefix("backbone."): v for k, v in fisher.items()}
    scores = module_scores(fisher, dropout_groups(encoder))
    if path is not None:
        atomic_write_bytes(path, json.dumps(scores, indent=1, sort_keys=True).encode())
    return scores
