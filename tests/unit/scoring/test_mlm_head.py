"""The masked-LM head's start and fit (scoring/mlm_head.py) on synthetic features with known answers."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from scoring.mlm_head import HELD_OUT, fit_head, unigram_log_probs


def test_unigram_log_probs_are_add_one_frequencies():
    got = unigram_log_probs(torch.tensor([1.0, 0.0, 2.0]))
    torch.testing.assert_close(got, torch.log(torch.tensor([2 / 6, 1 / 6, 3 / 6])))


class Head(nn.Module):
    """transform + decoder with fixed weights E and a bias: the shape of a BERT masked-LM head."""

    def __init__(self, embeddings: torch.Tensor, bias: torch.Tensor):
        super().__init__()
        self.transform = nn.Linear(embeddings.shape[1], embeddings.shape[1])
        nn.init.zeros_(self.transform.weight)
        nn.init.zeros_(self.transform.bias)
        self.embeddings, self.bias = embeddings, nn.Parameter(bias.clone())

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.transform(features) @ self.embeddings.T + self.bias


def data(informative: bool, rows: int = 400, k: int = 3, vocab: int = 30, dim: int = 8, seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    embeddings = torch.randn(vocab, dim, generator=gen)
    targets = torch.randint(vocab, (rows, k), generator=gen)
    noise = torch.randn(rows, k, dim, generator=gen)
    features = embeddings[targets] + 0.3 * noise if informative else noise
    return embeddings, features, targets


def held_out_loss(head: nn.Module, features, targets) -> float:
    cut = len(features) - round(HELD_OUT * len(features))
    with torch.no_grad():
        logits = head(features[cut:])
        return float(nn.functional.cross_entropy(logits.flatten(0, 1), targets[cut:].flatten()))


def test_a_head_fits_features_that_name_the_target_and_stops_when_the_held_out_loss_stops_improving():
    embeddings, features, targets = data(informative=True)
    head = Head(embeddings, torch.zeros(len(embeddings)))
    fit = fit_head(head, list(head.parameters()), features, targets, lr=1e-2, max_steps=3000, tol=1e-3,
                   check_every=25, seed=0)
    assert fit.start_loss == pytest.approx(math.log(30), rel=1e-6)  # a zero transform and bias: uniform
    assert fit.converged and fit.steps < 3000 and fit.loss < 0.5 * fit.start_loss
    assert held_out_loss(head, features, targets) == pytest.approx(fit.loss, rel=1e-5)  # ends at its best check


def test_on_features_that_say_nothing_the_head_never_leaves_the_unigram_start():
    embeddings, features, targets = data(informative=False)
    counts = torch.bincount(targets[: len(targets) - round(HELD_OUT * len(targets))].flatten(), minlength=30)
    head = Head(embeddings, unigram_log_probs(counts.double()))
    fit = fit_head(head, list(head.transform.parameters()), features, targets, lr=1e-2, max_steps=500, tol=1e-3,
                   check_every=25, seed=0)
    assert not fit.converged and fit.loss == fit.start_loss  # no check beat the start: it ends where it began
    assert head.transform.weight.abs().max() == 0 and held_out_loss(head, features, targets) == pytest.approx(
        fit.start_loss, rel=1e-6)


def test_a_head_out_of_steps_is_not_converged():
    embeddings, features, targets = data(informative=True)
    head = Head(embeddings, torch.zeros(len(embeddings)))
    fit = fit_head(head, list(head.parameters()), features, targets, lr=1e-3, max_steps=20, tol=1e-3,
                   check_every=10, seed=0)
    assert not fit.converged and fit.steps == 20 and fit.loss < fit.start_loss
