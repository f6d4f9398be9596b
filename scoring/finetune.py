"""Fine-tune a model on a target: one small readable training loop (nanoGPT's ``train.py`` shape, as functions).

``finetune(model_dir, target, cfg)`` loads the model with a fresh seeded head, trains it with AdamW (``get_lr``:
linear warm-up and decay), evaluates every ``cfg.eval_every_examples`` examples, stops after ``cfg.patience_examples``
without improvement, restores the best weights and scores the test split. Examples are tokenized once, bucketed by
length into micro-batches padded to their own longest example; ``cfg.accumulation_steps`` make one optimizer step.
Everything is seeded by ``cfg.seed``: a candidate identical to its base has an intertraining gain of exactly 0.
"""

from __future__ import annotations

import collections
import contextlib
import itertools
import logging
import math
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import NamedTuple

import torch
import torch.nn.functional as F
from tqdm import tqdm
from transformers import AutoConfig, AutoModelForSequenceClassification, AutoTokenizer
from transformers.models.auto.modeling_auto import MODEL_FOR_SEQUENCE_CLASSIFICATION_MAPPING

from data.errors import ScoringError
from scoring.config import FinetuneConfig
from scoring.examples import Example, TargetData

logger = logging.getLogger(__name__)

LOG_EVERY_STEPS = 50  # one summary line (and one host sync of the losses) every this many optimizer steps
BUCKET_MICRO_BATCHES = 100  # length-sort within chunks of this many micro-batches
TOKENIZE_CHUNK = 10_000  # examples per tokenizer call


@dataclass(frozen=True, slots=True, kw_only=True)
class FinetuneResult:
    """What one fine-tuning run reports; scores are accuracy or Spearman correlation, higher is better."""

    eval_score: float  # best score on the eval split (model selection)
    test_score: float  # score of the restored best weights on the test split: the reported number
    best_step: int  # optimizer step whose weights were restored
    steps: int  # optimizer steps taken (fewer than planned when stopped early)
    examples_seen: int
    train_examples: int  # size of the (subsampled) train set
    duration_s: float  # wall time of the whole run, loading and evaluation included
    examples_per_s: float  # training throughput, evaluation excluded
    history: tuple[tuple[int, float, float], ...]  # (step, mean train loss since last eval, eval score)
    dropout_rates: dict[str, float] | None = None  # the encoder's rates under dropout="guided"
    test_classes: int = 0  # distinct classes (distinct values for a regression) predicted on the test split
    majority_rate: float = math.nan  # share of the test split's most frequent label (NaN for a regression)
    loss_start: float = math.nan  # mean training loss of the first steps (up to LOSS_WINDOW)
    loss_end: float = math.nan  # and of the last ones


LOSS_WINDOW = 10  # steps averaged for loss_start and loss_end


@dataclass(frozen=True, slots=True)
class Evaluation:
    score: float
    classes: int  # distinct predictions
    majority_rate: float  # share of the most frequent label; NaN for a regression


class Batch(NamedTuple):
    """One padded micro-batch: model inputs (``input_ids``, ``attention_mask``, maybe ``token_type_ids``)."""

    inputs: dict[str, torch.Tensor]
    labels: torch.Tensor

    def to(self, device: torch.device | str) -> Batch:
        return Batch({k: v.to(device, non_blocking=True) for k, v in self.inputs.items()},
                     self.labels.to(device, non_blocking=True))


@dataclass(frozen=True, slots=True)
class Encoded:
    """A tokenized split: right-padded token ids (``int32``, trimmed to the longest example), lengths, labels."""

    input_ids: torch.Tensor  # [n, longest]
    token_type_ids: torch.Tensor | None  # [n, longest], only for tokenizers that produce them
    lengths: torch.Tensor  # [n]
    labels: torch.Tensor  # [n], long for classification, float for regression


