"""Transferability estimators on a user's own labelled rows: each scores one model's frozen features.

A personal ranking (service/personal.py) extracts each candidate's features once per (model sha, data hash) and
hands them to every estimator registered with stage ``personal`` (scoring/registry.py):

- ``cv_probe``: stratified k-fold accuracy of the L2 logistic regression the prefilter uses (scoring/probe.py);
- ``cv_knn``: stratified k-fold accuracy of the cosine kNN vote of scoring/knn.py;
- ``logme``: LogME (You et al., ICML 2021; scoring/logme.py) on all rows, no folds (it is an evidence, not a fit).

Every estimate carries its diagnostics. One that fails a check is ``failed`` with the reason, shown as such and
given no rank: a probe or vote that predicts one class for every row of a multi-class data set (a collapsed
classifier, not a weak one), a LogME fixed point that did not converge, a value that is not finite.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import torch
from torch import Tensor

from data.metrics import scorer_spec
from scoring.base import RegisteredScorer
from scoring.config import CvKnnConfig, CvProbeConfig, LogmeConfig, ProbeConfig


@dataclass(frozen=True, slots=True)
class Estimate:
    value: float
    status: str = "ok"  # "ok" or "failed" (reason in ``error``): failed estimates are shown, never ranked
    error: str = ""
    diagnostics: dict = field(default_factory=dict)
    seconds: float = 0.0


def stratified_folds(labels: Tensor, folds: int, seed: int) -> Tensor:
    """The fold (0..k-1) of every row: each class's rows shuffled (seeded) and dealt round-robin, so every fold
    holds every class with at least one row; k is ``folds``, fewer when the smallest class has fewer rows."""
    counts = torch.bincount(labels.long())
    k = min(folds, int(counts[counts > 0].min()))
    if k < 2:
        raise ValueError("cross-validation needs at least 2 rows in every class")
    generator = torch.Generator().manual_seed(seed)
    fold = torch.empty(len(labels), dtype=torch.long)
    start = 0
    for c in range(len(counts)):
        rows = (labels == c).nonzero().flatten()
        rows = rows[torch.randperm(len(rows), generator=generator)]
        fold[rows] = (torch.arange(len(rows)) + start) % k
        start += len(rows)  # the next class starts where this one stopped: folds stay the same size
    return fold


def cross_validated(predict_fold, features: Tensor, labels: Tensor, folds: int, seed: int) -> Estimate:
    """Accuracy over all rows of ``predict_fold(train_x, train_y, test_x)`` fitted on the other folds."""
    started = time.perf_counter()
    fold = stratified_folds(labels, folds, seed)
    predicted = torch.empty_like(labels)
    for f in range(int(fold.max()) + 1):
        held = fold == f
        predicted[held] = predict_fold(features[~held], labels[~held], features[held])
    accuracy = float((predicted == labels).double().mean())
    majority = float(torch.bincount(labels).max()) / len(labels)
    diagnostics = {"folds": int(fold.max()) + 1, "majority_fraction": majority,
                   "predicted_classes": int(predicted.unique().numel())}
    if predicted.unique().numel() == 1 and labels.unique().numel() > 1:
        return Estimate(accuracy, "failed", "it predicts one class for every row (a collapsed classifier)",
                        diagnostics, time.perf_counter() - started)
    return Estimate(accuracy, diagnostics=diagnostics, seconds=time.perf_counter() - started)


class PersonalEstimator(RegisteredScorer):
    """A registered estimator: ``estimate(features, labels)`` on one model's features of the user's rows."""

    @property
    def metric(self) -> str:
        """The metric it writes: the first its registration declares (data/metrics.py)."""
        return scorer_spec(self.name).metrics[0].key

    def estimate(self, features: Tensor, labels: Tensor) -> Estimate:
        raise NotImplementedError

    def checked(self, features: Tensor, labels: Tensor) -> Estimate:
        """``estimate``, with non-finite features or a non-finite value turned into a failed estimate."""
        if not bool(torch.isfinite(features).all()):
            return Estimate(0.0, "failed", "the model's features of these rows are not finite numbers")
        result = self.estimate(features, labels)
        if not math.isfinite(result.value):
            return Estimate(0.0, "failed", f"{self.metric} is {result.value}", result.diagnostics, result.seconds)
        return result


class CvProbeEstimator(PersonalEstimator, name="cv_probe", config_type=CvProbeConfig):
    def estimate(self, features: Tensor, labels: Tensor) -> Estimate:
        from scoring.probe import fit_logistic, predict

        probe_cfg = ProbeConfig(l2=self.cfg.l2, max_iter=self.cfg.max_iter)
        classes = int(labels.max()) + 1

        def predict_fold(train_x, train_y, test_x):
            return predict(*fit_logistic(train_x, train_y, classes, probe_cfg), test_x)

        return cross_validated(predict_fold, features, labels, self.cfg.folds, self.cfg.seed)


class CvKnnEstimator(PersonalEstimator, name="cv_knn", config_type=CvKnnConfig):
    def estimate(self, features: Tensor, labels: Tensor) -> Estimate:
        from scoring.knn import knn_predict

        def predict_fold(train_x, train_y, test_x):
            return knn_predict(train_x, train_y, test_x, self.cfg.k)

        return cross_validated(predict_fold, features, labels, self.cfg.folds, self.cfg.seed)


class LogmeEstimator(PersonalEstimator, name="logme", config_type=LogmeConfig):
    def estimate(self, features: Tensor, labels: Tensor) -> Estimate:
        from scoring.logme import class_evidences

        started = time.perf_counter()
        evidences = class_evidences(features, labels, max_iter=self.cfg.max_iter, tol=self.cfg.tol)
        value = sum(e.log_evidence for e in evidences) / len(labels) / len(evidences)
        diagnostics = {"iterations": max(e.iterations for e in evidences),
                       "alpha": [e.alpha for e in evidences], "beta": [e.beta for e in evidences]}
        unconverged = [i for i, e in enumerate(evidences) if not e.converged]
        seconds = time.perf_counter() - started
        if unconverged:
            return Estimate(value, "failed", f"the evidence's fixed point did not converge in {self.cfg.max_iter} "
                            f"iterations for {len(unconverged)} of {len(evidences)} classes", diagnostics, seconds)
        return Estimate(value, diagnostics=diagnostics, seconds=seconds)
