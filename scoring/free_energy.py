"""FreeEnergyScorer: downstream free energy F = n·L_n(w*) + λ̂·log n under the masked-LM loss (Munn & Wei 2025).

The model scored is the candidate's encoder ("backbone") feeding the *base's* masked-LM head, which is held
fixed: a finetuned classifier has no LM head, and one shared head makes every candidate of a base comparable.
SGLD samples the backbone only. A base checkpoint that ships no MLM head (e.g. sentence-transformers exports
such as all-MiniLM-L6-v2) gets one fitted on its frozen encoder over the reference corpus (``head_steps``
AdamW steps, seeded), cached on disk per base revision and corpus. L_n(w*) is the mean over all n sequences
of each sequence's mean masked-token cross-entropy; λ̂ comes from scoring/llc.py with nβ = n / log n.
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
from transformers import AutoModel, AutoModelForMaskedLM, AutoTokenizer
from transformers.modeling_outputs import BaseModelOutput

from data.errors import ScoringError
from data.payloads import FreeEnergyRun
from data.records import Score
from scoring.base import RegisteredScorer, ScoringContext, ScoringJob, check_finite
from scoring.config import FreeEnergyConfig
from scoring.llc import LLCEstimate, estimate_llc
from scoring.reference_corpus import MaskedCorpus, corpus_documents, masked_corpus

logger = logging.getLogger(__name__)

TRACE_POINTS = 20  # loss-trace summary kept per chain for the model page


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
    head: str  # "shipped" or "fitted"


def _load(cls, model_dir: Path, **kwargs):
    model_dir = Path(model_dir)
    if not any(model_dir.glob("*.safetensors")):
        raise ScoringError(f"{model_dir} has no safetensors weights")
    try:
        return cls.from_pretrained(model_dir, use_safetensors=True, trust_remote_code=False,
                                   attn_implementation="eager", **kwargs)
    except (OSError, ValueError) as e:
        raise ScoringError(f"{model_dir}: cannot load with {cls.__name__}: {e}") from e


def load_backbone(model_dir: Path) -> nn.Module:
    """The encoder of any checkpoint of the family (a classifier's head and the pooler are dropped)."""
    backbone = _load(AutoModel, model_dir)
    if getattr(backbone, "pooler", None) is not None:
        backbone.pooler = None  # unused by the MLM loss; its weights would only add noise dimensions
    return backbone.eval()


class BaseHead:
    """The base's masked-LM head (fitted if its checkpoint ships none) and the masked reference corpus."""

    def __init__(self, base_dir: Path, base_revision: str, cfg: FreeEnergyConfig, *, local_root: Path | None,
                 cache_dir: Path | None, device: str):
        tokenizer = AutoTokenizer.from_pretrained(base_dir)
        docs, name = corpus_documents(cfg.corpus, local_root=local_root)
        self.corpus: MaskedCorpus = masked_corpus(tokenizer, docs, name, num_sequences=cfg.num_sequences,
                                                  seq_len=cfg.seq_len, mask_prob=cfg.mask_prob, seed=cfg.seed)
        mlm, info = _load(AutoModelForMaskedLM, base_dir, output_loading_info=True)
        self.vocab_size = mlm.get_output_embeddings().weight.shape[0]
        prefix = mlm.base_model_prefix + "."
        missing = sorted(k for k in info["missing_keys"] if not k.startswith(prefix))
        encoder, head, self.given = detach_head(mlm.to(device).eval())
        self.head_kind = "fitted" if missing else "shipped"
        if missing:
            key = hashlib.sha256(json.dumps([base_revision, self.corpus.revision, cfg.head_steps, cfg.seed,
                                             missing]).encode()).hexdigest()[:16]
            path = Path(cache_dir) / "free_energy_heads" / f"{key}.safetensors" if cache_dir else None
            if path is not None and path.exists():
                head.load_state_dict(load_file(path), strict=False)
            else:
                fit_head(encoder, head, self.given, missing, self.corpus, cfg, device)
                if path is not None:
                    path.parent.mkdir(parents=True, exist_ok=True)
                    state = head.state_dict()
                    save_file({k: state[k].detach().cpu().clone() for k in missing if k in state}, path)
        for p in head.parameters():
            p.requires_grad_(False)
        self.head = head


def fit_head(encoder: nn.Module, head: nn.Module, given: _GivenHidden, names: list[str], corpus: MaskedCorpus,
             cfg: FreeEnergyConfig, device: str) -> None:
    """Train only the head tensors ``names`` (missing from the checkpoint) on the frozen encoder's hidden
    states at the masked positions (computed once), full batch per step of 64 sequences, AdamW lr 1e-3."""
    logger.info("fitting a masked-LM head (%d tensors) on the frozen base for %d steps", len(names), cfg.head_steps)
    with torch.no_grad():
        hidden = torch.cat([
            torch.gather(h, 1, pos.to(device).unsqueeze(-1).expand(-1, -1, h.shape[-1]))
            for ids, pos in zip(corpus.input_ids.split(64), corpus.positions.split(64), strict=True)
            for h in [encoder(input_ids=ids.to(device)).last_hidden_state]])
    k = corpus.positions.shape[1]
    arange = torch.arange(k, device=device).expand(len(corpus), k)  # positions within the gathered states
    params = dict(head.named_parameters())
    for p in head.parameters():
        p.requires_grad_(False)
    trained = [params[n].requires_grad_(True) for n in names if n in params]
    opt = torch.optim.AdamW(trained, lr=1e-3, weight_decay=0.0)
    gen = torch.Generator().manual_seed(cfg.seed)
    targets = corpus.targets.to(device)
    for _ in range(cfg.head_steps):
        idx = torch.randint(len(corpus), (64,), generator=gen).to(device)
        loss = mlm_loss(head_logits(head, given, hidden[idx], arange[idx]), targets[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()


def free_energy(model_dir: Path, base: BaseHead, cfg: FreeEnergyConfig, *, device: str = "cpu") -> FreeEnergy:
    """F, λ̂ and L_n(w*) of the checkpoint in ``model_dir`` with the base's head on the reference corpus."""
    started = time.perf_counter()
    backbone = load_backbone(model_dir).to(device)
    vocab = backbone.get_input_embeddings().weight.shape[0]
    if vocab != base.vocab_size:
        raise ScoringError(f"{model_dir}: vocabulary of {vocab} tokens, but the base's LM head has {base.vocab_size}")
    model = BackboneWithHead(backbone, base.head, base.given, cfg.seq_len)
    n = len(base.corpus)
    sgld = replace(cfg.sgld, init_loss_batches=math.ceil(n / cfg.sgld.batch_size))  # L_n(w*) over all n
    est = estimate_llc(model, (pack(base.corpus), base.corpus.targets), mlm_loss, sgld, n=n, device=device)
    value = n * est.init_loss + est.mean * math.log(n)
    return FreeEnergy(free_energy=value, llc=est, n=n, seconds=time.perf_counter() - started, head=base.head_kind)


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
    def data_identity(base: BaseHead, job: ScoringJob) -> dict:
        """The corpus (name and revision) and the masked-LM head every model is scored under."""
        return {"corpus": [base.corpus.name, base.corpus.revision],
                "head": {"from": f"{job.base_id}@{job.base_revision}", "kind": base.head_kind}}

    def score(self, job: ScoringJob, ctx: ScoringContext) -> list[Score]:
        base = BaseHead(job.base_dir, job.base_revision, self.cfg, local_root=self.local_root,
                        cache_dir=ctx.cache_dir, device=ctx.device)
        proto = self.protocol(self.data_identity(base, job))
        cfg_json, cfg_hash = proto.json, proto.hash
        models = [(job.repo_id, job.revision, job.model_dir)]
        if job.repo_id != job.base_id and not ctx.has_score(job.base_id, job.base_revision, self.name, "free_energy",
                                                            base.corpus.name, self.cfg.sgld.seed, cfg_hash):
            models.append((job.base_id, job.base_revision, job.base_dir))
        scores: list[Score] = []
        for repo_id, revision, model_dir in models:
            result = free_energy(model_dir, base, self.cfg, device=ctx.device)
            est = result.llc
            if ctx.verbose:
                print(f"{repo_id}: F = {result.free_energy:.2f}, λ̂ = {est.mean:.2f} ± {est.std:.2f} "
                      f"(chains {', '.join(f'{c:.2f}' for c in est.per_chain)}), L_n(w*) = {est.init_loss:.4f}, "
                      f"{result.seconds:.0f}s" + "".join(f"\n  warning: {d}" for d in est.diagnostics))
            extra = FreeEnergyRun(per_chain=tuple(est.per_chain), nbeta=est.nbeta, n=result.n,
                                  num_chains=len(est.per_chain), num_draws=self.cfg.sgld.num_draws,
                                  diagnostics=tuple(est.diagnostics),
                                  trace=tuple(map(tuple, trace_summary(est.loss_traces))), head=result.head,
                                  corpus=base.corpus.name).to_json()
            for metric, value in (("free_energy", result.free_energy), ("llc_mean", est.mean),
                                  ("llc_std", est.std), ("init_loss", est.init_loss)):
                scores.append(Score(
                    repo_id=repo_id, revision=revision, scorer=self.name, metric=metric, target=base.corpus.name,
                    seed=self.cfg.sgld.seed, value=value, config_hash=cfg_hash, config_json=cfg_json,
                    duration_s=result.seconds, base_id=job.base_id, extra=extra))
        return check_finite(scores, f"free energy of {job.repo_id}")


@dataclass(frozen=True, slots=True)
class SweepRow:
    epsilon: float
    gamma: float
    llc: float
    llc_std: float
    drift: float  # mean loss of the last quarter of draws minus the second quarter, relative to the rise
    diagnostics: tuple[str, ...]

    @property
    def stable(self) -> bool:
        """Flat traces: no diagnostics, and the loss moved by < 10% of its rise over the second half."""
        return not self.diagnostics and abs(self.drift) < 0.1


def calibration_sweep(model_dir: Path, base: BaseHead, cfg: FreeEnergyConfig, epsilons: list[float],
                      gammas: list[float], *, device: str = "cpu") -> list[SweepRow]:
    """λ̂ and trace drift for each (ε, γ): pick the largest ε whose traces are stable and whose λ̂ no longer
    moves with γ (README, "Calibrating SGLD"). Divergent settings come back with an infinite λ̂."""
    rows = []
    for eps in epsilons:
        for gamma in gammas:
            run = replace(cfg, sgld=replace(cfg.sgld, epsilon=eps, gamma=gamma))
            try:
                est = free_energy(model_dir, base, run, device=device).llc
            except ScoringError as e:
                rows.append(SweepRow(eps, gamma, math.inf, math.inf, math.inf, (str(e),)))
                continue
            quarters = est.loss_traces.mean(dim=0).tensor_split(4)
            rise = float(est.loss_traces.mean()) - est.init_loss
            drift = (float(quarters[3].mean()) - float(quarters[1].mean())) / max(abs(rise), 1e-12)
            rows.append(SweepRow(eps, gamma, est.mean, est.std, drift, est.diagnostics))
    return rows