def load_classifier(model_dir: Path, num_labels: int, *, seed: int):
    """Load ``model_dir`` as a sequence classifier with a fresh head drawn from ``seed``; returns (model, tokenizer).

    The encoder comes from the checkpoint (safetensors only, no remote code); any head it has is re-initialised,
    so a candidate and its base start from the same head. ``num_labels=1`` makes a regression model (MSE loss).
    """
    model_dir = Path(model_dir)
    if not any(model_dir.glob("*.safetensors")):
        raise ScoringError(f"{model_dir} has no safetensors weights")
    try:
        config = AutoConfig.from_pretrained(model_dir, trust_remote_code=False)
    except (OSError, ValueError) as e:
        raise ScoringError(f"{model_dir}: unreadable config: {e}") from e
    if type(config) not in MODEL_FOR_SEQUENCE_CLASSIFICATION_MAPPING:
        raise ScoringError(f"{model_dir}: model type {config.model_type!r} has no sequence-classification head")
    problem_type = "regression" if num_labels == 1 else "single_label_classification"
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        try:
            model = AutoModelForSequenceClassification.from_pretrained(
                model_dir, num_labels=num_labels, problem_type=problem_type, ignore_mismatched_sizes=True,
                use_safetensors=True, trust_remote_code=False,
            )
            tokenizer = AutoTokenizer.from_pretrained(model_dir)
        except (OSError, ValueError) as e:
            raise ScoringError(f"{model_dir}: cannot load as a classifier: {e}") from e
        _reset_head(model, model_dir, seed)
    tokenizer.padding_side = "right"  # collate() slices padded rows to the batch's longest example
    return model, tokenizer


@torch.no_grad()
def _reset_head(model, model_dir: Path, seed: int) -> None:
    """Re-initialise every module outside the encoder (``model.base_model``) with the model's own init."""
    prefix = model.base_model_prefix
    if prefix not in dict(model.named_children()):
        raise ScoringError(f"{model_dir}: cannot tell the encoder ({prefix!r}) from the classification head")
    head = [m for name, m in model.named_modules() if name and name.split(".")[0] != prefix]
    for param in (param for module in head for param in module.parameters(recurse=False)):
        param._is_hf_initialized = False  # transformers' init functions skip weights loaded from the checkpoint
    torch.manual_seed(seed)
    for module in head:
        model._init_weights(module)


def get_lr(step: int, total_steps: int, cfg: FinetuneConfig) -> float:
    """Learning rate of optimizer step ``step`` (0-based): linear warm-up, then linear decay to 0 (as transformers)."""
    warmup_steps = math.ceil(cfg.warmup_ratio * total_steps)
    if step < warmup_steps:
        return cfg.lr * step / warmup_steps
    return cfg.lr * max(0.0, (total_steps - step) / max(1, total_steps - warmup_steps))


def encode(tokenizer, examples: Sequence[Example], max_length: int, *, is_regression: bool = False) -> Encoded:
    """Tokenize ``examples`` once, truncated to ``max_length`` tokens (and the tokenizer's own limit)."""
    max_length = min(max_length, tokenizer.model_max_length)
    is_pair = any(e.text_pair is not None for e in examples)
    input_ids = torch.zeros((len(examples), max_length), dtype=torch.int32)
    lengths = torch.zeros(len(examples), dtype=torch.int64)
    has_types = "token_type_ids" in tokenizer.model_input_names
    token_type_ids = torch.zeros_like(input_ids, dtype=torch.int8) if has_types else None
    for start in range(0, len(examples), TOKENIZE_CHUNK):
        chunk = examples[start:start + TOKENIZE_CHUNK]
        pairs = [e.text_pair if e.text_pair is not None else "" for e in chunk] if is_pair else None
        out = tokenizer([e.text for e in chunk], pairs, truncation=True, max_length=max_length,
                        padding="max_length", return_tensors="pt")
        rows = slice(start, start + len(chunk))
        input_ids[rows] = out["input_ids"]
        if has_types:
            token_type_ids[rows] = out["token_type_ids"]
        lengths[rows] = out["attention_mask"].sum(dim=1)
    longest = int(lengths.max()) if len(examples) else 0
    return Encoded(
        input_ids=input_ids[:, :longest].contiguous(),
        token_type_ids=None if token_type_ids is None else token_type_ids[:, :longest].contiguous(),
        lengths=lengths,
        labels=torch.tensor([e.label for e in examples], dtype=torch.float32 if is_regression else torch.int64),
    )


def collate(data: Encoded, indices: torch.Tensor) -> Batch:
    """The examples at ``indices``, padded to the longest of them."""
    lengths = data.lengths[indices]
    longest = int(lengths.max())
    inputs = {
        "input_ids": data.input_ids[indices, :longest].long(),
        "attention_mask": (torch.arange(longest) < lengths[:, None]).long(),
    }
    if data.token_type_ids is not None:
        inputs["token_type_ids"] = data.token_type_ids[indices, :longest].long()
    return Batch(inputs, data.labels[indices])


