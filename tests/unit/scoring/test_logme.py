"""LogME against the evidence computed the long way: the Gaussian marginal likelihood of y, and its maximum."""

from __future__ import annotations

import math

import pytest
import torch

from scoring.logme import evidence_at, logme, max_evidence


def marginal_log_likelihood(f: torch.Tensor, y: torch.Tensor, alpha: float, beta: float) -> float:
    """log N(y; 0, α⁻¹ F Fᵀ + β⁻¹ I), straight from the definition (n × n covariance)."""
    f, y = f.double(), y.double()
    cov = f @ f.T / alpha + torch.eye(len(y), dtype=torch.float64) / beta
    return float(torch.distributions.MultivariateNormal(torch.zeros(len(y), dtype=torch.float64), cov).log_prob(y))


@pytest.fixture
def problem():
    g = torch.Generator().manual_seed(0)
    f = torch.randn(40, 5, generator=g, dtype=torch.float64)
    w = torch.randn(5, generator=g, dtype=torch.float64)
    y = f @ w + 0.3 * torch.randn(40, generator=g, dtype=torch.float64)
    return f, y


@pytest.mark.parametrize(("alpha", "beta"), [(1.0, 1.0), (0.1, 10.0), (5.0, 0.5)])
def test_the_evidence_formula_is_the_gaussian_marginal_likelihood(problem, alpha, beta):
    f, y = problem
    assert evidence_at(f, y, alpha, beta) == pytest.approx(marginal_log_likelihood(f, y, alpha, beta), rel=1e-9)


def test_the_fixed_point_is_the_maximum_of_the_evidence(problem):
    f, y = problem
    best = max_evidence(f, y)
    assert best.converged
    assert best.log_evidence == pytest.approx(marginal_log_likelihood(f, y, best.alpha, best.beta), rel=1e-9)
    # a log-spaced grid around the fixed point finds nothing higher, and its best cell is next to it
    grid = [(best.alpha * 2 ** i, best.beta * 2 ** j) for i in range(-4, 5) for j in range(-4, 5)]
    values = {ab: marginal_log_likelihood(f, y, *ab) for ab in grid}
    assert max(values.values()) <= best.log_evidence + 1e-9
    assert max(values, key=values.get) == (best.alpha, best.beta)
    residual = y - f @ torch.linalg.lstsq(f, y.unsqueeze(1)).solution.squeeze(1)
    ols_sd = math.sqrt(float(residual @ residual) / (len(y) - f.shape[1]))  # this sample's own noise level
    assert 1 / math.sqrt(best.beta) == pytest.approx(ols_sd, rel=0.05)


def test_features_that_carry_the_labels_score_higher_than_noise():
    g = torch.Generator().manual_seed(1)
    labels = torch.arange(300) % 3
    informative = torch.nn.functional.one_hot(labels, 3).double() * 3 + torch.randn(300, 3, generator=g)
    noise = torch.randn(300, 3, generator=g, dtype=torch.float64)
    assert logme(informative, labels) > logme(noise, labels) + 0.1
    shuffled = labels[torch.randperm(300, generator=g)]
    assert logme(informative, labels) > logme(informative, shuffled)


def test_logme_refuses_what_it_cannot_score():
    f = torch.randn(5, 2)
    with pytest.raises(ValueError, match="at least 2 classes"):
        logme(f, torch.zeros(5))
    with pytest.raises(ValueError, match="must pair"):
        logme(f, torch.zeros(4))
