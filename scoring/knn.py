"""kNN accuracy on frozen features: a target-data baseline beside the linear probe (issue 18's validity table;
the personal ranking's estimators build on it).

Beside it, LogME (scoring/logme.py) of the target's train labels on the same features: the third frozen-feature
predictor of the study's validity table.

Each test example takes the labels of its ``k`` most cosine-similar training examples (mean-pooled features of
the frozen encoder, the probe's, cached); the class with the most votes wins, a tie going to the tied class whose
voters are the more similar in sum (then the lower class index). Accuracy is over the target's test split.
"""

from __future__ import annotations

import time

import torch
from torch import Tensor

from data.errors import ScoringError
from data.payloads import KnnRun
from data.records import Score
from data.targets import suite
from scoring.base import RegisteredScorer, ScoringContext, ScoringJob, check_finite
from scoring.config import KnnConfig
from scoring.logme import logme
from scoring.probe import target_features
from scoring.target_data import load_target

QUERY_BLOCK = 1024  # test rows per similarity block (bounds memory: block x train)


def knn_predict(train_x: Tensor, train_y: Tensor, test_x: Tensor, k: int) -> Tensor:
    """The predicted class of every row of ``test_x`` (rule in the module docstring); k is capped at len(train)."""
    if len(train_x) == 0:
        raise ValueError("kNN needs at least one training example")
    k = min(k, len(train_x))
    classes = int(train_y.max()) + 1
    train = torch.nn.functional.normalize(train_x.double(), dim=1)
    out = []
    for block in torch.nn.functional.normalize(test_x.double(), dim=1).split(QUERY_BLOCK):
        sims, index = (block @ train.T).topk(k, dim=1)
        labels = train_y[index]
        votes = torch.zeros(len(block), classes, dtype=torch.float64).scatter_add_(1, labels, torch.ones_like(sims))
        weight = torch.zeros_like(votes).scatter_add_(1, labels, sims)
        # votes decide: one vote (2k + 1) outweighs any difference of summed similarities (each in [-k, k]);
        # argmax takes the lowest class index among exact ties
        out.append((votes * (2 * k + 1) + weight).argmax(1))
    return torch.cat(out)


def knn_accuracy(train_x: Tensor, train_y: Tensor, test_x: Tensor, test_y: Tensor, k: int) -> float:
    return float((knn_predict(train_x, train_y, test_x, k) == test_y).double().mean())


class KnnScorer(RegisteredScorer, name="knn", config_type=KnnConfig, settings_fields=("suite",)):
    @classmethod
    def config_for(cls, settings, options=None) -> KnnConfig:
        return KnnConfig(suite=(options.suite if options and options.suite else settings.suite))

    def score(self, job: ScoringJob, ctx: ScoringContext) -> list[Score]:
        """The job's model on every classification target of the suite, and the base where it has no score."""
        targets = [load_target(spec, seed=self.cfg.probe.seed, local_root=self.local_root)
                   for spec in suite(self.cfg.suite, local_root=self.local_root)]
        targets = [t for t in targets if t.metric == "accuracy" and t.num_labels >= 2]
        if not targets:
            raise ScoringError(f"suite {self.cfg.suite!r} has no classification target for kNN")
        models = [(job.repo_id, job.revision, job.model_dir)]
        first = targets[0]
        if job.repo_id != job.base_id and not ctx.has_score(
                job.base_id, job.base_revision, self.name, "knn_accuracy", first.name, self.cfg.probe.seed,
                self.protocol([first.name, first.revision]).hash):
            models.append((job.base_id, job.base_revision, job.base_dir))
        scores = [score for repo_id, revision, model_dir in models for target in targets
                  for score in self._one(repo_id, revision, model_dir, target, job.base_id, ctx)]
        return check_finite(scores, f"kNN of {job.repo_id}")

    def _one(self, repo_id, revision, model_dir, target, base_id, ctx) -> list[Score]:
        """kNN accuracy on the test split and LogME of the train split, on the same cached features."""
        proto = self.protocol([target.name, target.revision])
        started = time.perf_counter()
        (train_x, train_y), (test_x, test_y) = target_features(
            model_dir, target, self.cfg.probe, device=ctx.device, cache_dir=ctx.cache_dir,
            model_key=f"{repo_id}@{revision}")
        feature_s = time.perf_counter() - started
        extra = KnnRun(dataset_revision=target.revision, k=self.cfg.k, train_examples=len(train_y),
                       test_examples=len(test_y), feature_seconds=feature_s).to_json()
        values = {"knn_accuracy": knn_accuracy(train_x, train_y, test_x, test_y, self.cfg.k),
                  "logme_target": logme(train_x.double(), train_y)}
        return [Score(repo_id=repo_id, revision=revision, scorer=self.name, metric=metric, target=target.name,
                      seed=self.cfg.probe.seed, value=value, config_hash=proto.hash, config_json=proto.json,
                      duration_s=time.perf_counter() - started, base_id=base_id, extra=extra)
                for metric, value in values.items()]