def epoch_micro_batches(data: Encoded, micro_batch_size: int, generator: torch.Generator) -> list[torch.Tensor]:
    """Index tensors of one epoch's micro-batches: shuffled, length-sorted within chunks, then batch order shuffled."""
    order = torch.randperm(len(data.labels), generator=generator)
    chunk_size = BUCKET_MICRO_BATCHES * micro_batch_size
    batches: list[torch.Tensor] = []
    for chunk in order.split(chunk_size):
        chunk = chunk[torch.argsort(data.lengths[chunk], stable=True)]
        batches.extend(chunk.split(micro_batch_size))
    return [batches[i] for i in torch.randperm(len(batches), generator=generator).tolist()]


def eval_batches(data: Encoded, batch_size: int) -> list[Batch]:
    """Fixed micro-batches for evaluation, sorted by length so that little is padded."""
    order = torch.argsort(data.lengths, stable=True)
    return [collate(data, indices) for indices in order.split(batch_size)]


def _loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Summed (not mean) loss of a micro-batch: cross-entropy, or squared error for one output (regression)."""
    logits = logits.float()
    if logits.shape[-1] == 1:
        return F.mse_loss(logits.squeeze(-1), labels.float(), reduction="sum")
    return F.cross_entropy(logits, labels, reduction="sum")


def train_step(model, optimizer, micro_batches: Sequence[Batch], cfg: FinetuneConfig, *,
               device: torch.device | str = "cpu") -> torch.Tensor:
    """One optimizer step over ``micro_batches``; returns the mean loss per example as a 0-d tensor (no host sync).
    Summed losses are divided by the step's example count, so micro-batches weigh by size. The caller sets lr."""
    num_examples = sum(len(batch.labels) for batch in micro_batches)
    step_loss = torch.zeros((), device=device)
    for batch in micro_batches:
        batch = batch.to(device)
        with _autocast(device, cfg):
            logits = model(**batch.inputs).logits
        loss = _loss(logits, batch.labels) / num_examples
        loss.backward()
        step_loss += loss.detach()
    if cfg.grad_clip > 0:
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip, foreach=True)
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    return step_loss


def evaluate(model, batches: Sequence[Batch], metric: str) -> float:
    """Accuracy, or Spearman correlation for a regression model (``metric="spearman"``), over ``batches``."""
    return evaluate_detail(model, batches, metric).score


@torch.inference_mode()
def evaluate_detail(model, batches: Sequence[Batch], metric: str) -> Evaluation:
    """The score, how many distinct predictions the model made, and the majority-class rate of the labels."""
    if metric not in ("accuracy", "spearman"):
        raise ValueError(f"unknown metric {metric!r}")
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    predictions, labels = [], []
    for batch in batches:
        batch = batch.to(device)
        logits = model(**batch.inputs).logits.float()
        predictions.append(logits.squeeze(-1) if metric == "spearman" else logits.argmax(dim=-1))
        labels.append(batch.labels)
    model.train(was_training)
    predictions, targets = torch.cat(predictions).cpu(), torch.cat(labels).cpu()
    classes = int(torch.unique(predictions).numel())
    if metric == "spearman":
        return Evaluation(spearman(predictions, targets), classes, math.nan)
    majority = torch.unique(targets, return_counts=True)[1].max().item() / len(targets)
    return Evaluation((predictions == targets).double().mean().item(), classes, majority)


def spearman(x: torch.Tensor, y: torch.Tensor) -> float:
    """Spearman's rank correlation with average ranks for ties; 0.0 when either side is constant."""
    rx, ry = _average_ranks(x.double()), _average_ranks(y.double())
    rx, ry = rx - rx.mean(), ry - ry.mean()
    denominator = (rx.square().sum() * ry.square().sum()).sqrt()
    return 0.0 if denominator == 0 else (rx @ ry / denominator).item()


def _average_ranks(values: torch.Tensor) -> torch.Tensor:
    """1-based ranks; tied values share the mean of the ranks they span (pandas' ``rank(method="average")``)."""
    sorted_values, order = torch.sort(values, stable=True)
    _, inverse, counts = torch.unique_consecutive(sorted_values, return_inverse=True, return_counts=True)
    group_ranks = counts.cumsum(0).double() - (counts.double() - 1) / 2
    ranks = torch.empty_like(values)
    ranks[order] = group_ranks[inverse]
    return ranks


