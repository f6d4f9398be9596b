"""IBM's published model-recycling results (github.com/IBM/model-recycling) as their own score source.

``import_published(store, source)`` reads ``results/models_tested.csv`` (one row per tested model) and the six
``results/models_results_<arch>_pretrain.csv`` baseline files (TAB-separated: the base finetuned 20 times per
dataset), validates all of them, and only then swaps every ``PUBLISHED_SOURCE`` score in the store for the new
ones in one transaction. A source is a URL prefix of the repo (default: its master branch on GitHub) or a local
directory laid out like the repo.

Storage contract (read by ``ranking``):

- candidate row ``i`` of models_tested.csv: ``repo_id=model_name, revision="published-row-{i}"``; one
  ``intertraining/target_score`` per non-empty dataset column (``target`` = column name, ``seed`` 0) and one
  ``linear_probe/probe_accuracy`` with ``target="mnli"`` for ``mnli_lp``;
- baseline: ``repo_id=<canonical base id>, revision="published-baseline"``, ``intertraining/target_score`` per
  dataset and stage (``seed`` = stage, 0-19);
- every score has ``source=PUBLISHED_SOURCE``, ``config_hash=PUBLISHED_CONFIG_HASH`` and ``base_id`` = the
  canonical Hub id of its architecture. Values are fractions as published (Spearman for STS-B).
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import json
import logging
import math
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from types import MappingProxyType

import pandas as pd

from data.errors import LeaderboardError
from data.metrics import PUBLISHED_SOURCE, SUSPECT
from data.records import Score
from data.settings import DEFAULT_PUBLISHED
from data.store import Store

logger = logging.getLogger(__name__)

PUBLISHED_COMMIT = "1c1d4228810ef0506de1a85144a3744b274c8bbc"
# Pinned to the commit the protocol hash names, so the data and its label cannot drift apart.
PUBLISHED_DEFAULT_SOURCE = f"https://raw.githubusercontent.com/IBM/model-recycling/{PUBLISHED_COMMIT}"
MODELS_TESTED_PATH = "results/models_tested.csv"
# The same files bundled in the project (gzipped verbatim, with IBM's Apache-2.0 LICENSE and a NOTICE): the app
# seeds a fresh store from them, so the real 2023 leaderboards need no network.
BUNDLED_DIR = DEFAULT_PUBLISHED
BASELINE_REVISION = "published-baseline"
STSB = "stsb"
BASELINE_STAGES = 20

# base_model value in models_tested.csv -> (canonical Hub id, arch name in models_results_<arch>_pretrain.csv).
# The canonical ids agree with data.selection.aliases_of (a unit test checks it).
PUBLISHED_BASES: Mapping[str, tuple[str, str]] = MappingProxyType({
    "roberta-base": ("FacebookAI/roberta-base", "roberta_base"),
    "bert-base-uncased": ("google-bert/bert-base-uncased", "bert_base_uncased"),
    "bert-base-cased": ("google-bert/bert-base-cased", "bert_base_cased"),
    "t5-base": ("google-t5/t5-base", "t5_base"),
    "google/t5-v1_1-base": ("google/t5-v1_1-base", "google_t5_v1_1_base"),
    "microsoft/deberta-v3-base": ("microsoft/deberta-v3-base", "microsoft_deberta_v3_base"),
})

# The 36 targets, in the column order of models_tested.csv. The baseline files use the same names.
DATASET_COLUMNS: tuple[str, ...] = (
    "cola", "mrpc", "qqp", "stsb", "boolq", "cb", "copa", "multirc", "wic", "wsc", "ag_news", "isear",
    "yahoo_answers", "dbpedia", "20_newsgroup", "trec_fine", "trec_coarse", "poem_sentiment", "imdb",
    "rotten_tomatoes", "sst_5bins", "sst2", "amazon_reviews_multi", "financial_phrasebank", "tweet_ev_emoji",
    "tweet_ev_emotion", "tweet_ev_hate", "tweet_ev_irony", "tweet_ev_offensive", "tweet_ev_sentiment", "mnli",
    "qnli", "rte", "wnli", "esnli", "anli",
)
_MODEL_COLUMNS = ("model_name", "base_model", "size", "model_type", "last_modified", "mnli_lp")
_OTHER_MODEL_COLUMNS = ("tokenizer", "classification", "layers", "from_flax", "from_tf")
_BASELINE_COLUMNS = ("dataset name", "accuracy", "spearmanr", "stage")

# The site's protocol (REFERENCE.md section 1). Its hash ties every published score to this description.
PUBLISHED_PROTOCOL: Mapping[str, object] = MappingProxyType({
    "source_repo": "IBM/model-recycling",
    "source_commit": PUBLISHED_COMMIT,
    "paper": "arXiv:2211.00107",
    "epochs": 10,
    "lr": 5e-5,
    "lr_note": "roberta-base; paper appendix: bert-base-uncased 2e-5, T5 1e-4",
    "lr_schedule": "linear",
    "warmup_ratio": 0.006,
    "batch_size": 256,
    "optimizer": "AdamW",
    "weight_decay": 0.01,
    "seed": 0,
    "early_stopping": "eval every 12,800 examples, patience 256K examples",
    "baseline_seeds": BASELINE_STAGES,
    "eval_split": "validation (inferred)",
    "metric": "accuracy; Spearman for stsb",
    "probe": "mnli linear probe, classification head only",
})
PUBLISHED_CONFIG_JSON = json.dumps(dict(PUBLISHED_PROTOCOL), sort_keys=True, separators=(",", ":"))
PUBLISHED_CONFIG_HASH = hashlib.sha256(PUBLISHED_CONFIG_JSON.encode()).hexdigest()


class PublishedSourceError(LeaderboardError, OSError):
    """A published file could not be read: missing, or the source is unreachable."""


class PublishedDataError(LeaderboardError, ValueError):
    """A published file is malformed: missing column, bad number, unknown base, wrong baseline shape."""


@dataclass(frozen=True, slots=True, kw_only=True)
class BaseCounts:
    """What one architecture contributed to an import."""

    base_id: str
    models: int  # rows of models_tested.csv
    fully_tested: int  # rows with all 36 target scores
    probe_zero: int  # rows with mnli_lp exactly 0 (kept, as on the site; they look like failed runs)
    scores: int  # candidate scores (targets and probes)
    baseline_scores: int  # at most 36 x 20
    baseline_missing: int  # baseline rows with an empty score (failed runs), not stored
    suspect_rows: int = 0  # column-shifted rows (data/quality.py): their misplaced cells are stored as suspect
    suspect_cells: int = 0

    def summary(self) -> str:
        return (f"{self.base_id}: {self.models} models | {self.fully_tested} fully tested | "
                f"{self.probe_zero} with mnli_lp = 0 | {self.scores} scores | "
                f"{self.baseline_scores} baseline scores ({self.baseline_missing} runs missing) | "
                f"{self.suspect_rows} column-shifted rows ({self.suspect_cells} suspect cells)")


@dataclass(frozen=True, slots=True, kw_only=True)
class ImportReport:
    """The outcome of an import; ``per_base`` follows PUBLISHED_BASES order."""

    source: str
    models: int
    scores: int  # everything written, baselines included
    per_base: tuple[BaseCounts, ...]
    probe_zero: int
    duplicate_models: tuple[str, ...]  # model names on more than one row
    duration_s: float = 0.0

    def summary_lines(self) -> list[str]:
        total = (f"{PUBLISHED_SOURCE} from {self.source}: {self.models} models, {self.scores} scores, "
                 f"{self.probe_zero} with mnli_lp = 0, {len(self.duplicate_models)} duplicate names, "
                 f"{self.duration_s:.1f}s")
        return [counts.summary() for counts in self.per_base] + [total]


@dataclass(frozen=True, slots=True)
class PublishedResults:
    """Every published score, validated and ready to store, with the report of what they hold."""

    scores: tuple[Score, ...]
    report: ImportReport


def import_published(store: Store, source: str | Path = PUBLISHED_DEFAULT_SOURCE, *,
                     timeout_s: float = 30.0) -> ImportReport:
    """Replace the store's published scores with those at ``source``; nothing is written if anything is wrong."""
    started = time.perf_counter()
    results = read_published(source, timeout_s=timeout_s)
    store.replace_source(PUBLISHED_SOURCE, results.scores)
    report = replace(results.report, duration_s=time.perf_counter() - started)
    logger.info("imported %d published scores of %d models from %s in %.1fs",
                report.scores, report.models, report.source, report.duration_s)
    return report


