"""Every metric the project stores or derives, declared once with its direction.

Metric keys are stable snake_case strings used as database values and column keys: once released,
never rename one (add a new key). Values are stored in natural units (fractions, nats); scaling for
display happens in ``ranking/columns.py``.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType


@dataclass(frozen=True, slots=True, kw_only=True)
class MetricSpec:
    key: str
    label: str
    higher_is_better: bool
    unit: str
    description: str


def _specs(*specs: MetricSpec) -> MappingProxyType:
    return MappingProxyType({spec.key: spec for spec in specs})


METRICS: MappingProxyType[str, MetricSpec] = _specs(
    MetricSpec(key="target_score", label="score", higher_is_better=True, unit="fraction",
               description="Score on one target after fine-tuning (accuracy; Spearman for STS-B)."),
    MetricSpec(key="lr_choice", label="learning rate", higher_is_better=False, unit="",
               description="The learning rate the base's sweep chose for a target (0 with status 'dropped': the "
                           "target left the suite)."),
    MetricSpec(key="intertraining_gain", label="gain", higher_is_better=True, unit="points",
               description="Target score of the candidate minus the mean over seeds of the base's score, "
                           "same protocol."),
    MetricSpec(key="probe_accuracy", label="probe", higher_is_better=True, unit="fraction",
               description="Accuracy of a linear classifier on frozen features (stage 1; the site's mnli_lp)."),
    MetricSpec(key="knn_accuracy", label="kNN", higher_is_better=True, unit="fraction",
               description="Accuracy of a k-nearest-neighbour vote (cosine, frozen mean-pooled features) on one "
                           "target's test split, the train split as neighbours: a target-data baseline."),
    MetricSpec(key="logme_target", label="LogME", higher_is_better=True, unit="nats",
               description="LogME (You et al. 2021) of one target's train labels on frozen mean-pooled features "
                           "(the kNN's): the maximum log evidence per example of a Bayesian linear model."),
    MetricSpec(key="cv_probe_accuracy", label="probe (your data)", higher_is_better=True, unit="fraction",
               description="Cross-validated accuracy of a linear classifier on frozen features of the user's own "
                           "labelled rows (a personal ranking's estimator)."),
    MetricSpec(key="cv_knn_accuracy", label="kNN (your data)", higher_is_better=True, unit="fraction",
               description="Cross-validated accuracy of the kNN vote on frozen features of the user's own rows."),
    MetricSpec(key="logme", label="LogME (your data)", higher_is_better=True, unit="nats",
               description="LogME (You et al. 2021): the maximum log evidence per row of a Bayesian linear model "
                           "of the user's labels on frozen features."),
    MetricSpec(key="free_energy", label="free energy", higher_is_better=False, unit="nats",
               description="n·L_n(w*) + λ̂·log n on the reference corpus: lower means more nearby parameters "
                           "fit well. Not a validated predictor of a good start: on the study's base it fails its "
                           "known-answer controls (a re-initialised last block scores lower)."),
    MetricSpec(key="llc_mean", label="LLC", higher_is_better=False, unit="",
               description="Local learning coefficient λ̂ estimated by SGLD (mean over chains)."),
    MetricSpec(key="llc_std", label="LLC std", higher_is_better=False, unit="",
               description="Spread of λ̂ across SGLD chains."),
    MetricSpec(key="init_loss", label="L_n(w*)", higher_is_better=False, unit="nats",
               description="Pretraining loss at the checkpoint on the reference corpus."),
    MetricSpec(key="labels_saved", label="labels saved", higher_is_better=True, unit="labels",
               description="Target labels the candidate saves against the base at the same accuracy (LoRA)."),
    MetricSpec(key="lora_accuracy", label="LoRA accuracy", higher_is_better=True, unit="fraction",
               description="Test accuracy of a LoRA fine-tune on n labels (target 'name@n'; sample efficiency)."),
)

PUBLISHED_SOURCE = "published-2023"
# the status of an imported cell that looks column-shifted (data/quality.py): shown, out of the mean by default
SUSPECT = "suspect"
PROJECT_SOURCE = "project"
SOURCES = MappingProxyType({
    PROJECT_SOURCE: "this project's scores",
    PUBLISHED_SOURCE: "IBM model-recycling results (2023)",
})


def metric(key: str) -> MetricSpec:
    try:
        return METRICS[key]
    except KeyError:
        raise KeyError(f"unknown metric {key!r}; known: {', '.join(sorted(METRICS))}") from None


# Hub metadata shown beside each candidate (service/boards.py reads it; ranking joins it onto the rows)
METADATA_COLUMNS = ("downloads", "likes", "license", "num_params", "last_modified", "pipeline_tag")

# A failed fine-tuning run of seed s is rerun at s + RERUN_STRIDE, s + 2 * RERUN_STRIDE, ...: all are seed slot s
RERUN_STRIDE = 1000
