"""Every hyper-parameter of the scorers, in frozen dataclasses; the defaults are the published protocol.

Make variants with ``dataclasses.replace(cfg, lr=...)``. Each stored score carries the hash of its
``protocol(scorer, config, data)`` and that canonical JSON, so scores of different protocols are never
compared. The protocol leaves out the replicate fields (``REPLICATE_FIELDS``: seeds have their own column,
and how many seeds ran does not change what one run measures); every other field is in it.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, replace
from types import MappingProxyType
from typing import Literal


@dataclass(frozen=True, slots=True, kw_only=True)
class GuidedDropoutConfig:
    """Guided dropout (scoring/fisher.py): per-module rates from the diagonal Fisher on reference text."""

    num_examples: int = 256  # N reference sequences for the Fisher (the paper used a Wikipedia sample)
    seq_len: int = 64
    p_max: float = 0.1
    p_min: float = 0.0
    chunk: int = 8  # examples per vmapped gradient chunk (memory: chunk x parameters)
    sample_seed: int = 0  # which reference sequences: part of the protocol, unlike a run's seed
    corpus: str = "local"  # the reference text, as for the free energy (scoring/reference_corpus.py)


GUIDED = GuidedDropoutConfig()


@dataclass(frozen=True, slots=True, kw_only=True)
class FinetuneConfig:
    """One fine-tuning run of a model on a target (the model-recycling site's protocol by default)."""

    profile: str = "published"
    lr: float = 5e-5
    warmup_ratio: float = 0.006  # 0.6% of the steps
    weight_decay: float = 0.01
    batch_size: int = 256  # examples per optimizer step (micro_batch_size x accumulation)
    micro_batch_size: int = 32  # examples per forward pass
    max_epochs: int = 10
    max_steps: int | None = None  # overrides max_epochs when set
    min_steps: int = 0  # the protocol floor: at least this many optimizer steps (epochs repeat; no early stop before)
    eval_every_examples: int = 12_800
    patience_examples: int = 256_000  # early stopping: no improvement for this many examples
    max_length: int = 128
    max_train_examples: int | None = None  # subsample the train split (seeded) when set
    max_eval_examples: int | None = None
    seed: int = 0
    bf16: bool = True  # bf16 autocast on CUDA and on CPUs with native bf16 (finetune.uses_bf16); else float32
    dropout: Literal["standard", "guided"] = "standard"
    guided: GuidedDropoutConfig = GUIDED  # the Fisher-ranked rates, used when dropout="guided"
    grad_clip: float = 1.0

    def __post_init__(self):
        if self.batch_size % self.micro_batch_size:
            raise ValueError(f"batch_size {self.batch_size} must be a multiple of micro_batch_size "
                             f"{self.micro_batch_size}")
        if not 0 <= self.warmup_ratio < 1:
            raise ValueError(f"warmup_ratio must be in [0, 1), got {self.warmup_ratio}")
        if self.lr <= 0 or self.max_epochs <= 0 or self.max_length <= 0:
            raise ValueError("lr, max_epochs and max_length must be positive")
        if self.min_steps < 0:
            raise ValueError(f"min_steps must be >= 0, got {self.min_steps}")

    @property
    def accumulation_steps(self) -> int:
        return self.batch_size // self.micro_batch_size


PUBLISHED = FinetuneConfig()
# Sized for 2 CPU cores: a few hundred steps on a subsample, short sequences. Real, just small.
QUICK = replace(
    PUBLISHED, profile="quick", lr=1e-4, warmup_ratio=0.06, batch_size=32, micro_batch_size=32, max_epochs=3,
    eval_every_examples=640, patience_examples=1920, max_length=64, max_train_examples=1000,
    max_eval_examples=500,
)
PROFILES = MappingProxyType({"published": PUBLISHED, "quick": QUICK})


def profile(name: str) -> FinetuneConfig:
    try:
        return PROFILES[name]
    except KeyError:
        raise KeyError(f"unknown profile {name!r}; choose one of {', '.join(PROFILES)}") from None


@dataclass(frozen=True, slots=True, kw_only=True)
class ProbeConfig:
    """Stage 1: a linear classifier on frozen, mean-pooled features (the site's ``mnli_lp``)."""

    max_length: int = 128
    batch_size: int = 64
    # Stage 1 must cost a small fraction of a full scoring (goal <= 1/20): 1,000 + 500 rows keep the fit
    # well determined (hidden size x classes weights, L2) at a test standard error of about 2 points.
    max_train_examples: int | None = 1000
    max_test_examples: int | None = 500
    l2: float = 1e-3  # weight decay of the logistic regression, on standardized features
    max_iter: int = 200  # L-BFGS iterations (the fit is convex: it converges long before)
    seed: int = 0


PROBE = ProbeConfig()


@dataclass(frozen=True, slots=True, kw_only=True)
class IntertrainingConfig:
    """The intertraining scorer: which suite, how many seeds, and the fine-tuning protocol."""

    finetune: FinetuneConfig = PUBLISHED
    suite: str = "quick"
    base_seeds: int = 3  # the model-recycling site used 20
    candidate_seeds: int = 1
    max_reruns: int = 2  # a failed run (scoring/run_check.py) is rerun with seed + RERUN_STRIDE, at most this often
    # The learning-rate sweep (scoring/lr_sweep.py): when set, the lr of each (base, target) is the one of these at
    # which none of the base's seeds fails and its mean eval score is highest (finetune.lr is then not read); a
    # target where no lr qualifies, or where the base's mean test score is under min_base_margin above the
    # majority-class rate (Spearman: under min_base_margin), is dropped from the suite with a stored reason.
    lrs: tuple[float, ...] = ()
    min_base_margin: float = 0.10
    # keep at most this many targets: swept in the suite's order until this many pass, the rest dropped unswept
    # (None: every target that passes)
    max_targets: int | None = None

    def __post_init__(self):
        if any(lr <= 0 for lr in self.lrs) or len(set(self.lrs)) != len(self.lrs):
            raise ValueError(f"lrs must be distinct positive learning rates, got {self.lrs}")
        if not 0 <= self.min_base_margin < 1:
            raise ValueError(f"min_base_margin must be in [0, 1), got {self.min_base_margin}")
        if self.max_targets is not None and self.max_targets < 1:
            raise ValueError(f"max_targets must be >= 1 or None, got {self.max_targets}")


@dataclass(frozen=True, slots=True, kw_only=True)
class LinearProbeConfig:
    """The stage-1 scorer: the probe protocol, on one target of a suite."""

    probe: ProbeConfig = PROBE
    target: str = ""  # "" = the suite's default probe target
    suite: str = "quick"


@dataclass(frozen=True, slots=True, kw_only=True)
class KnnConfig:
    """kNN accuracy on frozen features of every classification target of a suite (scoring/knn.py): a baseline
    that reads target data, as the linear probe does; the features are the probe's (mean-pooled, cached)."""

    probe: ProbeConfig = PROBE  # feature extraction and train/test subsampling, shared with the probe's cache
    k: int = 10  # neighbours voting (cosine similarity)
    suite: str = "quick"

    def __post_init__(self):
        if self.k < 1:
            raise ValueError(f"k must be >= 1, got {self.k}")


@dataclass(frozen=True, slots=True, kw_only=True)
class SampleEfficiencyConfig:
    """LoRA accuracy against the number of labels (scoring/sample_efficiency.py).

    Every run at every n takes exactly ``steps`` optimizer steps of ``finetune.batch_size`` examples, drawn from
    back-to-back shuffles of its n labelled examples (epochs repeat as often as the steps need), so a curve
    compares labels at equal compute. The run's length is ``steps`` alone: ``finetune.max_epochs``,
    ``max_steps``, ``patience_examples`` (no early stopping) and ``max_train_examples`` (= n) are not read.
    """

    n_labels: tuple[int, ...] = (32, 128, 512, 2048)
    seeds: int = 2  # runs per n (their mean enters labels_saved, so the count is part of the protocol)
    # optimizer steps per run at every n: 4 n x 2 seeds x 100 = 800 steps per model, about the 850 of the
    # former 5 epochs at batch 32 (5 steps at n = 32 ... 320 at n = 2048)
    steps: int = 100
    rank: int = 8
    alpha: int = 16
    lora_dropout: float = 0.1
    targets: str = "sst2"  # a suite spec (data/targets.py)
    # LoRA needs a larger step than full fine-tuning: on MiniLM/sst2 with 256 labels lr 5e-4 stayed at chance
    # (0.54) and 3e-3 reached 0.80
    finetune: FinetuneConfig = replace(QUICK, lr=3e-3)

    def __post_init__(self):
        if self.steps < 1:
            raise ValueError(f"steps must be >= 1, got {self.steps}")
        if len(set(self.n_labels)) < 3 or min(self.n_labels) < 1:
            raise ValueError(f"n_labels needs at least three distinct positive sizes, got {self.n_labels}")


@dataclass(frozen=True, slots=True, kw_only=True)
class SGLDConfig:
    """Localized SGLD around w* for the local learning coefficient (scoring/llc.py; REFERENCE section 3)."""

    epsilon: float = 1e-4  # step size: the update is (epsilon/2) * drift + N(0, epsilon)
    gamma: float = 1.0  # localization strength; large gamma biases the LLC down (REFERENCE section 3)
    nbeta: float | None = None  # n * beta; None means n / log n (the WBIC temperature)
    num_chains: int = 4
    num_draws: int = 2000  # kept draws per chain, after burn-in
    num_burnin: int = 300  # steps per chain excluded from the average
    batch_size: int = 256
    init_loss_batches: int = 16  # L_n(w*) is averaged over this many batches, not one (devinterp issue #39)
    noise: bool = True  # False only for the known-answer test: SGLD without noise is gradient descent
    mala_every: int = 10  # one kept step in this many gets its MALA acceptance probed (one more forward+backward)
    # "none": plain SGLD; "rmsprop": RMSProp-preconditioned SGLD (Li et al. 2016; Hitchcock & Hoogland, arXiv
    # 2507.21449): V <- alpha V + (1 - alpha) g^2 with g the minibatch gradient of nbeta * L, G = 1 / (sqrt(V) + eps),
    # w <- w + (epsilon/2) G * drift + N(0, epsilon G). G <= 1 / rmsprop_eps: with eps 1 a preconditioned step is
    # never larger than the plain one (where the gradient vanishes, as at a rank-0 w*, G = 1), only smaller where
    # nbeta * L is steep. devinterp's rmsprop_sgld squares the gradient of L itself (its eps 0.1): ours at
    # (epsilon, eps) is devinterp's at lr epsilon / nbeta and eps / nbeta.
    preconditioner: Literal["none", "rmsprop"] = "none"
    # each kept minibatch loss L_B(w_t) enters λ̂ as L_B(w_t) − L_B(w*) + L_n(w*) (scoring/llc.py): the same
    # expectation, without the spread of which rows a batch drew. Tensor data with batch_size < n only
    control_variate: bool = False
    rmsprop_alpha: float = 0.99
    rmsprop_eps: float = 1.0
    seed: int = 0

    def __post_init__(self):
        if self.epsilon <= 0 or self.gamma < 0:
            raise ValueError(f"epsilon must be positive and gamma non-negative, got {self.epsilon}, {self.gamma}")
        if self.nbeta is not None and self.nbeta <= 0:
            raise ValueError(f"nbeta must be positive, got {self.nbeta}")
        if min(self.num_chains, self.num_draws, self.batch_size, self.init_loss_batches) < 1 or self.num_burnin < 0:
            raise ValueError("num_chains, num_draws, batch_size and init_loss_batches must be >= 1, num_burnin >= 0")
        if self.mala_every < 0:
            raise ValueError(f"mala_every must be >= 0 (0: no acceptance probes), got {self.mala_every}")
        if self.preconditioner not in ("none", "rmsprop"):
            raise ValueError(f"preconditioner must be 'none' or 'rmsprop', got {self.preconditioner!r}")
        if not 0 <= self.rmsprop_alpha < 1 or self.rmsprop_eps <= 0:
            raise ValueError(f"rmsprop_alpha must lie in [0, 1) and rmsprop_eps be positive, got "
                             f"{self.rmsprop_alpha}, {self.rmsprop_eps}")


# Free-energy defaults for the last encoder block of a MiniLM-size model on CPU (README, "Free energy"): εγ = 0.01,
# so the localization relaxes in 2/(εγ) = 200 steps and the burn-in is 3 of those; nβ = n / log n. Batches of 8 of
# the 128 windows: the control variate removes the spread of which windows a batch drew (on the base, replicate 1,
# the same chains: the Monte-Carlo SE of λ̂ fell from 0.45 to 0.28).
FREE_ENERGY_SGLD = SGLDConfig(epsilon=1e-5, gamma=1000.0, num_chains=4, num_draws=500, num_burnin=600, batch_size=8,
                              mala_every=20, control_variate=True)


@dataclass(frozen=True, slots=True, kw_only=True)
class ConvergenceGate:
    """When an LLC estimate counts (scoring/llc_gate.py); one that fails a check is stored as unconverged, shown
    as such and never ranked. Every check is taken on the draws after burn-in."""

    min_chains: int = 4  # split R-hat and the chains' standard error need several chains
    max_r_hat: float = 1.05  # split R-hat across chains: the chains sample one distribution
    max_rel_se: float = 0.1  # Monte-Carlo standard error of λ̂ (from the chains' λ̂) over λ̂
    min_acceptance: float = 0.8  # mean MALA acceptance, probed after burn-in only (the step's discretisation error)
    min_burnin_relaxations: float = 3.0  # burn-in >= this many localization relaxation times 2/(εγ)
    max_half_gap: float = 2.0  # λ̂ of the draws' first and second halves within this many standard errors
    # nβ²‖∇L_n(w*)‖²/γ over λ̂: how far w* is from a critical point, in units of λ̂. In the quadratic picture the
    # gradient pulls λ̂ down by that term (scoring/llc_gate.py): at 1 the curvature part is twice λ̂ and λ̂ is a
    # difference of two terms of its own size. Set before the study's run of 2026-12-07; None: not gated
    max_critical_ratio: float | None = 1.0

    def __post_init__(self):
        if self.min_chains < 2 or self.max_r_hat <= 1 or self.max_rel_se <= 0 or self.max_half_gap <= 0:
            raise ValueError("min_chains must be >= 2, max_r_hat > 1, max_rel_se > 0 and max_half_gap > 0")
        if not 0 <= self.min_acceptance <= 1 or self.min_burnin_relaxations < 0:
            raise ValueError("min_acceptance must lie in [0, 1] and min_burnin_relaxations be >= 0")
        if self.max_critical_ratio is not None and self.max_critical_ratio <= 0:
            raise ValueError(f"max_critical_ratio must be positive or None, got {self.max_critical_ratio}")


@dataclass(frozen=True, slots=True, kw_only=True)
class FreeEnergyConfig:
    """The free-energy scorer (scoring/free_energy.py): what is sampled, SGLD settings, the masked-LM reference
    corpus, its two splits (A: every model's head is fitted there; B: L_n and SGLD), the head fit, the optional
    re-centring of the sampled block and the convergence gate."""

    # "last_block": the encoder's last layer, on cached lower-layer states (scoring/llc_block.py; CPU-sized);
    # "encoder": every encoder weight (a GPU's job)
    sampled: Literal["last_block", "encoder"] = "last_block"
    sgld: SGLDConfig = FREE_ENERGY_SGLD
    # "local" = the train text of every dataset of ../shared/datasets; "local:a,b" = those datasets only;
    # otherwise a UTF-8 file, one document per line (scoring/reference_corpus.py)
    corpus: str = "local"
    num_sequences: int = 128  # n: sequences of split B (each replicate its own windows)
    head_sequences: int = 2048  # sequences of split A, disjoint from every B
    seq_len: int = 32  # tokens per sequence, special tokens included
    mask_prob: float = 0.15  # BERT's masking: of the chosen tokens 80% [MASK], 10% random, 10% kept
    # the head (scoring/mlm_head.py): starts as the unigram model, Adam at head_lr until split A's loss moves by
    # < head_tol nats between checks head_check_every steps apart, at most head_max_steps
    head_lr: float = 1e-3
    head_tol: float = 0.01
    head_check_every: int = 50
    head_max_steps: int = 3000
    head_fit_bias: bool = False  # also fit the decoder bias (False: it stays at the log unigram frequencies)
    # before sampling: this many Adam steps (lr recentre_lr) of the sampled weights on split A's loss; w* is then
    # their end point (0: sample at the checkpoint)
    recentre_steps: int = 0
    recentre_lr: float = 1e-4
    gate: ConvergenceGate = ConvergenceGate()
    # the base's first replicate also runs at ε/2 for twice the steps: λ̂ must agree within 2 standard errors
    halving_check: bool = True
    replicates: int = 1  # replicates 0 .. replicates-1 of every model (its split B, masks and chains), scored together
    seed: int = 0  # the replicate: split B's windows and masks, the SGLD chains (the scorer sets sgld.seed)

    def __post_init__(self):
        if self.sampled not in ("last_block", "encoder"):
            raise ValueError(f"sampled must be 'last_block' or 'encoder', got {self.sampled!r}")
        if self.num_sequences < 2 or self.head_sequences < 1 or self.seq_len < 4 or self.head_max_steps < 0:
            raise ValueError("num_sequences must be >= 2, head_sequences >= 1, seq_len >= 4 and head_max_steps >= 0")
        if self.head_lr <= 0 or self.head_tol <= 0 or self.head_check_every < 1:
            raise ValueError("head_lr and head_tol must be positive and head_check_every >= 1")
        if self.replicates < 1:
            raise ValueError(f"replicates must be >= 1, got {self.replicates}")
        if self.recentre_steps < 0 or self.recentre_lr <= 0:
            raise ValueError("recentre_steps must be >= 0 and recentre_lr > 0")
        if not 0 < self.mask_prob < 1:
            raise ValueError(f"mask_prob must be in (0, 1), got {self.mask_prob}")


# Fields that say which replicate a run is, not what it measures: never part of a protocol.
@dataclass(frozen=True, slots=True, kw_only=True)
class UserFeatureConfig:
    """Features of a user's own data (scoring/personal_features.py): the frozen encoder's mean-pooled last hidden
    states, the rows sorted by length so each batch pads little; cached per (model sha, data hash, this config)."""

    max_length: int = 128  # tokens per row (the pair included)
    batch_size: int = 32

    def __post_init__(self):
        if self.max_length < 8 or self.batch_size < 1:
            raise ValueError(f"max_length must be >= 8 and batch_size >= 1, got {self.max_length}, {self.batch_size}")


USER_FEATURES = UserFeatureConfig()


@dataclass(frozen=True, slots=True, kw_only=True)
class CvProbeConfig:
    """Cross-validated linear-probe accuracy on a user's data (scoring/personal_estimators.py)."""

    features: UserFeatureConfig = USER_FEATURES
    folds: int = 5  # stratified; fewer when the smallest class has fewer rows
    l2: float = 1e-3  # as the prefilter's probe (ProbeConfig)
    max_iter: int = 200
    seed: int = 0  # which rows go to which fold

    def __post_init__(self):
        if self.folds < 2 or self.l2 < 0 or self.max_iter < 1:
            raise ValueError("folds must be >= 2, l2 >= 0 and max_iter >= 1")


@dataclass(frozen=True, slots=True, kw_only=True)
class CvKnnConfig:
    """Cross-validated kNN accuracy on a user's data (scoring/personal_estimators.py; the vote of scoring/knn.py)."""

    features: UserFeatureConfig = USER_FEATURES
    folds: int = 5
    k: int = 10
    seed: int = 0

    def __post_init__(self):
        if self.folds < 2 or self.k < 1:
            raise ValueError("folds must be >= 2 and k >= 1")


@dataclass(frozen=True, slots=True, kw_only=True)
class LogmeConfig:
    """LogME on a user's data (scoring/logme.py): the fixed point's iteration cap and tolerance."""

    features: UserFeatureConfig = USER_FEATURES
    max_iter: int = 100
    tol: float = 1e-6

    def __post_init__(self):
        if self.max_iter < 1 or self.tol <= 0:
            raise ValueError("max_iter must be >= 1 and tol > 0")


REPLICATE_FIELDS = frozenset({"seed", "base_seeds", "candidate_seeds", "max_reruns", "replicates"})


@dataclass(frozen=True, slots=True)
class Protocol:
    """What a stored score was measured under: canonical JSON and its sha256 (the ``config_hash`` column)."""

    json: str
    hash: str


def protocol(scorer: str, config, data) -> Protocol:
    """The one protocol of every scorer: its name, its config without replicate fields, and the identity of the
    data it read (dataset or corpus names with their revisions), as canonical JSON (sorted keys, no spaces)."""
    document = {"scorer": scorer, "config": _without_replicates(asdict(config)), "data": data}
    text = json.dumps(document, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return Protocol(json=text, hash=hashlib.sha256(text.encode()).hexdigest())


def _without_replicates(value):
    if isinstance(value, dict):
        return {k: _without_replicates(v) for k, v in value.items() if k not in REPLICATE_FIELDS}
    if isinstance(value, list | tuple):
        return [_without_replicates(v) for v in value]
    return value
