"""The personal estimators (scoring/personal_estimators.py) on features with known answers: folds that hold every
class, perfect separation, chance on noise (by simulation), a collapsed classifier and an unconverged LogME failed."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from data.settings import Settings
from scoring import registry
from scoring.logme import logme
from scoring.personal_estimators import stratified_folds


def blobs(n_per_class=(20, 20, 20), dim=8, spread=0.1, seed=0):
    g = torch.Generator().manual_seed(seed)
    centres = torch.eye(dim)[: len(n_per_class)] * 5
    x = torch.cat([centres[c] + spread * torch.randn(n, dim, generator=g) for c, n in enumerate(n_per_class)])
    y = torch.cat([torch.full((n,), c) for c, n in enumerate(n_per_class)])
    return x, y


def build(name, **changes):
    cls = registry.scorer_class(name)
    return registry.build(name, Settings(), config=replace(cls.config_for(Settings()), **changes))


def test_every_fold_holds_every_class_and_the_folds_are_balanced_and_seeded():
    y = torch.tensor([0] * 13 + [1] * 7 + [2] * 5)
    fold = stratified_folds(y, 5, seed=3)
    for f in range(5):
        assert set(y[fold == f].tolist()) == {0, 1, 2}
    sizes = torch.bincount(fold)
    assert int(sizes.max() - sizes.min()) <= 1
    assert torch.equal(fold, stratified_folds(y, 5, seed=3)) and not torch.equal(fold, stratified_folds(y, 5, seed=4))
    assert int(stratified_folds(torch.tensor([0, 0, 0, 1, 1]), 5, seed=0).max()) == 1  # 2 folds: class 1 has 2 rows


@pytest.mark.parametrize("name", ["cv_probe", "cv_knn"])
def test_separable_classes_are_classified_perfectly(name):
    x, y = blobs()
    result = build(name).checked(x, y)
    assert result.status == "ok" and result.value == 1.0
    assert result.diagnostics["folds"] == 5 and result.diagnostics["majority_fraction"] == pytest.approx(1 / 3)


@pytest.mark.parametrize("name", ["cv_probe", "cv_knn"])
def test_on_features_that_say_nothing_of_the_labels_the_accuracy_is_chance(name):
    values = []
    for seed in range(12):
        g = torch.Generator().manual_seed(seed)
        x, y = torch.randn(80, 6, generator=g), torch.arange(80) % 2
        values.append(build(name, seed=seed).checked(x, y).value)
    mean = sum(values) / len(values)
    assert abs(mean - 0.5) < 0.06, values  # standard error of the mean of 12 x 80 rows is about 0.02


def test_a_classifier_that_predicts_one_class_everywhere_is_failed():
    x, y = torch.ones(30, 4), torch.tensor([0] * 20 + [1] * 10)  # constant features: the majority class everywhere
    result = build("cv_knn").checked(x, y)
    assert result.status == "failed" and "one class" in result.error and result.value <= 20 / 30


def test_logme_is_the_papers_evidence_and_an_unconverged_fixed_point_is_failed():
    x, y = blobs(spread=1.0)
    result = build("logme").checked(x, y)
    assert result.status == "ok" and result.value == pytest.approx(logme(x, y))
    assert len(result.diagnostics["alpha"]) == 3
    stopped = build("logme", max_iter=1).checked(x, y)
    assert stopped.status == "failed" and "did not converge in 1 iterations" in stopped.error


def test_better_separated_features_get_higher_logme():
    tight, y = blobs(spread=0.3, seed=1)
    loose, _ = blobs(spread=3.0, seed=1)
    assert build("logme").checked(tight, y).value > build("logme").checked(loose, y).value


def test_a_value_that_is_not_finite_is_failed():
    x, y = blobs()
    x[0, 0] = float("nan")
    for name in registry.personal():
        result = build(name).checked(x, y)
        assert result.status == "failed" and "not finite" in result.error