def finetune(model_dir: Path, target: TargetData, cfg: FinetuneConfig, *, device: str = "cpu",
             verbose: bool = False, cache_dir: Path | None = None, local_root: Path | None = None) -> FinetuneResult:
    """Fine-tune the model in ``model_dir`` on ``target`` and score it; see the module docstring.
    ``dropout="guided"`` sets the encoder's dropout rates from the model's Fisher scores (scoring/fisher.py,
    computed once per checkpoint and cached under ``cache_dir``; the "local" reference corpus is read from
    ``local_root``, default ../shared/datasets)."""
    start = time.perf_counter()
    num_labels = 1 if target.metric == "spearman" else target.num_labels
    model, tokenizer = load_classifier(model_dir, num_labels, seed=cfg.seed)
    rates = None
    if cfg.dropout == "guided":
        from scoring.fisher import apply_rates, guided_rates, model_fisher_scores

        fisher = model_fisher_scores(model_dir, cfg.guided, cache_dir=cache_dir, local_root=local_root, device=device)
        rates = guided_rates(fisher, p_max=cfg.guided.p_max, p_min=cfg.guided.p_min)
        apply_rates(model, rates)
    result = train_classifier(model, tokenizer, target, cfg, device=device, verbose=verbose)
    return replace(result, duration_s=time.perf_counter() - start, dropout_rates=rates)


# (train split, config, generator) -> the micro-batches of each optimizer step, without end
StepStream = Callable[[Encoded, FinetuneConfig, torch.Generator], Iterator[list[Batch]]]


def train_classifier(model, tokenizer, target: TargetData, cfg: FinetuneConfig, *, device: str = "cpu",
                     verbose: bool = False, step_stream: StepStream | None = None) -> FinetuneResult:
    """Train ``model`` (in place, left on ``device`` with the best weights) on ``target``; the loop itself.
    ``step_stream(train, cfg, generator)`` yields each optimizer step's micro-batches (default: epoch after
    epoch, ``_steps``); the loop takes ``cfg.max_steps`` (or ``max_epochs`` worth) of them."""
    if cfg.dropout not in ("standard", "guided"):
        raise ValueError(f"dropout must be 'standard' or 'guided', got {cfg.dropout!r}")
    start = time.perf_counter()
    cuda_devices = [torch.device(device).index or 0] if torch.device(device).type == "cuda" else []
    with _deterministic(), torch.random.fork_rng(devices=cuda_devices):
        torch.manual_seed(cfg.seed)
        generator = torch.Generator().manual_seed(cfg.seed)  # data order and subsamples
        train, eval_data, test_data = _encode_splits(tokenizer, target, cfg, generator)
        eval_set = [batch.to(device) for batch in eval_batches(eval_data, 2 * cfg.micro_batch_size)]
        steps_per_epoch = math.ceil(math.ceil(len(train.labels) / cfg.micro_batch_size) / cfg.accumulation_steps)
        total_steps = max(cfg.min_steps, cfg.max_steps or cfg.max_epochs * steps_per_epoch)
        model.to(device).train()
        optimizer = _make_optimizer(model, cfg, device)
        loop = _TrainLoop(model, optimizer, target, cfg, eval_set, total_steps, device=device, start=start)
        loop.run((step_stream or _steps)(train, cfg, generator), verbose=verbose)
        if loop.best_step != loop.step:
            model.load_state_dict(loop.best_state)
        with _autocast(device, cfg):
            test = evaluate_detail(model, eval_batches(test_data, 2 * cfg.micro_batch_size), target.metric)
    test_score = test.score
    examples_per_s = loop.examples_seen / max(loop.train_s, 1e-9)
    logger.info("target %s: test %s %.4f (best step %d of %d, %.0f examples/s)", target.name, target.metric,
                test_score, loop.best_step, loop.step, examples_per_s)
    return FinetuneResult(
        eval_score=loop.best_score, test_score=test_score, best_step=loop.best_step, steps=loop.step,
        examples_seen=loop.examples_seen, train_examples=len(train.labels), duration_s=time.perf_counter() - start,
        examples_per_s=examples_per_s, history=tuple(loop.history), test_classes=test.classes,
        majority_rate=test.majority_rate, loss_start=_mean(loop.first_losses), loss_end=_mean(loop.last_losses),
    )