def read_published(source: str | Path = PUBLISHED_DEFAULT_SOURCE, *, timeout_s: float = 30.0) -> PublishedResults:
    """Fetch, parse and validate every published file (models_tested.csv and six baselines); writes nothing."""
    started = time.perf_counter()
    models_text = _fetch(source, MODELS_TESTED_PATH, timeout_s)
    baseline_texts = {
        csv_base: _fetch(source, _baseline_path(arch), timeout_s) for csv_base, (_, arch) in PUBLISHED_BASES.items()
    }
    candidate_scores, counts, duplicates = _parse_models_tested(models_text)
    scores = list(candidate_scores)
    per_base = []
    for csv_base, (base_id, arch) in PUBLISHED_BASES.items():
        baseline = _parse_baseline(baseline_texts[csv_base], base_id, _baseline_path(arch))
        scores.extend(baseline)
        per_base.append(replace(counts[base_id], baseline_scores=len(baseline),
                                baseline_missing=len(DATASET_COLUMNS) * BASELINE_STAGES - len(baseline)))
    report = ImportReport(
        source=str(source),
        models=sum(c.models for c in per_base),
        scores=len(scores),
        per_base=tuple(per_base),
        probe_zero=sum(c.probe_zero for c in per_base),
        duplicate_models=duplicates,
        duration_s=time.perf_counter() - started,
    )
    return PublishedResults(scores=tuple(scores), report=report)


