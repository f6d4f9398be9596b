"""What a score carries beside its value: one typed, versioned payload per (scorer, metric).

A scorer writes ``Score.extra = SomePayload(...).to_json()``; a reader calls ``payload_of(score)`` and uses
fields. Every payload stores its schema version under ``"v"``; ``from_json`` validates the types and
converts older versions on read (version 0: the untyped extras stored before payloads had a version, as in
the bundled snapshot). A NaN (a diverged chain) is written as JSON null and read back as NaN, an infinity as
the string "inf" or "-inf", so the stored text stays standard JSON. ``read_protocol`` converts a score's
``config_json`` the same way. Modelled on mteb's ``mteb/results/task_result.py`` (versioned results,
converted when loaded).
"""

from __future__ import annotations

import functools
import importlib
import json
import math
import types
import typing
from dataclasses import asdict, dataclass, field, fields
from typing import ClassVar

from data.errors import LeaderboardError
from data.metrics import PUBLISHED_SOURCE, payload_target
from data.records import Score

VERSION_KEY = "v"


class PayloadError(LeaderboardError):
    """A stored payload that does not have the shape its version promises."""


class Payload:
    """Base of every payload dataclass: ``to_json`` / ``from_json`` with a schema version and validation."""

    version: ClassVar[int] = 1

    def to_json(self) -> dict:
        return {VERSION_KEY: self.version, **_encode(asdict(self))}

    @classmethod
    def from_json(cls, data: typing.Mapping) -> typing.Self:
        if not isinstance(data, typing.Mapping):
            raise PayloadError(f"a {cls.__name__} payload must be a JSON object, got {type(data).__name__}")
        values = dict(data)
        version = values.pop(VERSION_KEY, 0)
        if version not in (0, cls.version):
            raise PayloadError(f"{cls.__name__} payload version {version!r} is unknown (this code reads 0 and "
                               f"{cls.version})")
        if version == 0:
            values = cls.upgrade_v0(values)
        hints = typing.get_type_hints(cls)
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - names)
        if unknown:
            raise PayloadError(f"{cls.__name__} payload has unknown fields {unknown}")
        return cls(**{k: _decode(v, hints[k], f"{cls.__name__}.{k}") for k, v in values.items()})

    @classmethod
    def upgrade_v0(cls, values: dict) -> dict:
        """Version 0 (before payloads were versioned) had the same keys: nothing to convert by default."""
        return values


@dataclass(frozen=True, slots=True, kw_only=True)
class FinetuneRun(Payload):
    """One intertraining run (scorer intertraining, metric target_score)."""

    dataset_revision: str = ""
    eval_score: float | None = None
    best_step: int | None = None
    train_examples: int | None = None
    dropout_rates: dict[str, float] | None = None  # the encoder's rates under dropout="guided"
    test_classes: int | None = None  # distinct classes predicted on the test split
    majority_rate: float | None = None  # the test split's majority-class rate
    loss_start: float | None = None  # mean training loss of the first steps
    loss_end: float | None = None  # and of the last
    failure: tuple[str, ...] = ()  # why the run failed its checks (scoring/run_check.py); empty: a measurement
    lr: float | None = None  # the learning rate it ran at (the sweep's choice for the target, when there is one)
    steps: int | None = None  # optimizer steps taken


