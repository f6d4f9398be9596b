"""FreeEnergyScorer: downstream free energy F = n·L_n(w*) + λ̂·log n under the masked-LM loss (Munn & Wei 2025).

Every model is treated alike, the base included: the reference corpus is cut into two disjoint splits of
masked windows; on split A each model's own masked-LM head (every head tensor not tied to its encoder) is fitted
from one seeded initialisation for ``head_steps`` AdamW steps on its frozen encoder's features (cached per model
revision and corpus); on split B, which no head saw, L_n(w*) is the mean of each sequence's mean masked-token
cross-entropy, ‖∇L_n(w*)‖ is recorded, and λ̂ comes from localized SGLD over the encoder (scoring/llc.py, nβ = n /
log n), whose convergence is gated (scoring/llc_gate.py). A shipped head is not used: a finetuned classifier has
none, and refitting every head under one budget keeps one model from being scored under a head fitted to another.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import ClassVar

import torch
from safetensors.torch import load_file, save_file
from torch import Tensor, nn
from transformers import AutoConfig, AutoModelForMaskedLM, AutoTokenizer
from transformers.modeling_outputs import BaseModelOutput

from data.errors import ScoringError
from data.payloads import FreeEnergyRun
from data.records import Score
from scoring.base import RegisteredScorer, ScoringContext, ScoringJob, check_finite
from scoring.config import FreeEnergyConfig
from scoring.llc import LLCEstimate, estimate_llc
from scoring.llc_gate import gate_failures
from scoring.reference_corpus import MaskedCorpus, corpus_documents, masked_corpus

logger = logging.getLogger(__name__)

TRACE_POINTS = 20  # loss-trace summary kept per chain for the model page
HEAD_BATCH = 64  # sequences per head-fitting step and per feature / gradient chunk


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
    object.__setattr__(given, "hidden", picked)
    try:
        return head(input_ids=positions).logits
    finally:
        object.__setattr__(given, "hidden", None)


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


@dataclass(frozen=True, slots=True)
class FreeEnergy:
    free_energy: float
    llc: LLCEstimate
    n: int
    seconds: float
    grad_norm: float  # ‖∇L_n(w*)‖ over the encoder's parameters: ~0 at a local minimum
    failures: tuple[str, ...]  # the convergence gate's reasons (scoring/llc_gate.py); empty: the estimate counts
    start_grad_norm: float | None = None  # ‖∇L_n‖ at the checkpoint itself, before a localized minimisation


def _load(cls, model_dir: Path, **kwargs):
    model_dir = Path(model_dir)
    if not any(model_dir.glob("*.safetensors")):
        raise ScoringError(f"{model_dir} has no safetensors weights")
    try:
        return cls.from_pretrained(model_dir, use_safetensors=True, trust_remote_code=False,
                                   attn_implementation="eager", **kwargs)
    except (OSError, ValueError) as e:
        raise ScoringError(f"{model_dir}: cannot load with {cls.__name__}: {e}") from e


class Reference:
    """The masked reference corpus in the base's tokenization, cut once into split A (``head_sequences`` windows,
    where every model's head is fitted) and split B (``num_sequences`` windows: L_n and SGLD)."""

    def __init__(self, base_dir: Path, cfg: FreeEnergyConfig, *, local_root: Path | None):
        tokenizer = AutoTokenizer.from_pretrained(base_dir)
        docs, self.name = corpus_documents(cfg.corpus, local_root=local_root)
        whole = masked_corpus(tokenizer, docs, self.name, num_sequences=cfg.head_sequences + cfg.num_sequences,
                              seq_len=cfg.seq_len, mask_prob=cfg.mask_prob, seed=cfg.seed)
        self.revision = whole.revision
        self.head_split = whole.rows(slice(0, cfg.head_sequences))
        self.sample_split = whole.rows(slice(cfg.head_sequences, None))
        self.vocab_size = AutoConfig.from_pretrained(base_dir, trust_remote_code=False).vocab_size