# ------------------------------------------------------------------------------------------- reading
def _baseline_path(arch: str) -> str:
    return f"results/models_results_{arch}_pretrain.csv"


def _is_url(source: str | Path) -> bool:
    return isinstance(source, str) and source.startswith(("http://", "https://"))


def _fetch(source: str | Path, relative_path: str, timeout_s: float) -> str:
    """The text of one file under a URL prefix or a local directory."""
    if _is_url(source):
        url = f"{str(source).rstrip('/')}/{relative_path}"
        try:
            with urllib.request.urlopen(url, timeout=timeout_s) as response:
                return response.read().decode("utf-8-sig")
        except urllib.error.HTTPError as e:
            raise PublishedSourceError(f"cannot fetch {url}: HTTP {e.code} {e.reason}") from e
        except (urllib.error.URLError, TimeoutError, OSError) as e:
            reason = getattr(e, "reason", e)
            raise PublishedSourceError(f"cannot reach {url}: {reason}") from e
    path = Path(source) / relative_path
    gzipped = path.with_name(path.name + ".gz")
    try:
        if not path.exists() and gzipped.exists():  # the bundled copy: the repo's file, gzipped
            path = gzipped
            return gzip.decompress(path.read_bytes()).decode("utf-8-sig")
        return path.read_text(encoding="utf-8-sig")
    except (gzip.BadGzipFile, EOFError, UnicodeDecodeError) as e:
        raise PublishedDataError(f"{path} is not a readable text file: {e}") from e
    except FileNotFoundError as e:
        raise PublishedSourceError(f"missing published file {path}") from e
    except OSError as e:
        raise PublishedSourceError(f"cannot read {path}: {e}") from e


def _require_columns(fieldnames: Sequence[str] | None, required: Sequence[str], name: str) -> None:
    missing = [c for c in required if c not in (fieldnames or ())]
    if missing:
        raise PublishedDataError(f"{name}: missing column(s) {', '.join(missing)}")


def _score_value(text: str, *, where: str, target: str) -> float:
    """A published score as a float; STS-B (Spearman) may lie in [-1, 1], everything else in [0, 1]."""
    try:
        value = float(text)
    except ValueError:
        raise PublishedDataError(f"{where}: {target} score {text!r} is not a number") from None
    low = -1.0 if target == STSB else 0.0
    if not math.isfinite(value) or not low <= value <= 1.0:
        raise PublishedDataError(f"{where}: {target} score {value!r} is outside [{low:g}, 1]")
    return value


