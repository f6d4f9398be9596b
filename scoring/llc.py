"""The local learning coefficient (LLC) by localized SGLD around a parameter w*, with all chains vmapped.

Each chain runs ``w <- w + (eps/2) * (-(nbeta/B) * sum_batch grad l_i - gamma * (w - w*)) + N(0, eps)`` from w*,
and ``lambda_hat = nbeta * (E_posterior[L_n(w)] - L_n(w*))`` with ``nbeta = n / log n`` by default (REFERENCE
sections 2 and 3). With ``cfg.preconditioner == "rmsprop"`` the drift and the noise's variance are both multiplied
by RMSProp's diagonal G = 1 / (sqrt(V) + eps), V the running mean of the squared minibatch gradient of nbeta * L
(pSGLD, Li et al. 2016, without its correction term). ``loss_fn(output, target)`` must return the *mean* loss over
the batch. Burn-in steps are excluded from the average and from the MALA acceptance probes; L_n(w*) is averaged
over ``cfg.init_loss_batches`` batches. From tensors each chain draws its minibatches with replacement (unbiased
for L_n(w)); a DataLoader is cycled, one iterator per chain. With ``cfg.control_variate`` (tensor data, minibatches)
every row's loss at w* is computed once, L_n(w*) is their mean, and the trace holds L_B(w_t) − L_B(w*) + L_n(w*):
the batch B is drawn independently of w_t, so its expectation is still L_n(w_t), but the spread of which rows a
batch holds (shared by w_t and w*) cancels. ``estimate_llc`` stacks the chains with
``torch.func`` and keeps every trace on the device, checking for NaN once per chunk of steps;
``estimate_llc_loop`` is the same math in a plain per-chain loop (reference for tests and benchmarks). With the
same seed and tensor data both draw the same minibatches and noise, so they agree up to floating-point error,
with or without the preconditioner.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torch.func import functional_call, stack_module_state, vmap
from torch.utils.data import DataLoader

from data.errors import ScoringError
from scoring.config import SGLDConfig

logger = logging.getLogger(__name__)

Data = DataLoader | tuple[Tensor, Tensor]
LossFn = Callable[[Tensor, Tensor], Tensor]


@dataclass(frozen=True, slots=True, kw_only=True)
class LLCEstimate:
    """Our record of one LLC estimate; nothing outside this module sees a sampler's internals."""

    mean: float
    std: float  # across chains (0 with one chain)
    per_chain: tuple[float, ...]
    init_loss: float  # L_n(w*), averaged over init_loss_batches batches
    nbeta: float
    loss_traces: Tensor  # (chains, draws) minibatch losses after burn-in, on CPU
    diagnostics: tuple[str, ...] = ()
    drift: float = 0.0  # (last quarter - second quarter of the mean trace) / its rise over L_n(w*): ~0 when stationary
    r_hat: float = math.nan  # split R-hat of the draws' losses across chains (Gelman et al.): ~1 when mixed
    acceptance: float | None = None  # mean MALA acceptance of the probed kept steps (None: no noise or no probes)


def rrr_learning_coefficient(M: int, H: int, N: int, r: int) -> float:  # noqa: N803 (the paper's names)
    """Learning coefficient of reduced-rank regression (Aoyagi & Watanabe 2005): inputs N, outputs M,
    inner rank H, true rank r."""
    if N + r > M + H:
        return (H * M - H * r + N * r) / 2
    if M + r > N + H:
        return (H * N - H * r + M * r) / 2
    if H + r > M + N:
        return M * N / 2
    return (2 * (H + r) * (M + N) - (M - N) ** 2 - (H + r) ** 2 + (M + H + N + r) % 2) / 8