def scored_model(model_dir: Path, revision: str, ref: Reference, cfg: FreeEnergyConfig, *,
                 cache_dir: Path | None = None, device: str = "cpu") -> BackboneWithHead:
    """The checkpoint's encoder (eval mode) with its own masked-LM head, fitted on split A and then fixed."""
    with torch.random.fork_rng(devices=[]):
        mlm = _load(AutoModelForMaskedLM, model_dir)
    vocab = mlm.get_input_embeddings().weight.shape[0]
    if vocab != ref.vocab_size:
        raise ScoringError(f"{model_dir}: vocabulary of {vocab} tokens, but the base's has {ref.vocab_size}")
    encoder, head, given = detach_head(mlm.to(device).eval())
    names = head_tensors(encoder, head)
    key = hashlib.sha256(json.dumps([revision, ref.revision, cfg.head_sequences, cfg.head_steps, cfg.seed,
                                     names]).encode()).hexdigest()[:16]
    path = Path(cache_dir) / "free_energy_heads" / f"{key}.safetensors" if cache_dir else None
    if path is not None and path.exists():
        head.load_state_dict(load_file(path), strict=False)
    else:
        reset_head(head, names, seed=cfg.seed, std=getattr(mlm.config, "initializer_range", 0.02))
        fit_head(encoder, head, given, names, ref.head_split, cfg, device)
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            state = head.state_dict()
            save_file({k: state[k].detach().cpu().clone() for k in names}, path)
    untie_decoder(encoder, head)
    for param in head.parameters():
        param.requires_grad_(False)  # the head is a constant of the scored model
    for param in encoder.parameters():
        param.requires_grad_(True)  # what SGLD samples
    return BackboneWithHead(encoder, head, given, cfg.seq_len)


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


@torch.no_grad()
def reset_head(head: nn.Module, names: list[str], *, seed: int, std: float) -> None:
    """One seeded initialisation for every model's head: LayerNorm scale 1 and shift 0, other matrices
    N(0, std²), other vectors 0 (BERT's initialisation), whatever the checkpoint shipped."""
    gen = torch.Generator().manual_seed(seed)
    wanted = set(names)
    for module_name, module in head.named_modules():
        for name, param in module.named_parameters(recurse=False):
            full = f"{module_name}.{name}" if module_name else name
            if full not in wanted:
                continue
            if isinstance(module, nn.LayerNorm):
                param.fill_(1.0 if name == "weight" else 0.0)
            elif param.ndim >= 2:
                param.copy_(torch.randn(param.shape, generator=gen) * std)
            else:
                param.zero_()


