"""LogME (You et al., ICML 2021): the maximum log evidence per example of a Bayesian linear model on frozen features.

For each class k, the one-vs-rest target y_k ∈ {0, 1}^n is modelled as y = F w + noise, w ~ N(0, α⁻¹ I),
noise ~ N(0, β⁻¹ I), so that y ~ N(0, α⁻¹ F Fᵀ + β⁻¹ I). The evidence

    log p(y | α, β) = n/2 log β + d/2 log α − n/2 log 2π − β/2 ‖F m − y‖² − α/2 ‖m‖² − 1/2 log |A|,
    A = α I + β FᵀF,  m = β A⁻¹ Fᵀ y,

is maximised over (α, β) by the paper's fixed point (its Algorithm 1), on the eigenvalues σ² of FᵀF:
γ = Σ β σ² / (α + β σ²), α ← γ / ‖m‖², β ← (n − γ) / ‖F m − y‖². LogME is the mean over classes of the maximum
divided by n. Pure torch in float64; no sklearn, no scipy.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass(frozen=True, slots=True)
class Evidence:
    log_evidence: float  # log p(y | α, β) at the fixed point, for the whole target (not per example)
    alpha: float
    beta: float
    iterations: int
    converged: bool


def evidence_at(features: Tensor, y: Tensor, alpha: float, beta: float) -> float:
    """log p(y | α, β) by the formula in the module docstring (for the tests and the fixed point's report)."""
    f, y = features.double(), y.double()
    n, d = f.shape
    a = alpha * torch.eye(d, dtype=torch.float64) + beta * f.T @ f
    m = beta * torch.linalg.solve(a, f.T @ y)
    residual = float((f @ m - y).pow(2).sum())
    return (n / 2 * math.log(beta) + d / 2 * math.log(alpha) - n / 2 * math.log(2 * math.pi)
            - beta / 2 * residual - alpha / 2 * float(m @ m) - 0.5 * float(torch.linalg.slogdet(a)[1]))


def max_evidence(features: Tensor, y: Tensor, *, max_iter: int = 100, tol: float = 1e-6) -> Evidence:
    """The fixed point of (α, β) for one target column ``y`` and its evidence."""
    f, y = features.double(), y.double()
    n, d = f.shape
    u, s, _ = torch.linalg.svd(f, full_matrices=False)
    sigma2 = s.pow(2)  # the nonzero part of FᵀF's spectrum (d - rank eigenvalues are 0)
    z = u.T @ y  # y in the left singular basis
    rest = float(y @ y - z @ z)  # the part of y outside F's column space
    alpha, beta, converged, it = 1.0, 1.0, False, 0
    for it in range(1, max_iter + 1):  # noqa: B007 (the count is reported)
        shrink = beta * sigma2 / (alpha + beta * sigma2)
        gamma = float(shrink.sum())
        m2 = float((beta * s * z / (alpha + beta * sigma2)).pow(2).sum())  # ‖m‖²
        res2 = float(((1 - shrink) * z).pow(2).sum()) + rest  # ‖F m − y‖²
        new_alpha, new_beta = gamma / max(m2, 1e-300), (n - gamma) / max(res2, 1e-300)
        change = abs(new_alpha / alpha - 1) + abs(new_beta / beta - 1)
        alpha, beta = new_alpha, new_beta
        if change < tol:
            converged = True
            break
    return Evidence(log_evidence=evidence_at(f, y, alpha, beta), alpha=alpha, beta=beta, iterations=it,
                    converged=converged)


def class_evidences(features: Tensor, labels: Tensor, *, max_iter: int = 100, tol: float = 1e-6) -> list[Evidence]:
    """The fixed point of every class's one-vs-rest target (classes in ascending order)."""
    if len(features) != len(labels) or len(features) < 2:
        raise ValueError(f"features and labels must pair at least 2 examples, got {len(features)} and {len(labels)}")
    classes = labels.long().unique()
    if len(classes) < 2:
        raise ValueError("LogME needs at least 2 classes")
    return [max_evidence(features, (labels == k).double(), max_iter=max_iter, tol=tol) for k in classes]


def logme(features: Tensor, labels: Tensor, *, max_iter: int = 100, tol: float = 1e-6) -> float:
    """LogME of ``labels`` (class indices) given ``features`` (n × d): the mean over classes of the maximum log
    evidence of the one-vs-rest target, per example. Higher is a better fit of a linear model on these features."""
    evidences = class_evidences(features, labels, max_iter=max_iter, tol=tol)
    return sum(e.log_evidence for e in evidences) / len(labels) / len(evidences)
