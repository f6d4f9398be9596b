"""FreeEnergyScorer: downstream free energy F = n·L_n(w*) + λ̂·log n under the masked-LM loss (Munn & Wei 2025).

For each checkpoint and replicate (scoring/mlm.py: split A for the head, split B for L_n and SGLD): the frozen
encoder's states on both splits are computed once; the masked-LM head starts as the corpus's unigram model and is
fitted on split A to convergence (scoring/mlm_head.py); then the sampled weights (by default the encoder's last
layer on cached lower-layer states: scoring/llc_block.py; or every encoder weight) are optionally re-centred on
split A, and λ̂ comes from localized SGLD over them (scoring/llc.py, nβ = n / log n, n the windows of split B),
its chains spread over worker processes. The base's first replicate is also sampled at ε/2 for twice the steps.
Every check of scoring/llc_gate.py is stored with the estimate; one that fails any is "unconverged".
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch import Tensor, nn
from transformers import AutoModelForMaskedLM

from data.errors import ScoringError
from data.payloads import FreeEnergyRun
from data.records import Score
from scoring.base import RegisteredScorer, ScoringContext, ScoringJob, check_finite
from scoring.config import FreeEnergyConfig, SGLDConfig
from scoring.llc import LLCEstimate
from scoring.llc_block import BlockLoss, encoder_layers, lower_states, pick
from scoring.llc_gate import Checks, gate_failures
from scoring.llc_pool import sample_chains
from scoring.mlm import (
    BackboneWithHead,
    FixedHead,
    Reference,
    detach_head,
    head_on,
    head_tensors,
    load_pretrained,
    mlm_loss,
    pack,
    untie_decoder,
)
from scoring.mlm_head import HeadFit, decoder_bias, fit_head, start_as_unigram

logger = logging.getLogger(__name__)

TRACE_POINTS = 20  # loss-trace summary kept per chain for the model page
CHUNK = 64  # sequences per gradient / loss chunk
HEAD_SEED_OF_FIT = 0  # the head's initialisation and minibatches, and the re-centring's: the same for every model


@dataclass(frozen=True, slots=True)
class FreeEnergy:
    free_energy: float
    llc: LLCEstimate
    n: int
    seconds: float
    grad_norm: float  # ‖∇L_n(w*)‖ over the sampled weights, at the sampled w*
    failures: tuple[str, ...]  # the gate's reasons (scoring/llc_gate.py); empty: the estimate counts
    checks: Checks | None = None
    head: HeadFit | None = None
    checkpoint_grad_norm: float | None = None  # at the checkpoint itself (differs from grad_norm when re-centred)
    halving: LLCEstimate | None = None
    stage_seconds: dict[str, float] = field(default_factory=dict)


@dataclass(slots=True)
class ScoredModel:
    """What SGLD samples (a module whose parameters are the sampled weights) and its data on split B."""

    model: nn.Module
    data: tuple[Tensor, Tensor]  # (inputs, targets) of split B, as the module takes them
    train: tuple[nn.Module, tuple[Tensor, Tensor]]  # the same weights over split A (for the re-centring)
    head: HeadFit | None


def scored_model(model_dir: Path, revision: str, ref: Reference, cfg: FreeEnergyConfig, *,
                 cache_dir: Path | None = None, device: str = "cpu") -> BackboneWithHead:
    """The checkpoint's whole encoder (eval mode) with its own fitted head: the "encoder" mode's model."""
    return prepare(model_dir, revision, ref, replace(cfg, sampled="encoder"), cache_dir=cache_dir,
                   device=device).model


def prepare(model_dir: Path, revision: str, ref: Reference, cfg: FreeEnergyConfig, *, cache_dir: Path | None,
            device: str) -> ScoredModel:
    """Load the checkpoint, fit its head on split A and build the sampled module over split B (and over A)."""
    with torch.random.fork_rng(devices=[]):
        mlm = load_pretrained(AutoModelForMaskedLM, model_dir)
    vocab = mlm.get_input_embeddings().weight.shape[0]
    if vocab != ref.vocab_size:
        raise ScoringError(f"{model_dir}: vocabulary of {vocab} tokens, but the base's has {ref.vocab_size}")
    encoder, head, given = detach_head(mlm.to(device).eval())
    a, b = ref.head_split, ref.sample_split
    a_in, a_out = lower_states(encoder, a.input_ids.to(device))
    fit = prepared_head(encoder, head, given, pick(a_out, a.positions.to(device)), ref, cfg, revision, cache_dir,
                        std=getattr(mlm.config, "initializer_range", 0.02))
    untie_decoder(encoder, head)
    for param in [*head.parameters(), *encoder.parameters()]:
        param.requires_grad_(False)  # the head is a constant; only the sampled weights move
    if cfg.sampled == "encoder":
        for param in encoder.parameters():
            param.requires_grad_(True)
        model = BackboneWithHead(encoder, head, given, cfg.seq_len)
        return ScoredModel(model, (pack(b), b.targets), (model, (pack(a), a.targets)), fit)
    layer = encoder_layers(encoder)[-1]
    for param in layer.parameters():
        param.requires_grad_(True)
    b_in, _ = lower_states(encoder, b.input_ids.to(device))
    fixed = FixedHead(head, given)
    on_b, on_a = BlockLoss(layer, fixed, b_in, b.positions.to(device)), BlockLoss(layer, fixed, a_in,
                                                                                 a.positions.to(device))
    return ScoredModel(on_b, (torch.arange(len(b)), b.targets), (on_a, (torch.arange(len(a)), a.targets)), fit)


def prepared_head(encoder: nn.Module, head: nn.Module, given, features: Tensor, ref: Reference,
                  cfg: FreeEnergyConfig, revision: str, cache_dir: Path | None, *, std: float) -> HeadFit:
    """Start the head as the unigram model and fit it on split A's features (or load the fit from the cache)."""
    names = head_tensors(encoder, head)
    settings = [revision, ref.head_split.revision, cfg.head_lr, cfg.head_tol, cfg.head_check_every,
                cfg.head_max_steps, cfg.head_fit_bias, names, "unigram-start-v1"]
    key = hashlib.sha256(json.dumps(settings).encode()).hexdigest()[:16]
    path = Path(cache_dir) / "free_energy_heads" / f"{key}.safetensors" if cache_dir else None
    if path is not None and path.exists():
        stored = load_file(path)
        meta = json.loads(path.with_suffix(".json").read_text())
        head.load_state_dict(stored, strict=False)
        return HeadFit(**meta)
    start_as_unigram(head, names, ref.unigram, seed=HEAD_SEED_OF_FIT, std=std)
    params = dict(head.named_parameters())
    bias = decoder_bias(head)
    trained = [params[n] for n in names if cfg.head_fit_bias or params[n] is not bias]
    for param in head.parameters():
        param.requires_grad_(False)
    for param in trained:
        param.requires_grad_(True)
    fit = fit_head(lambda f: head_on(head, given, f), trained, features, ref.head_split.targets.to(features.device),
                   lr=cfg.head_lr, max_steps=cfg.head_max_steps, tol=cfg.head_tol,
                   check_every=cfg.head_check_every, seed=HEAD_SEED_OF_FIT)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        state = head.state_dict()
        save_file({k: state[k].detach().cpu().clone() for k in names}, path)
        path.with_suffix(".json").write_text(json.dumps({"steps": fit.steps, "converged": fit.converged,
                                                         "loss": fit.loss, "start_loss": fit.start_loss}))
    return fit


