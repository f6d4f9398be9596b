"""Every scorer and every metric the project stores, declared once.

A scorer's registration (``register(ScorerSpec(...))``) names its class (imported lazily by scoring/registry.py),
its stage role, the metrics it writes and, where its estimate can fail a check as a whole, the word its status
column shows. Each metric declares its direction, its display (``fmt``, ``decimals``), where a board shows it
(``board``: "summary" is one column, a model's mean over its rows; "target" the per-target columns; None stored
only), its column group, and the typed payload its scores carry. The ranking (ranking/columns.py,
ranking/leaderboard.py), the exports, the model page and the study read these declarations: adding a scorer is
its module plus one registration (tests/unit/scoring/test_registry.py adds one from a fixture module and finds
it on the board, in the CSV and on the model page).

Metric keys are stable snake_case strings used as database values and column keys: once released,
never rename one (add a new key). Values are stored in natural units (fractions, nats); display scaling
(×100 for "pct" and "pts") happens in ``ranking/columns.py``.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from types import MappingProxyType
from typing import Literal

Stage = Literal["prefilter", "full", "personal"]
STAGES = ("prefilter", "full", "personal")
# the board's column groups, in display order
OVERVIEW, TARGET_GAINS, TARGET_SCORES, FREE_ENERGY, HUB = ("overview", "target gains", "target scores",
                                                            "free energy", "hub metadata")
GROUPS = (OVERVIEW, TARGET_GAINS, TARGET_SCORES, FREE_ENERGY, HUB)


@dataclass(frozen=True, slots=True, kw_only=True)
class MetricSpec:
    key: str
    label: str  # the column's header
    higher_is_better: bool
    unit: str
    description: str
    fmt: str = "num"  # "pct" (a fraction shown ×100) | "pts" | "int" | "num" (ranking/columns.format_value)
    decimals: int = 2  # shown after any ×100; exports keep full precision
    board: Literal["summary", "target"] | None = None  # see the module's docstring
    group: str = OVERVIEW  # the column group of a "summary" metric
    column_description: str = ""  # the column's help where it says more than ``description`` (a mean over targets)
    page_label: str = ""  # its name in a sentence (the model page); default ``label``
    payload: str = ""  # "module:Class" of the typed payload (data/payloads.py) its scores carry; "": none

    @property
    def name(self) -> str:
        return self.page_label or self.label


@dataclass(frozen=True, slots=True)
class ScorerSpec:
    name: str
    target: str  # "module:Class"
    stage: Stage
    metrics: tuple[MetricSpec, ...]  # what it writes, the first its main value
    description: str  # one line for help texts
    failed_status: str = ""  # a model with a failed row of the main metric: none of its summary values, this word
    status_description: str = ""  # the status column's help

    @property
    def status_column(self) -> str:
        """The board column saying that the estimate failed (``<name>_status``); "" when it cannot fail."""
        return f"{self.name}_status" if self.failed_status else ""


_SCORERS: dict[str, ScorerSpec] = {}
_METRICS: dict[str, MetricSpec] = {}
SCORERS: MappingProxyType[str, ScorerSpec] = MappingProxyType(_SCORERS)  # in registration order
METRICS: MappingProxyType[str, MetricSpec] = MappingProxyType(_METRICS)


def _declare(spec: MetricSpec, owner: str) -> None:
    if spec.key in _METRICS and _METRICS[spec.key] != spec:
        raise ValueError(f"scorer {owner!r} declares metric {spec.key!r} unlike its first declaration")
    if spec.board not in (None, "summary", "target") or spec.group not in GROUPS:
        raise ValueError(f"metric {spec.key!r}: board must be None, 'summary' or 'target' and group one of "
                         f"{', '.join(GROUPS)}")
    _METRICS[spec.key] = spec


def register(spec: ScorerSpec) -> ScorerSpec:
    """Add a scorer and its metrics; a name registered twice, an unknown stage, a metric declared unlike before
    or a bad board placement raises ValueError and registers nothing."""
    if spec.name in _SCORERS:
        raise ValueError(f"scorer {spec.name!r} is registered twice ({_SCORERS[spec.name].target} and {spec.target})")
    if spec.stage not in STAGES:
        raise ValueError(f"scorer {spec.name!r}: stage must be 'prefilter', 'full' or 'personal', got {spec.stage!r}")
    if not spec.metrics:
        raise ValueError(f"scorer {spec.name!r} declares no metrics")
    before = dict(_METRICS)
    try:
        for m in spec.metrics:
            _declare(m, spec.name)
    except ValueError:
        _METRICS.clear()
        _METRICS.update(before)
        raise
    _SCORERS[spec.name] = spec
    return spec


def unregister(name: str) -> None:
    """Remove a scorer and the metrics no other scorer declares (a test's fixture scorer, after the test)."""
    spec = _SCORERS.pop(name)
    kept = {m.key for s in _SCORERS.values() for m in s.metrics} | {m.key for m in DERIVED}
    for m in spec.metrics:
        if m.key not in kept:
            _METRICS.pop(m.key, None)


def scorer_spec(name: str) -> ScorerSpec:
    """The registration of ``name``; KeyError naming the close matches (or every known name)."""
    try:
        return _SCORERS[name]
    except KeyError:
        close = difflib.get_close_matches(name, list(_SCORERS), n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else f"; known: {', '.join(_SCORERS)}"
        raise KeyError(f"unknown scorer {name!r}{hint}") from None


def metric(key: str) -> MetricSpec:
    try:
        return METRICS[key]
    except KeyError:
        raise KeyError(f"unknown metric {key!r}; known: {', '.join(sorted(METRICS))}") from None


def summary_metrics() -> tuple[MetricSpec, ...]:
    """The metrics a board shows as one column each, in registration order (each once)."""
    seen: dict[str, MetricSpec] = {}
    for s in _SCORERS.values():
        seen.update({m.key: m for m in s.metrics if m.board == "summary" and m.key not in seen})
    return tuple(seen.values())


def gated_scorers() -> tuple[ScorerSpec, ...]:
    """The scorers whose estimate fails as a whole (a status column; its summary values hidden when it failed)."""
    return tuple(s for s in _SCORERS.values() if s.failed_status)


def board_keys() -> tuple[str, ...]:
    """The board's scorer columns in order: each summary metric, a gated scorer's status right after its main
    metric."""
    keys = []
    status = {s.metrics[0].key: s.status_column for s in gated_scorers()}
    for m in summary_metrics():
        keys += [m.key, status[m.key]] if m.key in status else [m.key]
    return tuple(keys)


def payload_target(scorer: str, key: str) -> str:
    """The "module:Class" of the payload a ``scorer``'s ``key`` score carries ("" when none is declared)."""
    spec = _SCORERS.get(scorer)
    found = next((m for m in spec.metrics if m.key == key), None) if spec else None
    return found.payload if found else ""


def _p(name: str) -> str:
    return f"data.payloads:{name}"


PROBE = MetricSpec(key="probe_accuracy", label="probe", page_label="probe accuracy", higher_is_better=True,
                   unit="fraction", fmt="pct", board="summary", payload=_p("ProbeRun"),
                   description="Accuracy of a linear classifier on frozen features (stage 1; the site's mnli_lp).")
register(ScorerSpec("linear_probe", "scoring.linear_probe:LinearProbeScorer", "prefilter", (PROBE,),
                    "stage 1: logistic regression on frozen features of the probe target"))
register(ScorerSpec("knn", "scoring.knn:KnnScorer", "full", (
    MetricSpec(key="knn_accuracy", label="kNN", page_label="kNN accuracy", higher_is_better=True, unit="fraction",
               fmt="pct", board="summary", payload=_p("KnnRun"),
               description="Accuracy of a k-nearest-neighbour vote (cosine, frozen mean-pooled features) on one "
                           "target's test split, the train split as neighbours: a target-data baseline.",
               column_description="Mean over the suite's targets of the kNN accuracy on frozen features (k 10, "
                                  "cosine): a baseline reading target data, beside the probe."),
    MetricSpec(key="logme_target", label="LogME", higher_is_better=True, unit="nats", fmt="num", decimals=3,
               board="summary", payload=_p("KnnRun"),
               description="LogME (You et al. 2021) of one target's train labels on frozen mean-pooled features "
                           "(the kNN's): the maximum log evidence per example of a Bayesian linear model.",
               column_description="Mean over the suite's targets of LogME (nats per example) of the train labels on "
                                  "frozen features: a baseline reading target data.")),
    "kNN accuracy and LogME on frozen features of every target of the suite (reads target data; baselines)"))
_FE = _p("FreeEnergyRun")
register(ScorerSpec("free_energy", "scoring.free_energy:FreeEnergyScorer", "full", (
    MetricSpec(key="free_energy", label="free energy", higher_is_better=False, unit="nats", fmt="num", decimals=1,
               board="summary", payload=_FE,
               description="n·L_n(w*) + λ̂·log n on the reference corpus: lower means more nearby parameters "
                           "fit well. Not a validated predictor of a good start: on the study's base it fails its "
                           "known-answer controls (a re-initialised last block scores lower)."),
    MetricSpec(key="llc_mean", label="LLC", higher_is_better=False, unit="", fmt="num", board="summary",
               group=FREE_ENERGY, payload=_FE,
               description="Local learning coefficient λ̂ estimated by SGLD (mean over chains)."),
    MetricSpec(key="llc_std", label="LLC std", higher_is_better=False, unit="", fmt="num", board="summary",
               group=FREE_ENERGY, payload=_FE, description="Spread of λ̂ across SGLD chains."),
    MetricSpec(key="init_loss", label="L_n(w*)", higher_is_better=False, unit="nats", fmt="num", decimals=3,
               board="summary", group=FREE_ENERGY, payload=_FE,
               description="Pretraining loss at the checkpoint on the reference corpus."),
    MetricSpec(key="weight_distance", label="weight distance", higher_is_better=False, unit="", payload=_FE,
               description="‖w − w_base‖ over the encoder's weights (stored beside each estimate; the study's "
                           "validity table reads it).")),
    "SGLD free energy of the encoder under the base's masked-LM head; no target data",
    failed_status="unconverged",
    status_description="'unconverged': the SGLD estimate failed its convergence gate (λ̂ < 0, a chain below "
                       "L_n(w*), drifting traces, chains that disagree, or a low MALA acceptance); its free "
                       "energy is stored and shown on the model page, never ranked."))
register(ScorerSpec("sample_efficiency", "scoring.sample_efficiency:SampleEfficiencyScorer", "full", (
    MetricSpec(key="labels_saved", label="labels saved", higher_is_better=True, unit="labels", fmt="int",
               board="summary", payload=_p("LabelsSaved"),
               description="Target labels the candidate saves against the base at the same accuracy (LoRA)."),
    MetricSpec(key="lora_accuracy", label="LoRA accuracy", higher_is_better=True, unit="fraction", fmt="pct",
               payload=_p("LoraRun"),
               description="Test accuracy of a LoRA fine-tune on n labels (target 'name@n'; sample efficiency).")),
    "LoRA accuracy vs number of labels; labels saved against the base"))
TARGET_SCORE = MetricSpec(key="target_score", label="score", higher_is_better=True, unit="fraction", fmt="pct",
                          board="target", group=TARGET_SCORES, payload=_p("FinetuneRun"),
                          description="Score on one target after fine-tuning (accuracy; Spearman for STS-B).")
register(ScorerSpec("intertraining", "scoring.intertraining:IntertrainingScorer", "full", (
    TARGET_SCORE,
    MetricSpec(key="lr_choice", label="learning rate", higher_is_better=False, unit="", payload=_p("LrSweep"),
               description="The learning rate the base's sweep chose for a target (0 with status 'dropped': the "
                           "target left the suite).")),
    "fine-tune on every target of the suite; gains against the base's seeds"))
register(ScorerSpec("cv_probe", "scoring.personal_estimators:CvProbeEstimator", "personal", (
    MetricSpec(key="cv_probe_accuracy", label="probe (your data)", higher_is_better=True, unit="fraction", fmt="pct",
               description="Cross-validated accuracy of a linear classifier on frozen features of the user's own "
                           "labelled rows (a personal ranking's estimator)."),),
    "personal: cross-validated linear-probe accuracy on the user's rows"))
register(ScorerSpec("cv_knn", "scoring.personal_estimators:CvKnnEstimator", "personal", (
    MetricSpec(key="cv_knn_accuracy", label="kNN (your data)", higher_is_better=True, unit="fraction", fmt="pct",
               description="Cross-validated accuracy of the kNN vote on frozen features of the user's own rows."),),
    "personal: cross-validated kNN accuracy on the user's rows"))
register(ScorerSpec("logme", "scoring.personal_estimators:LogmeEstimator", "personal", (
    MetricSpec(key="logme", label="LogME (your data)", higher_is_better=True, unit="nats", fmt="num", decimals=3,
               description="LogME (You et al. 2021): the maximum log evidence per row of a Bayesian linear model "
                           "of the user's labels on frozen features."),),
    "personal: LogME evidence of the user's labels on frozen features"))
# derived by the ranking, written by no scorer
DERIVED = (MetricSpec(key="intertraining_gain", label="gain", higher_is_better=True, unit="points", fmt="pts",
                      board="target", group=TARGET_GAINS,
                      description="Target score of the candidate minus the mean over seeds of the base's score, "
                                  "same protocol."),)
for _m in DERIVED:
    _declare(_m, "the ranking")

PUBLISHED_SOURCE = "published-2023"
# the status of an imported cell that looks column-shifted (data/quality.py): shown, out of the mean by default
SUSPECT = "suspect"
PROJECT_SOURCE = "project"
SOURCES = MappingProxyType({
    PROJECT_SOURCE: "this project's scores",
    PUBLISHED_SOURCE: "IBM model-recycling results (2023)",
})

# Hub metadata shown beside each candidate (service/boards.py reads it; ranking joins it onto the rows)
METADATA_COLUMNS = ("downloads", "likes", "license", "num_params", "last_modified", "pipeline_tag")

# A failed fine-tuning run of seed s is rerun at s + RERUN_STRIDE, s + 2 * RERUN_STRIDE, ...: all are seed slot s
RERUN_STRIDE = 1000