def _mean(values) -> float:
    return sum(values) / len(values) if values else math.nan


class _TrainLoop:
    """The optimizer steps of one run, with periodic loss lines, evaluations, the best weights and early stopping.
    ``run`` leaves the totals in its attributes: ``step``, ``examples_seen``, ``best_*``, ``history``, ``train_s``
    (training time, evaluation excluded)."""

    def __init__(self, model, optimizer, target: TargetData, cfg: FinetuneConfig, eval_set: list[Batch],
                 total_steps: int, *, device: str, start: float) -> None:
        self.model, self.optimizer, self.target, self.cfg = model, optimizer, target, cfg
        self.eval_set, self.total_steps, self.device, self.start = eval_set, total_steps, device, start
        self.step = self.examples_seen = self.best_step = self.best_examples = 0
        self.best_score, self.best_state, self.next_eval = -math.inf, None, cfg.eval_every_examples
        self.pending: list[torch.Tensor] = []  # step losses not yet copied to the host
        self.window: list[float] = []  # step losses since the last evaluation
        self.first_losses: list[float] = []  # the first LOSS_WINDOW step losses
        self.last_losses: collections.deque[float] = collections.deque(maxlen=LOSS_WINDOW)
        self.history: list[tuple[int, float, float]] = []
        self.eval_s = self.train_s = 0.0

    def run(self, steps: Iterator[list[Batch]], *, verbose: bool) -> None:
        loop_start = time.perf_counter()
        progress = tqdm(total=self.total_steps, desc=f"target {self.target.name}", disable=not verbose)
        for micro_batches in itertools.islice(steps, self.total_steps):
            lr = get_lr(self.step, self.total_steps, self.cfg)
            for group in self.optimizer.param_groups:
                group["lr"] = lr
            self.pending.append(train_step(self.model, self.optimizer, micro_batches, self.cfg, device=self.device))
            self.step += 1
            self.examples_seen += sum(len(batch.labels) for batch in micro_batches)
            progress.update()
            is_eval_due = self.examples_seen >= self.next_eval or self.step == self.total_steps
            if self.step % LOG_EVERY_STEPS == 0 or is_eval_due:
                self._log_losses(lr, progress)
            if is_eval_due and self._evaluate():
                break
        progress.close()
        self.train_s = time.perf_counter() - loop_start - self.eval_s

    def _log_losses(self, lr: float, progress: tqdm) -> None:
        """Copy the pending losses to the host (raising on a non-finite one) and log the latest."""
        values = _check_finite(self.pending, self.step, self.target.name)
        self.window += values
        self.first_losses += values[:LOSS_WINDOW - len(self.first_losses)]
        self.last_losses.extend(values)
        self.pending.clear()
        logger.info("target %s: step %d/%d loss %.4f lr %.2e elapsed %.1fs", self.target.name, self.step,
                    self.total_steps, self.window[-1], lr, time.perf_counter() - self.start)
        progress.set_postfix(loss=f"{self.window[-1]:.4f}")

    def _evaluate(self) -> bool:
        """Score the eval split, keep the weights if best so far; True when out of patience (stop early)."""
        eval_start = time.perf_counter()
        with _autocast(self.device, self.cfg):
            score = evaluate(self.model, self.eval_set, self.target.metric)
        self.history.append((self.step, sum(self.window) / len(self.window), score))
        self.window.clear()
        while self.next_eval <= self.examples_seen:
            self.next_eval += self.cfg.eval_every_examples
        if score > self.best_score:
            self.best_score, self.best_step, self.best_examples = score, self.step, self.examples_seen
            self.best_state = {k: v.detach().to("cpu", copy=True) for k, v in self.model.state_dict().items()}
        is_out_of_patience = (self.examples_seen - self.best_examples >= self.cfg.patience_examples
                              and self.step >= self.cfg.min_steps)
        logger.info("target %s: step %d eval %s %.4f (best %.4f at step %d)%s", self.target.name, self.step,
                    self.target.metric, score, self.best_score, self.best_step,
                    ", early stop" if is_out_of_patience else "")
        self.eval_s += time.perf_counter() - eval_start
        return is_out_of_patience


def _steps(train: Encoded, cfg: FinetuneConfig, generator: torch.Generator) -> Iterator[list[Batch]]:
    """The micro-batches of each optimizer step, epoch after epoch, without end (collated lazily)."""
    while True:
        micro = epoch_micro_batches(train, cfg.micro_batch_size, generator)
        for i in range(0, len(micro), cfg.accumulation_steps):
            yield [collate(train, indices) for indices in micro[i:i + cfg.accumulation_steps]]


