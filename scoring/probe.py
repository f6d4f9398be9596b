"""Linear-probe prefilter (stage 1): logistic regression on frozen features of the candidate.

Features are the mean-pooled last hidden states of the frozen encoder, computed once per (model, target,
config) and cached on disk; the fit is a convex L2-regularized logistic regression solved by full-batch
L-BFGS on standardized features, so it is fast and deterministic.
"""

from __future__ import annotations

import hashlib
import logging
import pickle
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from data.atomic import atomic_path
from data.errors import ScoringError
from scoring.config import ProbeConfig
from scoring.examples import Example, TargetData

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True, kw_only=True)
class ProbeResult:
    accuracy: float
    train_accuracy: float
    train_examples: int
    test_examples: int
    feature_seconds: float
    fit_seconds: float


def _subsample(examples: tuple[Example, ...], limit: int | None, seed: int) -> tuple[Example, ...]:
    if limit is None or len(examples) <= limit:
        return examples
    generator = torch.Generator().manual_seed(seed)
    keep = torch.randperm(len(examples), generator=generator)[:limit].sort().values
    return tuple(examples[i] for i in keep.tolist())


def load_encoder(model_dir: Path):
    """The frozen encoder and its tokenizer, from safetensors only, never remote code."""
    from transformers import AutoModel, AutoTokenizer

    if not any(Path(model_dir).glob("*.safetensors")):
        raise ScoringError(f"{model_dir} has no safetensors weights")
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModel.from_pretrained(model_dir, use_safetensors=True, trust_remote_code=False)
    return model.eval(), tokenizer


LAYERS = ("last", "mean")  # which hidden states are pooled: the last layer's, or the mean of every layer's


@torch.inference_mode()
def extract_features(model, tokenizer, examples: tuple[Example, ...], cfg: ProbeConfig,
                     device: str = "cpu", layers: str = "last") -> torch.Tensor:
    """Mean-pooled hidden states, one row per example (float32, on CPU): the last layer's (``layers="last"``), or
    the mean over the encoder's layers of each layer's mean-pooled states (``"mean"``; the embedding layer left
    out), as TransformerRanker's layer mean.

    Every example is tokenized once; batches are cut from the examples sorted by token count, each holding at
    most ``cfg.batch_size × cfg.max_length`` padded tokens (the memory of a full batch of the longest rows), so
    short rows go many to a batch and almost nothing is padding."""
    if layers not in LAYERS:
        raise ValueError(f"layers must be one of {LAYERS}, got {layers!r}")
    model.to(device)
    encoded = _tokenized(tokenizer, examples, cfg.max_length)
    out = torch.empty(len(examples), model.config.hidden_size)
    for index in token_batches([len(ids) for ids in encoded["input_ids"]], cfg.batch_size * cfg.max_length):
        batch = tokenizer.pad({k: [v[i] for i in index] for k, v in encoded.items()}, return_tensors="pt").to(device)
        output = model(**batch, output_hidden_states=layers == "mean")
        mask = batch["attention_mask"].unsqueeze(-1).float()
        states = output.hidden_states[1:] if layers == "mean" else (output.last_hidden_state,)
        pooled = [(h.float() * mask).sum(1) / mask.sum(1).clamp(min=1) for h in states]
        out[index] = torch.stack(pooled).mean(0).cpu()
    return out


def _tokenized(tokenizer, examples: tuple[Example, ...], max_length: int) -> dict[str, list]:
    """Each example's token ids (and the tokenizer's other fields), unpadded, in order: a pair as a pair, a single
    text as a single text."""
    singles = [i for i, e in enumerate(examples) if e.text_pair is None]
    pairs = [i for i, e in enumerate(examples) if e.text_pair is not None]
    parts = []
    if singles:
        parts.append((singles, tokenizer([examples[i].text for i in singles], truncation=True, max_length=max_length)))
    if pairs:
        parts.append((pairs, tokenizer([examples[i].text for i in pairs], [examples[i].text_pair for i in pairs],
                                       truncation=True, max_length=max_length)))
    keys = set(parts[0][1].keys()).intersection(*(p[1].keys() for p in parts)) if parts else set()
    encoded: dict[str, list] = {k: [None] * len(examples) for k in keys}
    for index, part in parts:
        for k in keys:
            for i, value in zip(index, part[k], strict=True):
                encoded[k][i] = value
    return encoded


def token_batches(lengths: list[int], max_tokens: int) -> list[list[int]]:
    """Indices of ``lengths`` in ascending order of length, cut into batches whose padded size (rows × the
    longest) stays within ``max_tokens`` (a row longer than that is a batch of its own)."""
    batches: list[list[int]] = []
    for i in sorted(range(len(lengths)), key=lambda i: (lengths[i], i)):
        if batches and (len(batches[-1]) + 1) * lengths[i] <= max_tokens:
            batches[-1].append(i)
        else:
            batches.append([i])
    return batches


