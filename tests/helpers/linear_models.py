"""Deep linear networks with a known learning coefficient (Aoyagi 2024), for the LLC estimator's tests."""

from __future__ import annotations

import torch
from torch import nn


def gaussian_nll(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return 0.5 * ((out - y) ** 2).sum(-1).mean()


def deep_linear_network(widths: tuple[int, ...], rank: int, *, seed: int, n: int = 2000):
    """A DLN whose every layer has rank ``rank`` and whose product is a rank-``rank`` map with unit singular
    values (random orthonormal frames), and data y = f(x) + N(0, I)."""
    gen = torch.Generator().manual_seed(seed)
    frames = [torch.linalg.qr(torch.randn(h, h, generator=gen))[0] for h in widths]
    layers = [nn.Linear(a, b, bias=False) for a, b in zip(widths[:-1], widths[1:], strict=True)]
    with torch.no_grad():
        for j, layer in enumerate(layers):
            layer.weight.copy_(frames[j + 1][:, :rank] @ frames[j][:, :rank].T)
    model = nn.Sequential(*layers)
    x = torch.randn(n, widths[0], generator=gen)
    with torch.no_grad():
        y = model(x) + torch.randn(n, widths[-1], generator=gen)
    return model, x, y