@dataclass(frozen=True, slots=True, kw_only=True)
class LrSweep(Payload):
    """The learning-rate sweep of a base on one target (scorer intertraining, metric lr_choice; the value is
    the chosen rate, status "ok", or 0 with status "dropped" and the ``reason``). scoring/lr_sweep.py."""

    lrs: tuple[float, ...] = ()
    eval_means: tuple[float, ...] = ()  # the base's mean eval score at each rate
    test_means: tuple[float, ...] = ()
    failed: tuple[int, ...] = ()  # failed base seeds at each rate
    seeds: int = 0
    majority_rate: float | None = None
    reason: str = ""  # why the target was dropped from the suite; empty: kept
    dataset_revision: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class ProbeRun(Payload):
    """One stage-1 probe (scorer linear_probe, metric probe_accuracy)."""

    dataset_revision: str = ""
    train_accuracy: float | None = None
    feature_seconds: float | None = None
    fit_seconds: float | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class KnnRun(Payload):
    """One kNN accuracy (scorer knn, metric knn_accuracy)."""

    dataset_revision: str = ""
    k: int = 0
    train_examples: int = 0
    test_examples: int = 0
    feature_seconds: float | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class FreeEnergyRun(Payload):
    """One free-energy estimate (all four metrics of a free_energy score share it)."""

    per_chain: tuple[float, ...] = ()  # λ̂ of each chain; NaN for a chain that diverged
    nbeta: float | None = None
    n: int | None = None
    num_chains: int | None = None
    num_draws: int | None = None
    diagnostics: tuple[str, ...] = ()
    trace: tuple[tuple[float, ...], ...] = ()  # each chain's loss trace, as window means
    head: str = ""  # "refit": each model's own head, fitted on split A ("shipped"/"fitted": the base's, before)
    corpus: str = ""
    grad_norm: float | None = None  # ‖∇L_n(w*)‖ on split B
    drift: float | None = None  # relative trace drift (scoring/llc.py)
    r_hat: float | None = None  # split R-hat across chains
    acceptance: float | None = None  # mean MALA acceptance probability
    gate: tuple[str, ...] = ()  # why the estimate failed the convergence gate; empty: it passed (or predates it)
    localize_steps: int = 0  # (before issue 30) steps of localized minimisation on split B before sampling
    start_grad_norm: float | None = None  # (before issue 30) ‖∇L_n‖ at the checkpoint, before that minimisation
    sampled: str = ""  # "last_block" or "encoder" ("": the whole encoder, before issue 30)
    head_steps: int | None = None  # Adam steps the head took to converge on split A
    head_converged: bool | None = None
    head_loss: float | None = None  # the fitted head's loss over split A
    unigram_ce: float | None = None  # the corpus's unigram cross-entropy on split B's masked tokens
    checkpoint_grad_norm: float | None = None  # ‖∇L_n‖ over the sampled weights at the checkpoint
    critical_ratio: float | None = None  # nβ²‖∇L_n(w*)‖²/γ over λ̂, at the sampled w*
    recentre_steps: int = 0  # Adam steps of the sampled weights on split A before sampling (0: at the checkpoint)
    mc_se: float | None = None  # Monte-Carlo standard error of λ̂ (chains' λ̂)
    half_gap: float | None = None  # λ̂(second half of the draws) - λ̂(first half), in standard errors
    burnin_relaxations: float | None = None  # burn-in over the relaxation time 2/(εγ)
    halving_llc: float | None = None  # λ̂ at ε/2 with twice the steps (the base's first replicate only)
    halving_gap: float | None = None  # (λ̂ at ε/2 - λ̂) in standard errors of the difference
    weight_distance: float | None = None  # ‖w - w_base‖ over the encoder's weights
    seconds: dict[str, float] | None = None  # wall time per stage (features, head, recentre, sampling, halving)


@dataclass(frozen=True, slots=True, kw_only=True)
class LoraRun(Payload):
    """One seed's point of a sample-efficiency curve (metric lora_accuracy). The run fields (``steps`` ...) and
    the seed spread are None in payloads stored before they were recorded."""

    n_labels: int
    dataset_revision: str = ""
    steps: int | None = None  # optimizer steps trained: the protocol's ``steps``, the same at every n
    batch_size: int | None = None  # examples per step (steps x batch_size examples seen at every n)
    train_examples: int | None = None  # distinct labelled examples the run drew from (= n_labels)
    best_step: int | None = None  # the step whose weights were tested (best on the eval split)
    seeds: int | None = None  # seeds run at this (model, target, n): this score is one of them
    seed_mean: float | None = None  # their mean accuracy
    seed_std: float | None = None  # their sample standard deviation (ddof 1); None with a single seed


@dataclass(frozen=True, slots=True)
class PowerLawFit:
    """error(n) ≈ a + b·n^(−gamma), a sample-efficiency curve fitted to LoRA runs."""

    a: float
    b: float
    gamma: float

    def error(self, n: float) -> float:
        return self.a + self.b * n ** -self.gamma

    def labels_for(self, accuracy: float) -> float:
        """Labels needed to reach ``accuracy``; inf when the curve never gets there."""
        gap = (1 - accuracy) - self.a
        if gap <= 0 or self.b <= 0:
            return math.inf
        return (self.b / gap) ** (1 / self.gamma)


@dataclass(frozen=True, slots=True)
class CurvePoint:
    """One (model, n) of a sample-efficiency curve over its seeds."""

    n_labels: int
    mean: float  # mean LoRA accuracy over the seeds
    std: float | None  # sample standard deviation over the seeds (ddof 1); None with a single seed
    seeds: int