def dln_learning_coefficient(widths: Sequence[int], rank: int) -> float:
    """Learning coefficient of a deep linear network x -> W_L ... W_1 x at a true map of rank ``rank``
    (Aoyagi 2024, "Consideration on the learning efficiency of multiple-layered neural networks with linear
    units"; the form used by Lau et al., arXiv 2308.12108). ``widths`` = (input, hidden..., output).

    With M_j = H_j - r sorted ascending, take the smallest prefix S of l + 1 values with max(S) < min(rest),
    sum(S) >= l * max(S) and sum(S) < l * min(rest); with M = ceil(sum(S) / l) and a = sum(S) - (M - 1) l:
    lambda = (r (H_0 + H_L) - r^2) / 2 + a (l - a) / (4 l) - l (l - 1) / 4 * (sum(S) / l)^2
             + 1/2 * sum_{i<j in S} M_i M_j.
    Two layers give back reduced-rank regression (``rrr_learning_coefficient``).
    """
    if len(widths) < 2 or min(widths) < 1:
        raise ValueError(f"a deep linear network needs at least an input and an output width >= 1, got {widths}")
    if not 0 <= rank <= min(widths):
        raise ValueError(f"the true rank must be between 0 and the narrowest width {min(widths)}, got {rank}")
    m = sorted(h - rank for h in widths)
    for k in range(2, len(m) + 1):
        subset, rest = m[:k], m[k:]
        ell, total = k - 1, sum(subset)
        if rest and (subset[-1] >= rest[0] or total >= ell * rest[0]):
            continue
        if total < ell * subset[-1]:
            continue
        a = total - (math.ceil(total / ell) - 1) * ell
        pairs = sum(subset[i] * subset[j] for i in range(k) for j in range(i + 1, k))
        return ((rank * (widths[0] + widths[-1]) - rank**2) / 2 + a * (ell - a) / (4 * ell)
                - ell * (ell - 1) / 4 * (total / ell) ** 2 + pairs / 2)
    raise AssertionError(f"no admissible subset for widths {widths}, rank {rank}")  # the theorem says one exists


