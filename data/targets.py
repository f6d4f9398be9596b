"""The target suites: which datasets a candidate is fine-tuned on, where they live, and how they are split.

A ``TargetSpec`` only describes a target; ``scoring.target_data.load_target`` reads it. Three sources:

* ``PUBLISHED_SUITE``: the 36 targets of the model-recycling site, named exactly as its result columns and
  mapped to public Hub datasets. The site never published its dataset ids or revisions, so the mapping is
  our best reading of the public Hub (``is_confirmed=False`` marks the guesses) and ``revision`` is ""
  (unpinned) until someone pins a commit sha.
* ``local_suite(root)``: one spec per subdirectory of ``root`` holding a ``dataset.json`` (the format of
  ``shared/datasets``: train/validation/test CSVs). Offline, and what the tests and the quick profile use.
* ``suite(name)``: "published", "local", "quick", or a comma-separated list of target names.

Split rules (``eval_split`` / ``test_split`` of None mean "carve a fixed 10% of train", see target_data):

* test = the labelled test split if there is one, else the validation split (GLUE and SuperGLUE hide their
  test labels; the site scored on validation), else a slice carved from train;
* eval = the validation split when it is not already the test split, else a slice carved from train.
"""

from __future__ import annotations

import difflib
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

logger = logging.getLogger(__name__)

Metric = Literal["accuracy", "spearman"]
# Three small local datasets that train in seconds on CPU and cover the three task shapes: sst2 (one
# sentence, 2 classes), rte (sentence pair, 2 classes, the small high-variance kind of target that gains
# most from a good start) and trec (short questions, 6 classes).
QUICK_TARGETS: tuple[str, ...] = ("sst2", "rte", "trec")
SUITE_NAMES: tuple[str, ...] = ("published", "local", "quick")


@dataclass(frozen=True, slots=True, kw_only=True)
class TargetSpec:
    """One target dataset: where it lives, which columns hold text and label, how it is split and scored."""

    name: str  # the published results column for published targets; the directory name for local ones
    task: str
    metric: Metric = "accuracy"
    text_fields: tuple[str, ...]
    label_field: str = "label"
    label_names: tuple[str, ...] | None = None  # in id order; None: read them from the data (ClassLabel)
    is_pair: bool = False  # text = first field, text_pair = the other fields; else all fields joined into text
    hub_id: str = ""
    hub_config: str | None = None
    revision: str = ""  # a pinned dataset commit sha, or "" when unknown (loads the default branch)
    train_split: str = "train"
    eval_split: str | None = "validation"  # None: carve from train
    test_split: str | None = "test"  # None: carve from train
    local_dir: Path | None = None
    is_confirmed: bool = True  # False: the Hub id/config/fields are our guess, not the site's record
    note: str = ""

    @property
    def is_local(self) -> bool:
        return self.local_dir is not None


def default_local_root() -> Path:
    """The shared datasets directory beside the repository (the project never copies shared data)."""
    return Path(__file__).resolve().parents[2] / "shared" / "datasets"


def _hub(name: str, hub_id: str, config: str | None, text_fields: tuple[str, ...], task: str, *,
         label_field: str = "label", label_names: tuple[str, ...] | None = None, is_pair: bool = False,
         metric: Metric = "accuracy", train: str = "train", eval: str | None = "validation",
         test: str | None = "test", is_confirmed: bool = True, note: str = "") -> TargetSpec:
    return TargetSpec(name=name, task=task, metric=metric, text_fields=text_fields, label_field=label_field,
                      label_names=label_names, is_pair=is_pair, hub_id=hub_id, hub_config=config,
                      train_split=train, eval_split=eval, test_split=test, is_confirmed=is_confirmed, note=note)


def _glue(name: str, config: str, fields: tuple[str, ...], labels: tuple[str, ...] | None, task: str,
          **kw) -> TargetSpec:
    """GLUE hides its test labels: score on validation, carve eval from train (the site's reading)."""
    kw.setdefault("eval", None)
    kw.setdefault("test", "validation")
    return _hub(name, "nyu-mll/glue", config, fields, task, label_names=labels, is_pair=len(fields) > 1, **kw)


def _super_glue(name: str, config: str, fields: tuple[str, ...], labels: tuple[str, ...], task: str,
                **kw) -> TargetSpec:
    return _hub(name, "aps/super_glue", config, fields, task, label_names=labels, is_pair=True, eval=None,
                test="validation", **kw)


def _tweet_eval(config: str, task: str) -> TargetSpec:
    return _hub(f"tweet_ev_{config}", "cardiffnlp/tweet_eval", config, ("text",), task)