@dataclass(frozen=True, slots=True, kw_only=True)
class LabelsSaved(Payload):
    """Labels saved against the base (metric labels_saved), the fits it came from and the measured curves.

    Read only inside the measured range of n, never extrapolated (scoring/sample_efficiency.py): the reference
    is the base's fitted accuracy at ``n_max`` (so ``base_labels`` = ``n_max``), ``candidate_labels`` the n at
    which the candidate's fitted curve reaches it. ``in_range`` True: that n lies in [n_min, n_max] and the
    score's value, base_labels − candidate_labels, is exact. False: it does not, ``candidate_labels`` is None
    and the value is a bound, as ``out_of_range`` says: "below" — the candidate is past the reference already
    at n_min (needs < n_min labels), the value n_max − n_min is a lower bound (saved > value); "above" — it is
    still short of it at n_max (needs > n_max labels, or never gets there), the value 0 is an upper bound
    (saved < 0: the candidate costs labels). ``reason`` says it in a sentence. Payloads stored before the range
    check have ``in_range`` None (their value may be extrapolated) and no n_min/n_max/steps/curves."""

    reference_accuracy: float | None = None  # before the range check: the base's measured mean at the largest n
    base_labels: float | None = None
    candidate_labels: float | None = None  # None when out of range (older payloads: inf = never reaches)
    fits: dict[str, PowerLawFit] = field(default_factory=dict)
    in_range: bool | None = None
    out_of_range: str = ""  # "" (in range, or stored before the check), "below" or "above"
    reason: str = ""  # why the value is a bound, in a sentence; "" when exact
    n_min: int | None = None
    n_max: int | None = None
    base_accuracy: float | None = None  # the base's measured mean accuracy at n_max
    steps: int | None = None  # optimizer steps of every LoRA run (the same at every n)
    curves: dict[str, tuple[CurvePoint, ...]] = field(default_factory=dict)  # per model: mean, std, seeds per n


@dataclass(frozen=True, slots=True, kw_only=True)
class PublishedRow(Payload):
    """What IBM's 2023 results recorded beside a model (any score of source published-2023)."""

    num_params: int | None = None
    last_modified: str | None = None
    model_type: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class NoPayload(Payload):
    """A score that carries nothing beside its value."""


def payload_type(score: Score) -> type[Payload]:
    """The payload class the score's metric declares (data/metrics.py), PublishedRow for an imported score,
    NoPayload where none is declared."""
    if score.source == PUBLISHED_SOURCE:
        return PublishedRow
    target = payload_target(score.scorer, score.metric)
    return _payload_class(target) if target else NoPayload


@functools.cache
def _payload_class(target: str) -> type[Payload]:
    module, _, name = target.partition(":")
    return getattr(importlib.import_module(module), name)


def payload_of(score: Score) -> Payload:
    """The score's typed payload; an empty extra reads as the type's defaults where it has them.
    Raises PayloadError naming the score when the stored payload is malformed."""
    cls = payload_type(score)
    try:
        return cls.from_json(score.extra or {})
    except (PayloadError, TypeError) as e:
        raise PayloadError(f"the payload of {score.repo_id}'s {score.scorer}/{score.metric} score on "
                           f"{score.target or 'all'} is unreadable: {e}") from None


# ------------------------------------------------------------------------------------------ protocols
@dataclass(frozen=True, slots=True)
class ProtocolDoc:
    """A score's ``config_json`` as one layout: the scorer's config and the identity of the data it read."""

    config: dict
    data: object


def read_protocol(config_json: str) -> ProtocolDoc:
    """Read a stored protocol, converting the layouts written before the one protocol function (intertraining
    wrote ``{"finetune": ..., "suite": [[target, revision], ...]}``)."""
    try:
        doc = json.loads(config_json)
    except ValueError as e:
        raise PayloadError(f"a stored protocol is not JSON: {e}") from None
    if not isinstance(doc, dict):
        raise PayloadError("a stored protocol must be a JSON object")
    if "config" in doc and "scorer" in doc:
        return ProtocolDoc(config=dict(doc["config"]), data=doc.get("data"))
    data = doc.pop("suite", None)
    return ProtocolDoc(config=doc, data=data)


# ---------------------------------------------------------------------------------------- encoding
def _encode(value):
    if isinstance(value, float) and not math.isfinite(value):
        return None if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, dict):
        return {k: _encode(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_encode(v) for v in value]
    return value


def _decode(value, hint, where: str):
    """``value`` read from JSON as type ``hint``; PayloadError naming ``where`` when it does not fit."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (types.UnionType, typing.Union):
        if value is None and type(None) in args:
            return None
        [inner] = [a for a in args if a is not type(None)]
        return _decode(value, inner, where)
    if hint is float:
        if value is None:
            return math.nan  # a NaN written as null
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        if value in ("inf", "-inf"):
            return float(value)
    elif hint is bool:
        if isinstance(value, bool):
            return value
    elif hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
    elif hint is str:
        if isinstance(value, str):
            return value
    elif origin is tuple and isinstance(value, list | tuple):
        return tuple(_decode(v, args[0], f"{where}[{i}]") for i, v in enumerate(value))
    elif origin is dict and isinstance(value, dict):
        return {str(k): _decode(v, args[1], f"{where}[{k!r}]") for k, v in value.items()}
    elif isinstance(hint, type) and hasattr(hint, "__dataclass_fields__") and isinstance(value, dict):
        sub = typing.get_type_hints(hint)
        if set(value) != set(sub):
            raise PayloadError(f"{where} must have the fields {sorted(sub)}, got {sorted(value)}")
        return hint(**{k: _decode(v, sub[k], f"{where}.{k}") for k, v in value.items()})
    raise PayloadError(f"{where} must be {_name(hint)}, got {value!r}")


def _name(hint) -> str:
    return getattr(hint, "__name__", None) or str(hint)