def mean_loss(model: nn.Module, data: tuple[Tensor, Tensor]) -> float:
    """L_n: the loss over every row of ``data``."""
    x, y = data
    with torch.no_grad():
        return float(sum(mlm_loss(model(xs), ys) * len(xs) for xs, ys in zip(x.split(CHUNK), y.split(CHUNK),
                                                                               strict=True)) / len(x))


def gradient_norm(model: nn.Module, data: tuple[Tensor, Tensor]) -> float:
    """‖∇L_n‖ over the model's trainable parameters, L_n the mean loss over every row of ``data``."""
    params = [p for p in model.parameters() if p.requires_grad]
    total = [torch.zeros_like(p) for p in params]
    x, y = data
    for xs, ys in zip(x.split(CHUNK), y.split(CHUNK), strict=True):
        grads = torch.autograd.grad(mlm_loss(model(xs), ys) * (len(xs) / len(x)), params)
        for acc, g in zip(total, grads, strict=True):
            acc.add_(g)
    return float(torch.sqrt(sum(g.double().pow(2).sum() for g in total)))


def recentre(model: nn.Module, data: tuple[Tensor, Tensor], cfg: FreeEnergyConfig) -> float:
    """``cfg.recentre_steps`` Adam steps of the sampled weights on split A (minibatches of CHUNK rows, seeded);
    the weights move in place. Returns how far they moved."""
    params = [p for p in model.parameters() if p.requires_grad]
    anchor = [p.detach().clone() for p in params]
    opt = torch.optim.Adam(params, lr=cfg.recentre_lr)
    x, y = data
    gen = torch.Generator().manual_seed(HEAD_SEED_OF_FIT + 1)
    for _ in range(cfg.recentre_steps):
        idx = torch.randint(len(x), (min(CHUNK, len(x)),), generator=gen)
        loss = mlm_loss(model(x[idx]), y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    return float(sum((p.detach() - a).pow(2).sum() for p, a in zip(params, anchor, strict=True)).sqrt())


def free_energy(model_dir: Path, revision: str, ref: Reference, cfg: FreeEnergyConfig, *,
                cache_dir: Path | None = None, device: str = "cpu", workers: int = 1,
                halving: bool = False) -> FreeEnergy:
    """F, λ̂, L_n(w*), ‖∇L_n(w*)‖ and the gate's verdict for the checkpoint in ``model_dir``, on split B."""
    clock = _Clock()
    scored = prepare(model_dir, revision, ref, cfg, cache_dir=cache_dir, device=device)
    clock.lap("features and head")
    n = len(scored.data[0])
    checkpoint_grad = grad_norm = gradient_norm(scored.model, scored.data)
    if cfg.recentre_steps:
        moved = recentre(*scored.train, cfg)
        grad_norm = gradient_norm(scored.model, scored.data)
        logger.info("re-centred the sampled weights: %d steps moved them %.3g", cfg.recentre_steps, moved)
        clock.lap("re-centring")
    sgld = replace(cfg.sgld, init_loss_batches=math.ceil(n / cfg.sgld.batch_size))  # L_n(w*) over all n
    est = sample(scored, sgld, n, device=device, workers=workers)
    clock.lap("sampling")
    halved = None
    if halving:
        halved = sample(scored, halved_config(sgld), n, device=device, workers=workers)
        clock.lap("ε-halving")
    checks = Checks.of(est, sgld, grad_norm=grad_norm, halving=halved)
    failures = gate_failures(est, cfg.gate, checks) + head_failures(scored.head, est.init_loss, ref.unigram_ce,
                                                                          margin=cfg.head_tol)
    value = n * est.init_loss + est.mean * math.log(n)
    return FreeEnergy(free_energy=value, llc=est, n=n, seconds=clock.total(), grad_norm=grad_norm,
                      failures=failures, checks=checks, head=scored.head, checkpoint_grad_norm=checkpoint_grad,
                      halving=halved, stage_seconds=clock.laps)


def halved_config(sgld: SGLDConfig) -> SGLDConfig:
    """ε/2 for twice the burn-in and draws: the same simulated time, half the discretisation error."""
    return replace(sgld, epsilon=sgld.epsilon / 2, num_burnin=2 * sgld.num_burnin, num_draws=2 * sgld.num_draws,
                   mala_every=2 * sgld.mala_every if sgld.mala_every else 0)


def sample(scored: ScoredModel, sgld: SGLDConfig, n: int, *, device: str, workers: int) -> LLCEstimate:
    return sample_chains(scored.model, scored.data, mlm_loss, sgld, n=n, device=device, workers=workers)


def head_failures(fit: HeadFit | None, init_loss: float, unigram_ce: float, *, margin: float) -> tuple[str, ...]:
    """The head's checks: converged, and L_n(w*) below the unigram cross-entropy by more than ``margin`` nats."""
    reasons = []
    if fit is not None and not fit.converged:
        reasons.append(f"the head did not converge in {fit.steps} steps")
    if not init_loss < unigram_ce - margin:
        reasons.append(f"L_n(w*) = {init_loss:.3f} is not below the corpus's unigram cross-entropy {unigram_ce:.3f}: "
                       "the model predicts masked tokens no better than their frequencies")
    return tuple(reasons)


class _Clock:
    def __init__(self):
        self.start = self.last = time.perf_counter()
        self.laps: dict[str, float] = {}

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.laps[name] = round(now - self.last, 2)
        self.last = now

    def total(self) -> float:
        return time.perf_counter() - self.start


def weight_distance(model_dir: Path, base_dir: Path) -> float:
    """‖w − w_base‖ over the encoder weights both checkpoints have (same names after the model's prefix)."""
    def encoder_weights(path: Path) -> dict[str, Tensor]:
        with torch.random.fork_rng(devices=[]):
            mlm = load_pretrained(AutoModelForMaskedLM, path)
        return {k: v.detach() for k, v in getattr(mlm, mlm.base_model_prefix).named_parameters()}

    mine, base = encoder_weights(model_dir), encoder_weights(base_dir)
    shared = [k for k in mine if k in base and mine[k].shape == base[k].shape]
    if not shared:
        raise ScoringError(f"{model_dir}: no encoder weight in common with the base")
    return float(torch.sqrt(sum((mine[k].double() - base[k].double()).pow(2).sum() for k in shared)))


def trace_summary(traces: Tensor, points: int = TRACE_POINTS) -> list[list[float]]:
    """Each chain's loss trace as the means of ``points`` equal windows (fewer for short traces)."""
    windows = max(1, min(points, traces.shape[1]))
    cut = traces[:, : traces.shape[1] // windows * windows]
    return [[round(float(v), 5) for v in row] for row in cut.reshape(len(cut), windows, -1).mean(dim=2)]


class FreeEnergyScorer(RegisteredScorer, name="free_energy", config_type=FreeEnergyConfig,
                       settings_fields=("reference_corpus",)):
    @classmethod
    def config_for(cls, settings, options=None) -> FreeEnergyConfig:
        return FreeEnergyConfig(corpus=settings.reference_corpus)

    @staticmethod
    def data_identity(ref: Reference) -> dict:
        """The corpus (name and split A's revision: every replicate's split B follows from it and the config) and
        how every head is made."""
        return {"corpus": [ref.name, ref.head_split.revision],
                "head": {"kind": "per model: starts as the corpus's unigram model, fitted on split A"}}

    def score(self, job: ScoringJob, ctx: ScoringContext) -> list[Score]:
        refs = [Reference(job.base_dir, replace(self.cfg, seed=r), local_root=self.local_root)
                for r in range(self.cfg.replicates)]
        proto = self.protocol(self.data_identity(refs[0]))
        models = [(job.repo_id, job.revision, job.model_dir)]
        if job.repo_id != job.base_id and not ctx.has_score(job.base_id, job.base_revision, self.name, "free_energy",
                                                            refs[0].name, 0, proto.hash):
            models.append((job.base_id, job.base_revision, job.base_dir))
        scores: list[Score] = []
        for repo_id, revision, model_dir in models:
            distance = 0.0 if repo_id == job.base_id else weight_distance(model_dir, job.base_dir)
            for r, ref in enumerate(refs):
                cfg = replace(self.cfg, seed=r, sgld=replace(self.cfg.sgld, seed=1000 * r))
                result = free_energy(model_dir, revision, ref, cfg, cache_dir=ctx.cache_dir, device=ctx.device,
                                     workers=ctx.run_workers,
                                     halving=cfg.halving_check and r == 0 and repo_id == job.base_id)
                if ctx.verbose:
                    print(summary_line(f"{repo_id} (replicate {r})", result))
                extra = run_payload(result, cfg, ref, distance).to_json()
                status = "unconverged" if result.failures else "ok"
                for metric, value in (("free_energy", result.free_energy), ("llc_mean", result.llc.mean),
                                      ("llc_std", result.llc.std), ("init_loss", result.llc.init_loss),
                                      ("weight_distance", distance)):
                    scores.append(Score(
                        repo_id=repo_id, revision=revision, scorer=self.name, metric=metric, target=ref.name,
                        seed=r, value=value, config_hash=proto.hash, config_json=proto.json,
                        duration_s=result.seconds, base_id=job.base_id, extra=extra, status=status))
        return check_finite(scores, f"free energy of {job.repo_id}")


def summary_line(repo_id: str, result: FreeEnergy) -> str:
    est = result.llc
    verdict = "converged" if not result.failures else "UNCONVERGED: " + "; ".join(result.failures)
    se = result.checks.mc_se if result.checks else math.nan
    return (f"{repo_id}: F = {result.free_energy:.2f}, λ̂ = {est.mean:.2f} ± {se:.2f} (chains "
            f"{', '.join(f'{c:.2f}' for c in est.per_chain)}), L_n(w*) = {est.init_loss:.4f}, ‖∇L_n‖ = "
            f"{result.grad_norm:.3g}, MALA {est.acceptance if est.acceptance is not None else math.nan:.2f}, "
            f"R-hat {est.r_hat:.3f}, {result.seconds:.0f}s {result.stage_seconds}; {verdict}")


def run_payload(result: FreeEnergy, cfg: FreeEnergyConfig, ref: Reference, distance: float | None = None
                ) -> FreeEnergyRun:
    est, c, head = result.llc, result.checks, result.head
    return FreeEnergyRun(
        per_chain=tuple(est.per_chain), nbeta=est.nbeta, n=result.n, num_chains=len(est.per_chain),
        num_draws=cfg.sgld.num_draws, diagnostics=tuple(est.diagnostics),
        trace=tuple(map(tuple, trace_summary(est.loss_traces))), head="unigram start, fitted on split A",
        corpus=ref.name, grad_norm=result.grad_norm, drift=est.drift, r_hat=est.r_hat, acceptance=est.acceptance,
        gate=result.failures, sampled=cfg.sampled, head_steps=head.steps if head else None,
        head_converged=head.converged if head else None, head_loss=head.loss if head else None,
        unigram_ce=ref.unigram_ce, checkpoint_grad_norm=result.checkpoint_grad_norm,
        critical_ratio=c.critical_term / est.mean if c and est.mean > 0 else None,
        recentre_steps=cfg.recentre_steps, mc_se=c.mc_se if c else None, half_gap=c.half_gap if c else None,
        burnin_relaxations=c.burnin_relaxations if c else None, halving_llc=c.halving_llc if c else None,
        halving_gap=c.halving_gap if c else None, weight_distance=distance, seconds=result.stage_seconds)