_NLI3 = ("entailment", "neutral", "contradiction")
_NOT_ENT = ("entailment", "not_entailment")
_BOOL = ("False", "True")
_GUESS = "text encoding of a multi-field task is our guess"

PUBLISHED_SUITE: tuple[TargetSpec, ...] = (
    _glue("cola", "cola", ("sentence",), ("unacceptable", "acceptable"), "linguistic acceptability"),
    _glue("mrpc", "mrpc", ("sentence1", "sentence2"), ("not_equivalent", "equivalent"), "paraphrase"),
    _glue("qqp", "qqp", ("question1", "question2"), ("not_duplicate", "duplicate"), "duplicate questions"),
    _glue("stsb", "stsb", ("sentence1", "sentence2"), None, "semantic similarity (regression 0-5)",
          metric="spearman"),
    _super_glue("boolq", "boolq", ("passage", "question"), _BOOL, "yes/no questions"),
    _super_glue("cb", "cb", ("premise", "hypothesis"), ("entailment", "contradiction", "neutral"), "NLI"),
    _super_glue("copa", "copa", ("premise", "question", "choice1", "choice2"), ("choice1", "choice2"),
                "choice of plausible alternatives", is_confirmed=False, note=_GUESS),
    _super_glue("multirc", "multirc", ("paragraph", "question", "answer"), _BOOL, "multi-sentence reading",
                is_confirmed=False, note=_GUESS),
    _super_glue("wic", "wic", ("sentence1", "sentence2", "word"), _BOOL, "word in context",
                is_confirmed=False, note=_GUESS),
    _super_glue("wsc", "wsc.fixed", ("text", "span1_text", "span2_text"), _BOOL, "Winograd coreference",
                is_confirmed=False, note=_GUESS),
    _hub("ag_news", "fancyzhx/ag_news", None, ("text",), "news topic", eval=None),
    _hub("isear", "isear", None, ("text",), "emotion (7 classes)", is_confirmed=False,
         note="no canonical Hub dataset for ISEAR; this id is a placeholder: point it at a copy before use"),
    _hub("yahoo_answers", "community-datasets/yahoo_answers_topics", None,
         ("question_title", "question_content", "best_answer"), "question topic (10 classes)",
         label_field="topic", eval=None, is_confirmed=False, note="which text fields the site used is unknown"),
    _hub("dbpedia", "fancyzhx/dbpedia_14", None, ("title", "content"), "ontology class (14)", eval=None),
    _hub("20_newsgroup", "SetFit/20_newsgroups", None, ("text",), "newsgroup (20 classes)", eval=None,
         label_names=None, is_confirmed=False, note="labels are plain ints 0-19; names are their ids"),
    _hub("trec_fine", "CogComp/trec", None, ("text",), "question type (50 fine classes)",
         label_field="fine_label", eval=None),
    _hub("trec_coarse", "CogComp/trec", None, ("text",), "question type (6 coarse classes)",
         label_field="coarse_label", eval=None),
    _hub("poem_sentiment", "google-research-datasets/poem_sentiment", None, ("verse_text",), "verse sentiment"),
    _hub("imdb", "stanfordnlp/imdb", None, ("text",), "movie review sentiment", eval=None),
    _hub("rotten_tomatoes", "cornell-movie-review-data/rotten_tomatoes", None, ("text",), "movie sentiment"),
    _hub("sst_5bins", "SetFit/sst5", None, ("text",), "sentiment (5 classes)",
         label_names=("very negative", "negative", "neutral", "positive", "very positive"), is_confirmed=False,
         note="SST fine-grained; SetFit's copy is our choice"),
    _glue("sst2", "sst2", ("sentence",), ("negative", "positive"), "sentiment (binary)"),
    _hub("amazon_reviews_multi", "mteb/amazon_reviews_multi", "en", ("text",), "review stars (5 classes)",
         label_names=("1", "2", "3", "4", "5"), is_confirmed=False,
         note="original amazon_reviews_multi was withdrawn; the mteb copy (en) has text and label 0-4"),
    _hub("financial_phrasebank", "takala/financial_phrasebank", "sentences_allagree", ("sentence",),
         "financial sentiment", eval=None, test=None, is_confirmed=False,
         note="train only: eval and test carved from train; the agreement config is our guess"),
    _tweet_eval("emoji", "tweet emoji (20 classes)"),
    _tweet_eval("emotion", "tweet emotion"),
    _tweet_eval("hate", "tweet hate"),
    _tweet_eval("irony", "tweet irony"),
    _tweet_eval("offensive", "tweet offensive"),
    _tweet_eval("sentiment", "tweet sentiment"),
    _glue("mnli", "mnli", ("premise", "hypothesis"), _NLI3, "NLI", test="validation_matched"),
    _glue("qnli", "qnli", ("question", "sentence"), _NOT_ENT, "question-answer entailment"),
    _glue("rte", "rte", ("sentence1", "sentence2"), _NOT_ENT, "textual entailment"),
    _glue("wnli", "wnli", ("sentence1", "sentence2"), ("not_entailment", "entailment"), "Winograd NLI"),
    _hub("esnli", "esnli", None, ("premise", "hypothesis"), "NLI (e-SNLI)", label_names=_NLI3, is_pair=True,
         is_confirmed=False, note="legacy id; rows without a gold label (-1) are dropped"),
    _hub("anli", "facebook/anli", None, ("premise", "hypothesis"), "adversarial NLI, round 1",
         label_names=_NLI3, is_pair=True, train="train_r1", eval="dev_r1", test="test_r1", is_confirmed=False,
         note="the site does not say which round; we use round 1 (r1) alone"),
)