def fit_head(encoder: nn.Module, head: nn.Module, given: _GivenHidden, names: list[str], corpus: MaskedCorpus,
             cfg: FreeEnergyConfig, device: str) -> None:
    """Train only the head tensors ``names`` on the frozen encoder's hidden states at the masked positions of
    ``corpus`` (computed once): ``head_steps`` AdamW steps (lr 1e-3) of 64 sequences drawn with a seeded generator."""
    logger.info("fitting a masked-LM head (%d tensors) on the frozen encoder for %d steps", len(names), cfg.head_steps)
    with torch.no_grad():
        hidden = torch.cat([
            torch.gather(h, 1, pos.to(device).unsqueeze(-1).expand(-1, -1, h.shape[-1]))
            for ids, pos in zip(corpus.input_ids.split(HEAD_BATCH), corpus.positions.split(HEAD_BATCH), strict=True)
            for h in [encoder(input_ids=ids.to(device)).last_hidden_state]])
    k = corpus.positions.shape[1]
    arange = torch.arange(k, device=device).expand(len(corpus), k)  # positions within the gathered states
    params = dict(head.named_parameters())
    for param in head.parameters():
        param.requires_grad_(False)
    trained = [params[n].requires_grad_(True) for n in names]
    opt = torch.optim.AdamW(trained, lr=1e-3, weight_decay=0.0)
    gen = torch.Generator().manual_seed(cfg.seed)
    targets = corpus.targets.to(device)
    for _ in range(cfg.head_steps):
        idx = torch.randint(len(corpus), (HEAD_BATCH,), generator=gen).to(device)
        loss = mlm_loss(head_logits(head, given, hidden[idx], arange[idx]), targets[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()


def gradient_norm(model: nn.Module, corpus: MaskedCorpus, device: str) -> float:
    """‖∇L_n(w*)‖ over the model's parameters, L_n the mean loss over every sequence of ``corpus``."""
    params = [p for p in model.parameters() if p.requires_grad]
    total = [torch.zeros_like(p) for p in params]
    x, y = pack(corpus).to(device), corpus.targets.to(device)
    for xs, ys in zip(x.split(HEAD_BATCH), y.split(HEAD_BATCH), strict=True):
        grads = torch.autograd.grad(mlm_loss(model(xs), ys) * (len(xs) / len(x)), params)
        for acc, g in zip(total, grads, strict=True):
            acc.add_(g)
    return float(torch.sqrt(sum(g.double().pow(2).sum() for g in total)))


def free_energy(model_dir: Path, revision: str, ref: Reference, cfg: FreeEnergyConfig, *,
                cache_dir: Path | None = None, device: str = "cpu") -> FreeEnergy:
    """F, λ̂, L_n(w*), ‖∇L_n(w*)‖ and the gate's verdict for the checkpoint in ``model_dir``, on split B."""
    started = time.perf_counter()
    model = scored_model(model_dir, revision, ref, cfg, cache_dir=cache_dir, device=device)
    corpus = ref.sample_split
    n = len(corpus)
    grad_norm = start_grad_norm = gradient_norm(model, corpus, device)
    if cfg.localize_steps:
        localize(model, corpus, cfg, device)
        grad_norm = gradient_norm(model, corpus, device)
    sgld = replace(cfg.sgld, init_loss_batches=math.ceil(n / cfg.sgld.batch_size))  # L_n(w*) over all n
    est = estimate_llc(model, (pack(corpus), corpus.targets), mlm_loss, sgld, n=n, device=device)
    value = n * est.init_loss + est.mean * math.log(n)
    return FreeEnergy(free_energy=value, llc=est, n=n, seconds=time.perf_counter() - started, grad_norm=grad_norm,
                      failures=gate_failures(est, cfg.gate),
                      start_grad_norm=start_grad_norm if cfg.localize_steps else None)


def localize(model: nn.Module, corpus: MaskedCorpus, cfg: FreeEnergyConfig, device: str) -> None:
    """``cfg.localize_steps`` Adam steps on L_B(θ) + γ/(2nβ)·‖θ − θ*‖² (minibatches of split B, seeded): towards
    the mode of the localized tempered posterior SGLD samples, nβ and γ as the sampler's. The model moves in place."""
    params = [p for p in model.parameters() if p.requires_grad]
    anchor = [p.detach().clone() for p in params]
    n = len(corpus)
    nbeta = cfg.sgld.nbeta if cfg.sgld.nbeta is not None else n / math.log(n)
    pull = cfg.sgld.gamma / (2 * nbeta)
    opt = torch.optim.Adam(params, lr=cfg.localize_lr)
    x, y = pack(corpus).to(device), corpus.targets.to(device)
    gen = torch.Generator().manual_seed(cfg.seed + 1)
    for _ in range(cfg.localize_steps):
        idx = torch.randint(n, (min(HEAD_BATCH, n),), generator=gen).to(device)
        penalty = sum((p - a).pow(2).sum() for p, a in zip(params, anchor, strict=True))
        loss = mlm_loss(model(x[idx]), y[idx]) + pull * penalty
        opt.zero_grad()
        loss.backward()
        opt.step()
    logger.info("localized minimisation: %d steps, moved %.3g from the checkpoint", cfg.localize_steps,
                float(sum((p.detach() - a).pow(2).sum() for p, a in zip(params, anchor, strict=True)).sqrt()))


def trace_summary(traces: Tensor, points: int = TRACE_POINTS) -> list[list[float]]:
    """Each chain's loss trace as the means of ``points`` equal windows (fewer for short traces)."""
    windows = max(1, min(points, traces.shape[1]))
    cut = traces[:, : traces.shape[1] // windows * windows]
    return [[round(float(v), 5) for v in row] for row in cut.reshape(len(cut), windows, -1).mean(dim=2)]


class FreeEnergyScorer(RegisteredScorer):
    name: ClassVar[str] = "free_energy"
    config_type: ClassVar[type] = FreeEnergyConfig
    settings_fields: ClassVar[tuple[str, ...]] = ("reference_corpus",)

    def __init__(self, cfg: FreeEnergyConfig | None = None, *, local_root: Path | None = None):
        super().__init__(cfg, local_root=local_root)
        self.cfg = replace(self.cfg, sgld=replace(self.cfg.sgld, seed=self.cfg.seed))  # one seed: the replicate

    @classmethod
    def config_for(cls, settings, options=None) -> FreeEnergyConfig:
        return FreeEnergyConfig(corpus=settings.reference_corpus)

    @staticmethod
    def data_identity(ref: Reference) -> dict:
        """The corpus (name and revision; its splits are fixed by the config) and how every head is made."""
        return {"corpus": [ref.name, ref.revision], "head": {"kind": "refit per model on split A"}}

    def score(self, job: ScoringJob, ctx: ScoringContext) -> list[Score]:
        ref = Reference(job.base_dir, self.cfg, local_root=self.local_root)
        proto = self.protocol(self.data_identity(ref))
        models = [(job.repo_id, job.revision, job.model_dir)]
        if job.repo_id != job.base_id and not ctx.has_score(job.base_id, job.base_revision, self.name, "free_energy",
                                                            ref.name, self.cfg.sgld.seed, proto.hash):
            models.append((job.base_id, job.base_revision, job.base_dir))
        scores: list[Score] = []
        for repo_id, revision, model_dir in models:
            result = free_energy(model_dir, revision, ref, self.cfg, cache_dir=ctx.cache_dir, device=ctx.device)
            if ctx.verbose:
                print(summary_line(repo_id, result))
            extra = run_payload(result, self.cfg, ref).to_json()
            status = "unconverged" if result.failures else "ok"
            for metric, value in (("free_energy", result.free_energy), ("llc_mean", result.llc.mean),
                                  ("llc_std", result.llc.std), ("init_loss", result.llc.init_loss)):
                scores.append(Score(
                    repo_id=repo_id, revision=revision, scorer=self.name, metric=metric, target=ref.name,
                    seed=self.cfg.sgld.seed, value=value, config_hash=proto.hash, config_json=proto.json,
                    duration_s=result.seconds, base_id=job.base_id, extra=extra, status=status))
        return check_finite(scores, f"free energy of {job.repo_id}")


def summary_line(repo_id: str, result: FreeEnergy) -> str:
    est = result.llc
    verdict = "converged" if not result.failures else "UNCONVERGED: " + "; ".join(result.failures)
    return (f"{repo_id}: F = {result.free_energy:.2f}, λ̂ = {est.mean:.2f} ± {est.std:.2f} (chains "
            f"{', '.join(f'{c:.2f}' for c in est.per_chain)}), L_n(w*) = {est.init_loss:.4f}, ‖∇L_n‖ = "
            f"{result.grad_norm:.3g}, {result.seconds:.0f}s; {verdict}")


def run_payload(result: FreeEnergy, cfg: FreeEnergyConfig, ref: Reference) -> FreeEnergyRun:
    est = result.llc
    return FreeEnergyRun(per_chain=tuple(est.per_chain), nbeta=est.nbeta, n=result.n, num_chains=len(est.per_chain),
                         num_draws=cfg.sgld.num_draws, diagnostics=tuple(est.diagnostics),
                         trace=tuple(map(tuple, trace_summary(est.loss_traces))), head="refit", corpus=ref.name,
                         grad_norm=result.grad_norm, drift=est.drift, r_hat=est.r_hat, acceptance=est.acceptance,
                         gate=result.failures, start_grad_norm=result.start_grad_norm,
                         localize_steps=cfg.localize_steps)
