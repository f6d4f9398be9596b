"""kNN accuracy on frozen features: known answers on hand-made points, and the scorer on a tiny model."""

from __future__ import annotations

import itertools

import pytest
import torch

from scoring.knn import knn_accuracy, knn_predict


def brute_force(train_x, train_y, test_x, k):
    """The rule written out one query at a time: cosine similarities sorted, votes, tie to the larger sum."""
    out = []
    for q in test_x:
        sims = [float(torch.nn.functional.cosine_similarity(q, x, dim=0)) for x in train_x]
        top = sorted(range(len(sims)), key=lambda i: -sims[i])[:k]
        classes = sorted({int(train_y[i]) for i in top})
        votes = {c: sum(int(train_y[i]) == c for i in top) for c in classes}
        total = {c: sum(sims[i] for i in top if int(train_y[i]) == c) for c in classes}
        out.append(max(classes, key=lambda c: (votes[c], total[c], -c)))
    return torch.tensor(out)


def test_a_hand_computed_case():
    # angles 0, 10, 80, 90 degrees; the query at 30 degrees: nearest 10 (class 0), 0 (class 0), 80 (class 1)
    angle = torch.deg2rad(torch.tensor([0.0, 10.0, 80.0, 90.0]))
    train_x = torch.stack([angle.cos(), angle.sin()], 1)
    train_y = torch.tensor([0, 0, 1, 1])
    q = torch.deg2rad(torch.tensor([30.0, 60.0]))
    test_x = torch.stack([q.cos(), q.sin()], 1)
    assert knn_predict(train_x, train_y, test_x, k=1).tolist() == [0, 1]
    assert knn_predict(train_x, train_y, test_x, k=3).tolist() == [0, 1]
    # k = 2 at 45 degrees + 1: one vote each (10 and 80 degrees); the nearer, 80 degrees, wins the tie
    q = torch.deg2rad(torch.tensor([46.0]))
    assert knn_predict(train_x, train_y, torch.stack([q.cos(), q.sin()], 1), k=2).tolist() == [1]
    assert knn_accuracy(train_x, train_y, test_x, torch.tensor([0, 0]), k=1) == 0.5


def test_cosine_ignores_the_scale_of_each_row():
    g = torch.Generator().manual_seed(0)
    train_x, test_x = torch.randn(40, 5, generator=g), torch.randn(15, 5, generator=g)
    train_y = torch.randint(0, 3, (40,), generator=g)
    scale = torch.rand(40, 1, generator=g) * 10 + 0.1
    assert torch.equal(knn_predict(train_x, train_y, test_x, 5), knn_predict(train_x * scale, train_y, test_x * 3, 5))


@pytest.mark.parametrize("k, seed", itertools.product((1, 2, 4, 7), (0, 1, 2)))
def test_matches_the_rule_written_out(k, seed):
    g = torch.Generator().manual_seed(seed)
    train_x, test_x = torch.randn(30, 4, generator=g), torch.randn(20, 4, generator=g)
    train_y = torch.randint(0, 3, (30,), generator=g)
    assert torch.equal(knn_predict(train_x, train_y, test_x, k), brute_force(train_x, train_y, test_x, k))


def test_separable_clusters_score_one_and_shuffled_labels_score_chance():
    g = torch.Generator().manual_seed(3)
    centres = torch.eye(4) * 10
    y = torch.arange(400) % 4
    x = centres[y] + torch.randn(400, 4, generator=g)
    assert knn_accuracy(x[:300], y[:300], x[300:], y[300:], k=10) == 1.0
    shuffled = y[torch.randperm(400, generator=g)]
    accuracy = knn_accuracy(x[:300], shuffled[:300], x[300:], shuffled[300:], k=10)
    assert abs(accuracy - 0.25) < 0.12  # 100 queries: chance 0.25, sd 0.043


def test_k_beyond_the_training_set_is_capped_and_empty_training_refused():
    x, y = torch.tensor([[1.0, 0.0], [0.0, 1.0]]), torch.tensor([0, 1])
    assert knn_predict(x, y, torch.tensor([[1.0, 0.1]]), k=50).tolist() == [0]
    with pytest.raises(ValueError, match="at least one training example"):
        knn_predict(x[:0], y[:0], x, k=1)