def local_suite(root: Path) -> tuple[TargetSpec, ...]:
    """One spec per subdirectory of ``root`` with a dataset.json, sorted by name; splits from the files present."""
    if not root.is_dir():
        raise FileNotFoundError(f"local datasets directory {root} does not exist")
    specs = []
    for meta_path in sorted(root.glob("*/dataset.json")):
        specs.append(_local_spec(meta_path.parent, json.loads(meta_path.read_text(encoding="utf-8"))))
    logger.debug("local suite at %s: %d targets", root, len(specs))
    return tuple(specs)


def _local_spec(local_dir: Path, meta: dict) -> TargetSpec:
    has_test = (local_dir / "test.csv").is_file()
    has_validation = (local_dir / "validation.csv").is_file()
    test_split = "test" if has_test else "validation" if has_validation else None
    eval_split = "validation" if has_validation and has_test else None
    text_fields = tuple(meta["text_fields"])
    task = str(meta.get("task", ""))
    # Two text columns are a sentence pair only when the task says so (ag_news splits one text in two).
    is_pair = bool(meta.get("is_pair", len(text_fields) == 2 and "pair" in task.lower()))
    return TargetSpec(
        name=local_dir.name, task=task, text_fields=text_fields, label_field=meta["label_field"],
        label_names=tuple(str(n) for n in meta["label_names"]), is_pair=is_pair,
        eval_split=eval_split, test_split=test_split, local_dir=local_dir,
    )


def suite(name: str, *, local_root: Path | None = None) -> tuple[TargetSpec, ...]:
    """A suite by name: "published", "local", "quick", or target names "a,b" (``local:``/``published:`` pick).

    A bare target name that exists in both places (sst2, rte, mrpc, ...) resolves to the local dataset,
    which loads offline; write ``published:sst2`` for the Hub one. Unknown names raise ``KeyError``
    naming the closest known ones.
    """
    root = local_root if local_root is not None else default_local_root()
    if name == "published":
        return PUBLISHED_SUITE
    if name == "local":
        return local_suite(root)
    if name == "quick":
        return _resolve(QUICK_TARGETS, local_suite(root), ())
    local = local_suite(root) if root.is_dir() else ()
    names = tuple(n.strip() for n in name.split(",") if n.strip())
    if not names:
        raise KeyError(f"empty suite name; choose one of {', '.join(SUITE_NAMES)} or a list of target names")
    return _resolve(names, local, PUBLISHED_SUITE)


def _resolve(names: tuple[str, ...], local: tuple[TargetSpec, ...],
             published: tuple[TargetSpec, ...]) -> tuple[TargetSpec, ...]:
    by_source = {"local": {s.name: s for s in local}, "published": {s.name: s for s in published}}
    resolved = []
    for name in names:
        source, _, bare = name.rpartition(":")
        if source and source not in by_source:
            raise KeyError(_unknown_message(name, by_source))
        pools = [by_source[source]] if source else [by_source["local"], by_source["published"]]
        matches = [pool[bare] for pool in pools if bare in pool]
        if not matches:
            raise KeyError(_unknown_message(name, by_source))
        resolved.append(matches[0])
    if len({s.name for s in resolved}) != len(resolved):
        raise KeyError(f"suite {','.join(names)!r} names a target twice")
    return tuple(resolved)


def _unknown_message(name: str, by_source: dict[str, dict[str, TargetSpec]]) -> str:
    known = sorted({*SUITE_NAMES, *by_source["local"], *by_source["published"]})
    close = difflib.get_close_matches(name.rpartition(":")[2], known, n=5, cutoff=0.5)
    hint = f"; did you mean {', '.join(close)}?" if close else f"; known: {', '.join(known)}"
    return f"unknown suite or target {name!r}{hint}"