def _make_optimizer(model, cfg: FinetuneConfig, device: str) -> torch.optim.Optimizer:
    """AdamW with weight decay on matrices only: biases and LayerNorm weights (all 1-d parameters) are exempt."""
    params = [p for p in model.parameters() if p.requires_grad]
    groups = [{"params": [p for p in params if p.ndim >= 2], "weight_decay": cfg.weight_decay},
              {"params": [p for p in params if p.ndim < 2], "weight_decay": 0.0}]
    is_fused = torch.device(device).type in ("cuda", "cpu")
    return torch.optim.AdamW(groups, lr=cfg.lr, fused=is_fused or None, foreach=None if is_fused else True)


def _subsample(examples: Sequence[Example], limit: int | None, generator: torch.Generator) -> Sequence[Example]:
    """At most ``limit`` examples, drawn with ``generator`` and kept in their original order."""
    if limit is None or len(examples) <= limit:
        return examples
    keep = torch.randperm(len(examples), generator=generator)[:limit].sort().values
    return [examples[i] for i in keep.tolist()]


def _encode_splits(tokenizer, target: TargetData, cfg: FinetuneConfig, generator: torch.Generator):
    """Train and eval (seeded subsamples) and test, tokenized once; raises on empty splits or unknown labels."""
    splits = {"train": _subsample(target.train, cfg.max_train_examples, generator),
              "eval": _subsample(target.eval, cfg.max_eval_examples, generator), "test": target.test}
    is_regression = target.metric == "spearman"
    encoded = {name: encode(tokenizer, split, cfg.max_length, is_regression=is_regression)
               for name, split in splits.items()}
    for name, split in encoded.items():
        if not len(split.labels):
            raise ScoringError(f"target {target.name}: empty {name} split")
        if not is_regression and not 0 <= int(split.labels.min()) <= int(split.labels.max()) < target.num_labels:
            raise ScoringError(f"target {target.name}: {name} labels outside [0, {target.num_labels})")
    return encoded["train"], encoded["eval"], encoded["test"]


def _check_finite(losses: list[torch.Tensor], step: int, target_name: str) -> list[float]:
    """Copy the pending step losses to the host (one sync); raise naming the first non-finite step."""
    values = torch.stack(losses).tolist()
    for first_step, value in enumerate(values, start=step - len(values) + 1):
        if not math.isfinite(value):
            raise ScoringError(f"target {target_name}: non-finite training loss {value} at step {first_step}")
    return values


def uses_bf16(device: torch.device | str, cfg: FinetuneConfig) -> bool:
    """Whether a run autocasts to bfloat16: ``cfg.bf16`` on CUDA, or on a CPU with native bf16 arithmetic
    (AVX512-BF16 or AMX: 1.7-1.9x float32's training throughput on the EPYC measured); float32 elsewhere."""
    device_type = torch.device(device).type
    return cfg.bf16 and (device_type == "cuda" or (device_type == "cpu" and cpu_has_bf16()))


def cpu_has_bf16() -> bool:
    """True on CPUs whose instructions multiply bfloat16 natively (elsewhere bf16 is emulated, and slower)."""
    checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(getattr(torch.cpu, name, lambda: False)() for name in checks)


def _autocast(device: torch.device | str, cfg: FinetuneConfig) -> torch.autocast:
    return torch.autocast(torch.device(device).type, dtype=torch.bfloat16, enabled=uses_bf16(device, cfg))


@contextlib.contextmanager
def _deterministic():
    """``torch.use_deterministic_algorithms(True, warn_only=True)`` inside the block only, without its filling of
    every new tensor with NaN (``fill_uninitialized_memory``: a memset per allocation, ~8% of a CPU step; every
    tensor a step allocates is written before it is read)."""
    was_enabled = torch.are_deterministic_algorithms_enabled()
    was_warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
    was_filling = torch.utils.deterministic.fill_uninitialized_memory
    torch.use_deterministic_algorithms(True, warn_only=True)
    torch.utils.deterministic.fill_uninitialized_memory = False
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(was_enabled, warn_only=was_warn_only)
        torch.utils.deterministic.fill_uninitialized_memory = was_filling