def _optional_int(text: str) -> int | None:
    try:
        return int(float(text))
    except (ValueError, OverflowError):
        return None


# -------------------------------------------------------------------------------- models_tested.csv
def _parse_models_tested(text: str) -> tuple[list[Score], dict[str, BaseCounts], tuple[str, ...]]:
    """Candidate scores, per-base counts (keyed by canonical base id) and duplicated model names."""
    reader = csv.DictReader(io.StringIO(text, newline=""))
    _require_columns(reader.fieldnames, (*_MODEL_COLUMNS, *DATASET_COLUMNS), MODELS_TESTED_PATH)
    known = {*_MODEL_COLUMNS, *_OTHER_MODEL_COLUMNS, *DATASET_COLUMNS}
    ignored = [c for c in reader.fieldnames or () if c not in known]
    if ignored:
        logger.warning("%s: ignoring unknown column(s) %s", MODELS_TESTED_PATH, ", ".join(ignored))
    scores: list[Score] = []
    tallies = {base_id: Counter() for base_id, _ in PUBLISHED_BASES.values()}
    names: Counter[str] = Counter()
    for i, row in enumerate(reader):
        repo_id = (row["model_name"] or "").strip()
        where = f"{MODELS_TESTED_PATH} row {i} ({repo_id or 'no model_name'})"
        if not repo_id:
            raise PublishedDataError(f"{where}: empty model_name")
        csv_base = row["base_model"]
        if csv_base not in PUBLISHED_BASES:
            raise PublishedDataError(
                f"{where}: unknown base_model {csv_base!r}; known: {', '.join(PUBLISHED_BASES)}")
        base_id = PUBLISHED_BASES[csv_base][0]
        names[repo_id] += 1
        row_scores = _row_scores(row, i, repo_id, base_id, where)
        tally = tallies[base_id]
        tally["models"] += 1
        tally["scores"] += len(row_scores)
        tally["fully_tested"] += sum(s.metric == "target_score" for s in row_scores) == len(DATASET_COLUMNS)
        tally["probe_zero"] += any(s.metric == "probe_accuracy" and s.value == 0.0 for s in row_scores)
        scores.extend(row_scores)
    counts = {
        base_id: BaseCounts(base_id=base_id, models=t["models"], fully_tested=t["fully_tested"],
                            probe_zero=t["probe_zero"], scores=t["scores"], baseline_scores=0,
                            baseline_missing=0)
        for base_id, t in tallies.items()
    }
    duplicates = tuple(sorted(name for name, n in names.items() if n > 1))
    scores, suspects = flag_suspect_cells(scores)
    counts = {b: replace(c, suspect_rows=suspects[b][0], suspect_cells=suspects[b][1]) for b, c in counts.items()}
    return scores, counts, duplicates


def flag_suspect_cells(scores: list[Score]) -> tuple[list[Score], dict[str, tuple[int, int]]]:
    """Each base's target scores as a models × targets table in the file's column order; the cells of its
    column-shifted rows (data/quality.py) get status ``SUSPECT``. Returns the scores and, per base id, (rows, cells)
    flagged."""
    from data.quality import suspect_cells

    targets = [s for s in scores if s.metric == "target_score"]
    flagged: set[tuple[str, str]] = set()
    found: dict[str, tuple[int, int]] = {}
    for base_id, _ in PUBLISHED_BASES.values():
        mine = [s for s in targets if s.base_id == base_id]
        table = pd.DataFrame([(s.revision, s.target, s.value) for s in mine], columns=["row", "target", "value"])
        table = table.pivot(index="row", columns="target", values="value").reindex(columns=list(DATASET_COLUMNS))
        flags = suspect_cells(table) if len(table) else None
        found[base_id] = (flags.rows, flags.cells) if flags is not None else (0, 0)
        if flags is not None and flags.rows:
            cells = flags.suspect.stack()
            flagged.update((row, target) for (row, target), bad in cells.items() if bad)
    out = [replace(s, status=SUSPECT) if s.metric == "target_score" and (s.revision, s.target) in flagged else s
           for s in scores]
    return out, found