def _chunk_steps(cfg: SGLDConfig, dim: int, chunk: int) -> int:
    """Steps of batch indices and noise drawn at once: ``chunk``, fewer if the noise would pass 2**26 floats."""
    return max(1, min(chunk, 2**26 // (cfg.num_chains * dim)))


def _check_finite(traces: Tensor, cfg: SGLDConfig, chain0: int = 0, step0: int = 0) -> None:
    """Raise ScoringError naming the first chain and step (burn-in included) whose loss is NaN or infinite;
    ``traces`` is the block starting at chain ``chain0`` and step ``step0``."""
    bad = ~torch.isfinite(traces)
    if bad.any():
        chain, step = (int(i) for i in bad.nonzero()[0])
        chain, step = chain + chain0, step + step0
        raise ScoringError(f"SGLD diverged: chain {chain} has a non-finite loss at step {step} "
                           f"(epsilon={cfg.epsilon}; try a smaller step size)")


def _chunk(gens: list[torch.Generator], steps: int, n: int | None, cfg: SGLDConfig, dim: int
           ) -> tuple[Tensor | None, Tensor | None]:
    """Minibatch indices (chains, steps, B), drawn with replacement, and N(0, eps) noise (chains, steps, dim)
    for the next ``steps`` steps, each chain from its own generator (so the loop and vmap draw alike).
    Indices are None for a DataLoader or a full batch (batch_size >= n), noise is None when cfg.noise is off."""
    idx = noise = None
    if n is not None and cfg.batch_size < n:
        idx = torch.stack([torch.randint(n, (steps, cfg.batch_size), generator=g, device=g.device) for g in gens])
    if cfg.noise:
        noise = torch.stack([torch.randn(steps, dim, generator=g, device=g.device) for g in gens])
        noise.mul_(math.sqrt(cfg.epsilon))
    return idx, noise


class _Loader:
    """Cycles a DataLoader forever, moving each (inputs, targets) batch to the device."""

    def __init__(self, loader: DataLoader, device: str | torch.device):
        self.loader, self.device, self._it = loader, device, iter(loader)

    def __call__(self) -> tuple[Tensor, Tensor]:
        for _ in range(2):
            try:
                x, y = next(self._it)
                return x.to(self.device), y.to(self.device)
            except StopIteration:
                self._it = iter(self.loader)
        raise ScoringError("the data loader yields no batches")


def _setup(model: nn.Module, data: Data, loss_fn: LossFn, cfg: SGLDConfig, n: int, device) -> tuple:
    """Tensors on the device (or per-chain loaders), generators, w*, buffers, nbeta, L_n(w*) and, with the
    control variate, every row's loss at w* (else None).

    For tensors L_n(w*) is the mean over ``init_loss_batches`` consecutive batches of one seeded permutation
    (the whole data set once they cover it), or with the control variate the mean of every row's loss; for a
    loader, over its next ``init_loss_batches`` batches."""
    gens = [torch.Generator(device=device).manual_seed(cfg.seed + c) for c in range(cfg.num_chains)]
    w_star = {k: p.detach().to(device) for k, p in model.named_parameters()}
    buffers = {k: b.detach().to(device) for k, b in model.named_buffers()}
    if n < 2:
        raise ValueError(f"n is the training set size and must be at least 2, got {n}")
    nbeta = cfg.nbeta if cfg.nbeta is not None else n / math.log(n)

    def loss_at_w_star(x: Tensor, y: Tensor) -> Tensor:
        return loss_fn(functional_call(model, (w_star, buffers), (x,)), y) * len(x)

    row_losses = None
    with torch.no_grad():
        if isinstance(data, tuple) and cfg.control_variate and cfg.batch_size < len(data[0]):
            data = (data[0].to(device), data[1].to(device))
            row_losses = torch.stack([loss_at_w_star(data[0][i:i + 1], data[1][i:i + 1]) for i in range(len(data[0]))])
            init_loss, sources = float(row_losses.double().mean()), data
        elif isinstance(data, tuple):
            data = (data[0].to(device), data[1].to(device))
            perm = torch.randperm(len(data[0]), generator=torch.Generator().manual_seed(cfg.seed + cfg.num_chains))
            perm = perm[: cfg.batch_size * cfg.init_loss_batches].to(device)
            total = sum(loss_at_w_star(data[0][i], data[1][i]) for i in perm.split(cfg.batch_size))
            init_loss, sources = float(total) / len(perm), data
        else:
            init_loader = _Loader(data, device)
            pairs = [init_loader() for _ in range(cfg.init_loss_batches)]
            init_loss = float(sum(loss_at_w_star(x, y) for x, y in pairs)) / sum(len(x) for x, _ in pairs)
            sources = [_Loader(data, device) for _ in range(cfg.num_chains)]
    return sources, gens, w_star, buffers, nbeta, init_loss, row_losses


def _traced(losses: Tensor, idx: Tensor | None, row_losses: Tensor | None, init_loss: float) -> Tensor:
    """What the trace keeps of a step's minibatch losses (one per chain, rows ``idx`` (chains, B)): the losses
    themselves, or with the control variate L_B(w_t) − L_B(w*) + L_n(w*)."""
    if row_losses is None or idx is None:
        return losses
    return losses - row_losses[idx].mean(dim=-1) + init_loss


def _finish(traces: Tensor, init_loss: float, nbeta: float, cfg: SGLDConfig,
            accept: Tensor | None = None) -> LLCEstimate:
    """One host transfer: check every value, drop burn-in, and summarise per chain. ``accept`` (chains, probes):
    the MALA acceptance probability of the probed transitions (kept steps only)."""
    traces = traces.detach().cpu()
    _check_finite(traces, cfg)
    acceptance = float(accept.double().mean()) if accept is not None and accept.numel() else None
    return summarise(traces[:, cfg.num_burnin:], init_loss, nbeta, acceptance)


def summarise(draws: Tensor, init_loss: float, nbeta: float, acceptance: float | None) -> LLCEstimate:
    """The estimate from the chains' kept draws (chains, draws): λ̂ per chain, its mean and spread, diagnostics."""
    chain_means = draws.mean(dim=1)
    per_chain = tuple(float(nbeta * (m - init_loss)) for m in chain_means)
    mean_t = torch.tensor(per_chain, dtype=torch.float64)
    mean, std = float(mean_t.mean()), float(mean_t.std()) if len(per_chain) > 1 else 0.0
    diagnostics = [f"chain {c} went below the initial loss (mean draw loss {float(m):.6g} < L_n(w*) {init_loss:.6g})"
                   for c, m in enumerate(chain_means) if m < init_loss]
    if mean < 0:
        diagnostics.append(f"negative LLC ({mean:.3g}): w* is not a local minimum")
    for d in diagnostics:
        logger.warning("LLC: %s", d)
    logger.info("llc=%.3f±%.3f over %d chains (nbeta=%.1f, L_n(w*)=%.4g)", mean, std, len(per_chain), nbeta,
                init_loss)
    return LLCEstimate(mean=mean, std=std, per_chain=per_chain, init_loss=init_loss, nbeta=nbeta,
                       loss_traces=draws, diagnostics=tuple(diagnostics), drift=trace_drift(draws, init_loss),
                       r_hat=split_r_hat(draws), acceptance=acceptance)


def trace_drift(draws: Tensor, init_loss: float) -> float:
    """How far the chains' mean loss still moves after burn-in: (mean of the last quarter of draws - mean of the
    second quarter) / (mean draw loss - L_n(w*)). Near 0 for a stationary chain; 0 with fewer than 4 draws."""
    if draws.shape[1] < 4:
        return 0.0
    quarters = draws.double().mean(dim=0).tensor_split(4)
    rise = float(draws.double().mean()) - init_loss
    return (float(quarters[3].mean()) - float(quarters[1].mean())) / max(abs(rise), 1e-12)


def split_r_hat(draws: Tensor) -> float:
    """Split R-hat (Gelman et al., BDA3 section 11.4) of the draws' losses: each chain cut into halves, between-
    and within-sequence variances compared. ~1 when the chains sample one distribution; NaN below 4 draws."""
    half = draws.shape[1] // 2
    if half < 2:
        return math.nan
    seqs = torch.cat([draws[:, :half], draws[:, half:2 * half]]).double()
    within = float(seqs.var(dim=1).mean())
    between = half * float(seqs.mean(dim=1).var())
    if within <= 0:
        return math.nan if between > 0 else 1.0
    return math.sqrt(((half - 1) / half * within + between / half) / within)


def estimate_llc(model: nn.Module, loader_or_tensors: Data, loss_fn: LossFn, cfg: SGLDConfig, *, n: int,
                 device: str | torch.device = "cpu", chunk: int = 256) -> LLCEstimate:
    """LLC at the model's current parameters (w*), all chains advanced together by ``torch.vmap``.

    ``loader_or_tensors`` is an ``(inputs, targets)`` pair of tensors (each chain samples its own batches
    from it) or a DataLoader yielding such pairs of a fixed batch size; ``n`` is the training set size.
    Parameters live in one flat (chains, dim) tensor; batch indices and noise are drawn ``chunk`` steps at
    a time. Raises ScoringError naming the chain and step if a loss becomes NaN or infinite.
    """
    sources, gens, w_star, buffers, nbeta, init_loss, rows = _setup(model, loader_or_tensors, loss_fn, cfg, n,
                                                                     device)
    C, steps = cfg.num_chains, cfg.num_burnin + cfg.num_draws
    stacked, _ = stack_module_state([model] * C)
    flat = torch.cat([p.detach().to(device).reshape(C, -1) for p in stacked.values()], dim=1)
    flat_star = flat[0].clone()
    sizes = [p.numel() for p in w_star.values()]
    n_rows = len(sources[0]) if isinstance(sources, tuple) else None
    chunk = _chunk_steps(cfg, flat.shape[1], chunk)

    def batch_loss(p: dict[str, Tensor], x: Tensor, y: Tensor) -> Tensor:
        return loss_fn(functional_call(model, (p, buffers), (x,)), y)

    # vmap the forward only; the chains are independent, so autograd of the summed loss gives each its gradient
    losses_fn = vmap(batch_loss, in_dims=(0, 0, 0), randomness="different")
    traces = torch.empty(C, steps, device=device)
    mala = _Mala(nbeta, cfg) if cfg.noise and cfg.mala_every else None
    square_avg = torch.zeros_like(flat) if cfg.preconditioner == "rmsprop" else None

    def loss_and_grad(point: Tensor, x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
        point.requires_grad_(True)
        views = {k: part.view(C, *p.shape) for (k, p), part in zip(w_star.items(), point.split(sizes, 1), strict=True)}
        losses = losses_fn(views, x, y)
        (grad,) = torch.autograd.grad(losses.sum(), point)
        point.requires_grad_(False)
        return losses.detach(), grad

    for t in range(steps):
        if t % chunk == 0:
            # one host sync per chunk of steps, not per step
            _check_finite(traces[:, max(0, t - chunk):t], cfg, step0=max(0, t - chunk))
            idx, noise = _chunk(gens, min(chunk, steps - t), n_rows, cfg, flat.shape[1])
        if isinstance(sources, tuple):
            x, y = sources
            x, y = (x[idx[:, t % chunk]], y[idx[:, t % chunk]]) if idx is not None else (
                x.expand(C, *x.shape), y.expand(C, *y.shape))
        else:
            x, y = (torch.stack(z) for z in zip(*(s() for s in sources), strict=True))
        losses, grad = loss_and_grad(flat, x, y)
        with torch.no_grad():
            traces[:, t] = _traced(losses, None if idx is None else idx[:, t % chunk], rows, init_loss)
            offset = flat - flat_star
            scale = _rmsprop_scale(square_avg, grad, nbeta, cfg) if square_avg is not None else None
            drift = grad.mul_(-nbeta).sub_(offset, alpha=cfg.gamma)
            kick = _move(flat, drift, None if noise is None else noise[:, t % chunk], scale, cfg.epsilon)
            if mala is not None and mala.due(t):
                with torch.enable_grad():
                    next_losses, next_grad = loss_and_grad(flat.detach().clone(), x, y)
                mala.record(losses, offset, drift, kick, next_losses, flat - flat_star, next_grad, scale)
    return _finish(traces, init_loss, nbeta, cfg, mala.values() if mala else None)


def _rmsprop_scale(square_avg: Tensor, grad: Tensor, nbeta: float, cfg: SGLDConfig) -> Tensor:
    """RMSProp's preconditioner for this step: V <- alpha V + (1 - alpha) (nbeta g)^2 in place (g the minibatch
    gradient of L), then G = 1 / (sqrt(V) + eps)."""
    square_avg.mul_(cfg.rmsprop_alpha).addcmul_(grad, grad, value=(1 - cfg.rmsprop_alpha) * nbeta**2)
    return square_avg.sqrt().add_(cfg.rmsprop_eps).reciprocal_()


def _move(point: Tensor, drift: Tensor, noise: Tensor | None, scale: Tensor | None, epsilon: float) -> Tensor | None:
    """One SGLD move in place, point += (eps/2) G drift + sqrt(G) noise with noise ~ N(0, eps) and G = 1 without
    a preconditioner; returns the noise added (N(0, eps G)), or None without noise."""
    point.add_(drift if scale is None else drift * scale, alpha=epsilon / 2)
    if noise is not None and scale is not None:
        noise = noise * scale.sqrt()
    if noise is not None:
        point.add_(noise)
    return noise


class _Mala:
    """The Metropolis-adjusted Langevin acceptance probability of one SGLD transition in every ``mala_every``,
    never used to reject: a diagnostic of the step size (devinterp's MalaAcceptanceRate), probed on kept steps
    only (t >= num_burnin: a probe during the localization's relaxation measures the chain's age, not the step).
    The potential is U = nbeta * L_B(w) + gamma/2 * |w - w*|^2 on *one* minibatch B at both ends of the move (the
    step's own batch, evaluated again at the new point: between two batches the difference of losses is sampling
    noise that swamps the discretisation error), the drift d = -grad U, proposals Gaussian of covariance eps G
    (G = 1 plain; RMSProp's diagonal G frozen at the move, the same for the reverse proposal). For the move from w
    to w' = w + eps/2 G d + xi, log alpha = U(w) - U(w') + sum((xi^2 - (w - w' - eps/2 G d')^2) / G) / (2 eps),
    and that difference of squares over G is computed as -(eps/2) s.(2 xi + eps/2 G s) with s = d + d', free of
    cancellation (w - w' - eps/2 G d' = -(xi + eps/2 G s); the normalisers of the two Gaussians cancel, G being
    shared)."""

    def __init__(self, nbeta: float, cfg: SGLDConfig):
        self.nbeta, self.eps, self.gamma, self.every = nbeta, cfg.epsilon, cfg.gamma, cfg.mala_every
        self.start = cfg.num_burnin  # kept steps only
        self.probes: list[Tensor] = []

    def due(self, t: int) -> bool:
        return t >= self.start and (t - self.start) % self.every == 0

    def record(self, losses: Tensor, offset: Tensor, drift: Tensor, noise: Tensor, next_losses: Tensor,
               next_offset: Tensor, next_grad: Tensor, scale: Tensor | None = None) -> None:
        u = self.nbeta * losses.double() + self.gamma / 2 * offset.pow(2).sum(dim=1, dtype=torch.float64)
        u_next = self.nbeta * next_losses.double() + self.gamma / 2 * next_offset.pow(2).sum(dim=1,
                                                                                              dtype=torch.float64)
        s = drift + next_grad.mul_(-self.nbeta).sub_(next_offset, alpha=self.gamma)
        half = self.eps / 2 * s if scale is None else self.eps / 2 * scale * s
        squares = (s * (2 * noise + half)).sum(dim=1, dtype=torch.float64)
        self.probes.append((u - u_next - squares / 4).clamp(max=0).exp())

    def values(self) -> Tensor | None:
        return torch.stack(self.probes, dim=1) if self.probes else None


def estimate_llc_loop(model: nn.Module, loader_or_tensors: Data, loss_fn: LossFn, cfg: SGLDConfig, *, n: int,
                      device: str | torch.device = "cpu", chunk: int = 256) -> LLCEstimate:
    """Same estimate as ``estimate_llc``, one chain after another with autograd (reference implementation).
    With tensor data and the same ``chunk`` it draws exactly the batches and noise that ``estimate_llc`` does."""
    sources, gens, w_star, buffers, nbeta, init_loss, rows = _setup(model, loader_or_tensors, loss_fn, cfg, n,
                                                                     device)
    steps = cfg.num_burnin + cfg.num_draws
    traces = torch.empty(cfg.num_chains, steps, device=device)
    dim = sum(p.numel() for p in w_star.values())
    chunk = _chunk_steps(cfg, dim, chunk)
    probes: list[list[float]] = [[] for _ in range(cfg.num_chains)]
    every = cfg.mala_every if cfg.noise else 0
    for c in range(cfg.num_chains):
        params = {k: p.clone().requires_grad_(True) for k, p in w_star.items()}
        square_avg = {k: torch.zeros_like(p) for k, p in w_star.items()} if cfg.preconditioner == "rmsprop" else None
        for t in range(steps):
            if t % chunk == 0:
                _check_finite(traces[c:c + 1, max(0, t - chunk):t], cfg, chain0=c, step0=max(0, t - chunk))
                idx, noise = _chunk([gens[c]], min(chunk, steps - t), len(sources[0]) if isinstance(
                    sources, tuple) else None, cfg, dim)
            if isinstance(sources, tuple):
                x, y = sources if idx is None else (sources[0][idx[0, t % chunk]], sources[1][idx[0, t % chunk]])
            else:
                x, y = sources[c]()
            loss = loss_fn(functional_call(model, (params, buffers), (x,)), y)
            grads = torch.autograd.grad(loss, list(params.values()))
            traces[c, t] = _traced(loss.detach()[None], None if idx is None else idx[:, t % chunk], rows,
                                   init_loss)[0]
            probe = every and t >= cfg.num_burnin and (t - cfg.num_burnin) % every == 0
            before = {k: p.detach().clone() for k, p in params.items()} if probe else None
            with torch.no_grad():
                scale = _loop_move(params, grads, w_star, None if noise is None else noise[0, t % chunk], square_avg,
                                   nbeta, cfg)
            if probe:
                probes[c].append(_mala_direct(model, buffers, loss_fn, x, y, before, params, w_star, nbeta, cfg,
                                              scale))
    accept = torch.tensor(probes, dtype=torch.float64) if every and probes[0] else None
    return _finish(traces, init_loss, nbeta, cfg, accept)


def _loop_move(params: dict, grads: Sequence[Tensor], w_star: dict, noise: Tensor | None, square_avg: dict | None,
               nbeta: float, cfg: SGLDConfig) -> Tensor | None:
    """The loop's move of one chain, parameter by parameter, in place (``noise``: the step's flat N(0, eps) draw);
    returns RMSProp's G of the move, flat (None for plain SGLD)."""
    parts = noise.split([p.numel() for p in params.values()]) if noise is not None else [None] * len(params)
    scales = []
    for (k, p), g, part in zip(params.items(), grads, parts, strict=True):
        scale = _rmsprop_scale(square_avg[k], g, nbeta, cfg) if square_avg is not None else None
        _move(p, -nbeta * g - cfg.gamma * (p - w_star[k]), None if part is None else part.view(p.shape), scale,
              cfg.epsilon)
        scales.append(scale)
    return torch.cat([s.flatten() for s in scales]) if square_avg is not None else None


def _mala_direct(model, buffers, loss_fn, x, y, before: dict, after: dict, w_star: dict, nbeta: float,
                 cfg: SGLDConfig, scale: Tensor | None) -> float:
    """The loop's MALA acceptance of one move, from the textbook formula in float64: U and its gradient at both
    ends on the step's own batch (x, y), log alpha = U(w) - U(w') + log q(w | w') - log q(w' | w) with
    q(b | a) = N(b; a + eps/2 G d(a), eps G) (``scale``: G, flat and frozen at the move; None: G = 1)."""
    def potential(point: dict) -> tuple[float, Tensor, Tensor]:
        params = {k: v.detach().clone().requires_grad_(True) for k, v in point.items()}
        loss = loss_fn(functional_call(model, (params, buffers), (x,)), y)
        grads = torch.autograd.grad(loss, list(params.values()))
        w = torch.cat([v.detach().double().flatten() for v in params.values()])
        offset = w - torch.cat([w_star[k].double().flatten() for k in params])
        drift = -nbeta * torch.cat([g.double().flatten() for g in grads]) - cfg.gamma * offset
        return nbeta * float(loss.detach()) + cfg.gamma / 2 * float(offset @ offset), w, drift

    u, w, drift = potential(before)
    u_next, w_next, drift_next = potential(after)
    g = torch.ones_like(w) if scale is None else scale.double()
    forward = w_next - w - cfg.epsilon / 2 * g * drift  # = the noise drawn
    backward = w - w_next - cfg.epsilon / 2 * g * drift_next
    log_alpha = u - u_next + (float(forward @ (forward / g)) - float(backward @ (backward / g))) / (2 * cfg.epsilon)
    return math.exp(min(0.0, log_alpha))