def fit_logistic(features: torch.Tensor, labels: torch.Tensor, num_classes: int, cfg: ProbeConfig
                 ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """(weight, bias, feature mean, feature std) of an L2-regularized multinomial logistic regression."""
    mean, std = features.mean(0), features.std(0).clamp(min=1e-6)
    x = ((features - mean) / std).double()
    y = labels.long()
    weight = torch.zeros(features.shape[1], num_classes, dtype=torch.float64, requires_grad=True)
    bias = torch.zeros(num_classes, dtype=torch.float64, requires_grad=True)
    optimizer = torch.optim.LBFGS([weight, bias], lr=1.0, max_iter=cfg.max_iter, tolerance_grad=1e-9,
                                  tolerance_change=1e-12, line_search_fn="strong_wolfe")

    def closure():
        optimizer.zero_grad()
        loss = torch.nn.functional.cross_entropy(x @ weight + bias, y) + cfg.l2 * weight.pow(2).sum()
        loss.backward()
        return loss

    optimizer.step(closure)
    return weight.detach(), bias.detach(), mean, std


def predict(weight, bias, mean, std, features: torch.Tensor) -> torch.Tensor:
    return ((((features - mean) / std).double() @ weight) + bias).argmax(1)


def probe(model_dir: Path, target: TargetData, cfg: ProbeConfig, *, device: str = "cpu",
          cache_dir: Path | None = None, model_key: str = "") -> ProbeResult:
    """Probe accuracy of the model on the target's test split (train split fits the classifier)."""
    if target.metric != "accuracy":
        raise ScoringError(f"the linear probe needs a classification target; {target.name} is {target.metric}")
    if target.num_labels < 2:
        raise ScoringError(f"target {target.name} has {target.num_labels} class: nothing to probe")
    started = time.perf_counter()
    (train_x, train_y), (test_x, test_y) = target_features(model_dir, target, cfg, device=device, cache_dir=cache_dir,
                                                           model_key=model_key)
    feature_s = time.perf_counter() - started
    started = time.perf_counter()
    weight, bias, mean, std = fit_logistic(train_x, train_y, target.num_labels, cfg)
    fit_s = time.perf_counter() - started
    accuracy = (predict(weight, bias, mean, std, test_x) == test_y).double().mean().item()
    train_accuracy = (predict(weight, bias, mean, std, train_x) == train_y).double().mean().item()
    if not torch.isfinite(torch.tensor(accuracy)):
        raise ScoringError(f"probe of {model_dir} on {target.name}: accuracy is not finite")
    logger.info("probe %s on %s: %.4f (train %.4f) in %.1fs features + %.1fs fit", model_key or model_dir,
                target.name, accuracy, train_accuracy, feature_s, fit_s)
    return ProbeResult(accuracy=accuracy, train_accuracy=train_accuracy, train_examples=len(train_y),
                       test_examples=len(test_y), feature_seconds=feature_s, fit_seconds=fit_s)


def target_features(model_dir: Path, target: TargetData, cfg: ProbeConfig, *, device: str = "cpu",
                    cache_dir: Path | None = None, model_key: str = ""
                    ) -> tuple[tuple[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]:
    """((train features, labels), (test features, labels)) of the frozen encoder on the target's splits, each
    subsampled to the config's limits; the features are cached per (model, target revision, protocol)."""
    train = _subsample(target.train, cfg.max_train_examples, cfg.seed)
    test = _subsample(target.test, cfg.max_test_examples, cfg.seed)
    train_x, test_x = _cached_features(model_dir, target, train, test, cfg, device, cache_dir, model_key)
    return ((train_x, torch.tensor([int(e.label) for e in train])),
            (test_x, torch.tensor([int(e.label) for e in test])))


def _cached_features(model_dir, target, train, test, cfg, device, cache_dir, model_key):
    key = hashlib.sha256(f"{model_key or Path(model_dir).resolve()}|{target.name}|{target.revision}|"
                         f"{cfg.max_length}|{len(train)}|{len(test)}|{cfg.seed}".encode()).hexdigest()[:24]
    path = Path(cache_dir) / "probe-features" / f"{key}.pt" if cache_dir else None
    if path is not None and path.exists():
        try:
            cached = torch.load(path, weights_only=True)
            if len(cached["train"]) == len(train) and len(cached["test"]) == len(test):
                return cached["train"], cached["test"]
        except (RuntimeError, EOFError, OSError, KeyError, TypeError, pickle.UnpicklingError) as e:
            logger.warning("a cached probe feature file is damaged (%s): it is rebuilt", e)
        path.unlink(missing_ok=True)
    model, tokenizer = load_encoder(model_dir)
    train_x = extract_features(model, tokenizer, train, cfg, device)
    test_x = extract_features(model, tokenizer, test, cfg, device)
    if path is not None:
        with atomic_path(path) as tmp:  # a full disk or a kill leaves no partial file to fail the next run
            torch.save({"train": train_x, "test": test_x}, tmp)
    return train_x, test_x