def _row_scores(row: Mapping[str, str], i: int, repo_id: str, base_id: str, where: str) -> list[Score]:
    """The scores of one models_tested row: a probe score (with the row's metadata) and one per target."""
    make = partial(Score, repo_id=repo_id, revision=f"published-row-{i}", seed=0, config_hash=PUBLISHED_CONFIG_HASH,
                   config_json=PUBLISHED_CONFIG_JSON, source=PUBLISHED_SOURCE, base_id=base_id)
    metadata = {"num_params": _optional_int(row["size"]), "last_modified": row["last_modified"] or None,
                "model_type": row["model_type"] or None}
    scores = []
    if row["mnli_lp"]:
        value = _score_value(row["mnli_lp"], where=where, target="mnli_lp")
        scores.append(make(scorer="linear_probe", metric="probe_accuracy", target="mnli", value=value,
                           extra=metadata))
    for target in DATASET_COLUMNS:
        if row[target]:
            value = _score_value(row[target], where=where, target=target)
            extra = metadata if not scores else {}
            scores.append(make(scorer="intertraining", metric="target_score", target=target, value=value,
                               extra=extra))
    return scores


# --------------------------------------------------------------------------------- baseline files
def _parse_baseline(text: str, base_id: str, name: str) -> list[Score]:
    """20 seeded runs of the base per target: ``seed`` = the file's stage.

    Every (dataset, stage) row must be there once; a row with an empty score (a few STS-B runs of the T5
    bases) is a failed run and yields no score.
    """
    reader = csv.DictReader(io.StringIO(text, newline=""), delimiter="\t")
    _require_columns(reader.fieldnames, _BASELINE_COLUMNS, name)
    scores: list[Score] = []
    empty: list[str] = []
    seen: Counter[tuple[str, int]] = Counter()
    for line, row in enumerate(reader, start=2):
        where = f"{name} line {line}"
        target = _baseline_target(row["dataset name"], where)
        stage = _optional_int(row["stage"])
        if stage is None or not 0 <= stage < BASELINE_STAGES or str(stage) != row["stage"].strip():
            raise PublishedDataError(f"{where}: stage {row['stage']!r} is not a whole number in 0-19")
        seen[(target, stage)] += 1
        field = "spearmanr" if target == STSB else "accuracy"
        if not (row[field] or "").strip():  # a failed run (the site's means skip it too): missing stays missing
            empty.append(f"{target} stage {stage}")
            continue
        value = _score_value(row[field], where=where, target=target)
        scores.append(Score(repo_id=base_id, revision=BASELINE_REVISION, scorer="intertraining",
                            metric="target_score", target=target, seed=stage, value=value,
                            config_hash=PUBLISHED_CONFIG_HASH, config_json=PUBLISHED_CONFIG_JSON,
                            source=PUBLISHED_SOURCE, base_id=base_id))
    if empty:
        logger.info("%s: %d baseline runs have no score (failed runs), not stored: %s", name, len(empty),
                    ", ".join(empty))
    expected = {(t, s) for t in DATASET_COLUMNS for s in range(BASELINE_STAGES)}
    missing = sorted(expected - set(seen))
    repeated = sorted(key for key, n in seen.items() if n > 1)
    if missing or repeated:
        raise PublishedDataError(
            f"{name}: wrong baseline shape: expected {len(DATASET_COLUMNS)} datasets x {BASELINE_STAGES} stages "
            f"({len(expected)} rows), got {sum(seen.values())} rows; missing {len(missing)} {missing[:5]}, "
            f"repeated {len(repeated)} {repeated[:5]}")
    return scores


def _baseline_target(dataset_name: str, where: str) -> str:
    """The models_tested column of a baseline dataset name (identical at the pinned commit)."""
    name = (dataset_name or "").strip()
    if name not in DATASET_COLUMNS:
        raise PublishedDataError(f"{where}: dataset name {dataset_name!r} matches no models_tested column")
    return name
