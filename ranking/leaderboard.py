"""build_leaderboard: stored scores of one base and one source -> a ranked table. Pure: no I/O, no torch.

Rules (the README documents them for users):
- Scores are compared only within one protocol: for each scorer, one ``config_hash`` (by default the
  one that covers the most models). A source is never mixed with another.
- The suite is the set of targets the base model has scores for. A candidate missing any suite target
  gets no mean score and no mean gain (never a partial average).
- gain(m, t) and its 95% interval follow the seed design (ranking/gains.py). Paired (the project's runs):
  gain(m, t) = mean over seeds of score(m, t, s) − score(base, t, s); mean gain = mean over the suite; the
  interval is Student t on the paired differences' variance pooled within targets, df = Σ_t (n_t − 1), and
  none below 2 df. Independent (published runs): gain(m, t) = score(m, t) − mean over seeds of score(base,
  t); the interval combines the base's seed variance with the candidate's own, Welch–Satterthwaite df.
  ``gain_df`` is the interval's degrees of freedom; "beats_base" means the interval lies above 0.
- Order: the sort metric in its declared direction (missing last), then probe accuracy, then repo_id,
  then revision. ``rank`` counts only the models with a value of the sort metric (by default those with a mean
  gain); the others are listed after them unranked (<NA>: "probe only" on a published board). The base's own
  row is kept apart, rank 0, and always shown first.
- Cells left out of a mean gain by default, each counted in its own column and put back by its own toggle: the
  targets a model was trained on (``n_seen``, ``include_seen``) and imported cells stored as suspect
  (``n_suspect``, ``include_suspect``: a column-shifted row of a published file, data/quality.py). The mean is then
  over the suite's other targets. A suspect cell's score is shown either way.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from data.metrics import METADATA_COLUMNS, SUSPECT, gated_scorers, summary_metrics
from ranking import gains
from ranking.columns import column_for
from ranking.gains import SeedDesign

SCORE_COLUMNS = ("repo_id", "revision", "scorer", "metric", "target", "seed", "value", "config_hash", "status")
OK = "ok"  # a score's status; any other ("failed") is counted in failed_runs and never enters a mean
TARGET_METRIC = "target_score"
Z_95 = 1.959963984540054
LR_METRIC = "lr_choice"  # the base's learning-rate sweep per target (status "dropped": out of the suite)


@dataclass(frozen=True, slots=True)
class Leaderboard:
    base_id: str
    source: str
    rows: pd.DataFrame  # one row per candidate (repo_id, revision), ranked
    baseline: pd.DataFrame  # the base's own row, same columns, rank 0
    suite: tuple[str, ...]  # targets every full score needs
    config_hashes: Mapping[str, str] = field(default_factory=dict)  # scorer -> protocol used
    seed_design: str = "paired"  # how gains and intervals pair the runs (ranking/gains.py)
    include_seen: bool = False  # True: a model's mean gain includes the targets it was trained on
    include_suspect: bool = False  # True: a model's mean gain includes its suspect imported cells
    dropped: tuple[str, ...] = ()  # targets the base's learning-rate sweep dropped (scoring/lr_sweep.py)

    def to_frame(self) -> pd.DataFrame:
        """Baseline first, then the ranked candidates."""
        if self.baseline.empty:
            return self.rows.reset_index(drop=True)
        return pd.concat([self.baseline, self.rows], ignore_index=True)

    @property
    def targets(self) -> tuple[str, ...]:
        return tuple(c.split(":", 1)[1] for c in self.rows.columns if c.startswith("score:"))


def empty_scores() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype="float64" if c in ("value",) else "object") for c in SCORE_COLUMNS})


def scores_frame(rows) -> pd.DataFrame:
    """Score records with SCORE_COLUMNS fields (named tuples such as ``Store.score_rows`` returns, or a frame
    with those columns) -> a typed frame."""
    if len(rows) == 0:
        return empty_scores()
    if isinstance(rows, pd.DataFrame):
        frame = rows
    else:  # records with every SCORE_COLUMNS field, or plain tuples without the trailing status
        frame = pd.DataFrame.from_records(rows, columns=list(SCORE_COLUMNS[:len(rows[0])]))
    if "status" not in frame:
        frame = frame.assign(status=OK)
    return typed_scores(frame.reindex(columns=list(SCORE_COLUMNS)))


def leaderboard_from(data, *, sort_by: str = "mean_gain", config_hashes: Mapping[str, str] | None = None,
                     include_seen: bool = False, include_suspect: bool = False) -> Leaderboard:
    """The leaderboard of a ``service.boards.BoardData`` (read by the service layer; any object with its fields)."""
    return build_leaderboard(scores_frame(data.scores), base_id=data.base_id, source=data.source,
                             base_aliases=data.aliases, metadata=data.metadata, config_hashes=config_hashes,
                             sort_by=sort_by, baseline_revision=data.baseline_revision,
                             seed_design=getattr(data, "seed_design", "paired"), seen=getattr(data, "seen", None),
                             include_seen=include_seen, include_suspect=include_suspect)


def typed_scores(frame: pd.DataFrame) -> pd.DataFrame:
    """Float values and categorical string columns: build_leaderboard then factorizes them for free."""
    frame = frame.copy()
    frame["value"] = frame["value"].astype("float64")
    frame["seed"] = frame["seed"].astype("int64")
    for column in ("repo_id", "revision", "scorer", "metric", "target", "config_hash"):
        frame[column] = frame[column].astype("category")
    return frame


def build_leaderboard(
    scores: pd.DataFrame,
    *,
    base_id: str,
    source: str,
    base_aliases: Sequence[str] = (),
    metadata: pd.DataFrame | None = None,
    config_hashes: Mapping[str, str] | None = None,
    sort_by: str = "mean_gain",
    baseline_revision: str | None = None,
    seed_design: SeedDesign = "paired",
    seen: Mapping[str, Collection[str]] | None = None,
    include_seen: bool = False,
    include_suspect: bool = False,
) -> Leaderboard:
    """Rank the candidates of ``base_id`` from one source's scores (a frame with SCORE_COLUMNS).

    ``metadata``: optional frame indexed by repo_id with Hub metadata (METADATA_COLUMNS, and ``sha``:
    when a model's current sha is known, only its scores at that revision are ranked).
    ``baseline_revision``: when given, only the base's scores at that revision are its baseline runs; its
    other rows (a published single run of the base, say) are ranked like any candidate.
    Works on integer codes of the string columns, so 50,000 models x 36 targets take well under a second.
    """
    codes = _Codes(scores)
    chosen = dict(config_hashes) if config_hashes else codes.widest_protocols()
    base_rows, cand_rows = _base_and_candidate_rows(codes, codes.protocol_mask(chosen), {base_id, *base_aliases},
                                                    baseline_revision, metadata)
    failed_base = base_rows & ~codes.ok & (codes.metric == codes.metric_code(TARGET_METRIC))
    base_all, base_rows = base_rows, base_rows & codes.ok
    base_stats = codes.base_stats(base_rows)
    model_codes, repos, revisions = codes.models(cand_rows)  # every candidate, even one whose runs all failed
    model_of_row = np.full(len(codes.value), -1, dtype=np.int64)
    model_of_row[cand_rows] = model_codes
    failed = cand_rows & ~codes.ok & (codes.metric == codes.metric_code(TARGET_METRIC))
    candidates = cand_rows
    suspect = cand_rows & codes.suspect & (codes.metric == codes.metric_code(TARGET_METRIC))
    cand_rows = cand_rows & codes.ok
    columns: dict[str, np.ndarray] = {"repo_id": repos, "revision": revisions}
    suite = _add_target_columns(columns, codes, (base_rows, cand_rows, suspect), model_of_row, base_stats,
                                seed_design, seen or {}, (include_seen, include_suspect))
    columns["failed_runs"] = np.bincount(model_of_row[failed], minlength=len(repos)).astype(np.int64)
    for m in summary_metrics():
        rows_of_metric = cand_rows & (codes.metric == codes.metric_code(m.key))
        mean, _, _ = _cell_stats(model_of_row[rows_of_metric], np.zeros(int(rows_of_metric.sum()), np.int64),
                                 codes.value[rows_of_metric], len(repos), 1)
        columns[m.key] = mean[:, 0]
    _gate(columns, codes, candidates, model_of_row)
    rows = pd.DataFrame(columns)
    if metadata is not None and not rows.empty:
        rows = rows.join(metadata.reindex(columns=list(METADATA_COLUMNS)), on="repo_id")
    rows = _rank(rows, sort_by)
    base_scores = scores[base_all] if base_all.any() else scores.iloc[:0]  # its failed runs too: counted
    baseline = _baseline(base_id, base_scores, base_stats, suite, rows.columns)
    if not baseline.empty:
        baseline["failed_runs"], baseline["n_seen"], baseline["n_suspect"] = int(failed_base.sum()), 0, 0
    return Leaderboard(base_id=base_id, source=source, rows=rows, baseline=baseline, suite=suite,
                       config_hashes=chosen, seed_design=seed_design, include_seen=include_seen,
                       include_suspect=include_suspect,
                       dropped=dropped_targets(scores, {base_id, *base_aliases}, chosen))


def _gate(columns: dict[str, np.ndarray], codes: _Codes, candidates: np.ndarray, model_of_row: np.ndarray) -> None:
    """A gated scorer's estimate (data/metrics.py, e.g. free energy) any of whose rows of its main metric failed a
    check: its status column says so and its summary values are blanked, shown as failed, never averaged or
    ranked (its replicates read different windows: a mean over the passing ones alone would mix their levels)."""
    n_models = len(columns["repo_id"])
    for s in gated_scorers():
        failed_rows = candidates & ~codes.ok & (codes.metric == codes.metric_code(s.metrics[0].key))
        failed = np.bincount(model_of_row[failed_rows], minlength=n_models) > 0
        for m in s.metrics:
            if m.board == "summary":
                columns[m.key] = np.where(failed, np.nan, columns[m.key])
        columns[s.status_column] = np.where(failed, s.failed_status, "")


def dropped_targets(scores: pd.DataFrame, base_names: Collection[str], chosen: Mapping[str, str]) -> tuple[str, ...]:
    """The targets whose ``lr_choice`` for the base, under the chosen protocol, has status "dropped"."""
    if scores.empty:
        return ()
    rows = scores[(scores["metric"] == LR_METRIC) & (scores["status"] == "dropped")
                  & scores["repo_id"].isin(list(base_names))]
    rows = rows[np.array([chosen.get(scorer) == h for scorer, h in zip(rows["scorer"], rows["config_hash"],
                                                                      strict=True)], dtype=bool)]
    return tuple(sorted(set(rows["target"])))


def _base_and_candidate_rows(codes: _Codes, keep: np.ndarray, base_names: set[str], baseline_revision: str | None,
                             metadata: pd.DataFrame | None) -> tuple[np.ndarray, np.ndarray]:
    """Masks of the base's baseline runs and of the candidates' rows, both within the chosen protocols."""
    is_base = np.isin(codes.repo, [i for i, r in enumerate(codes.repos) if r in base_names])
    if baseline_revision is not None:
        is_base &= codes.revision == (codes.revisions.index(baseline_revision)
                                      if baseline_revision in codes.revisions else -1)
    base_rows, cand_rows = keep & is_base, keep & ~is_base
    if metadata is not None and "sha" in metadata:
        cand_rows &= codes.current_revision_mask(metadata["sha"].dropna())
    return base_rows, cand_rows


def _add_target_columns(columns: dict[str, np.ndarray], codes: _Codes,
                        rows: tuple[np.ndarray, np.ndarray, np.ndarray], model_of_row: np.ndarray,
                        base_stats: pd.DataFrame, seed_design: SeedDesign,
                        trained_on: Mapping[str, Collection[str]], include: tuple[bool, bool]) -> tuple[str, ...]:
    """score:/gain: per target, n_targets, mean_score, mean_gain, its interval, beats_base, n_seeds, gain_df
    (under the seed design, ranking/gains.py), n_seen and n_suspect; returns the suite. ``rows``: the base's,
    the candidates' usable and the candidates' suspect rows; ``include``: (include_seen, include_suspect)."""
    base_rows, cand_rows, suspect_rows = rows
    include_seen, include_suspect = include
    n_models = len(columns["repo_id"])
    target_rows = (cand_rows | suspect_rows) & (codes.metric == codes.metric_code(TARGET_METRIC))
    used = np.unique(codes.target[target_rows])
    target_names = [codes.targets[i] for i in used]
    column_of = np.full(len(codes.targets) + 1, -1, dtype=np.int64)
    column_of[used] = np.arange(len(used))
    cand_model, cand_column = model_of_row[target_rows], column_of[codes.target[target_rows]]
    mean, var, count = _cell_stats(cand_model, cand_column, codes.value[target_rows], n_models, len(target_names))
    suite = tuple(sorted(base_stats.index)) if len(base_stats) else tuple(sorted(target_names))
    in_suite = [target_names.index(t) if t in target_names else -1 for t in suite]
    has_base = bool(suite) and set(suite) <= set(base_stats.index)
    flagged = np.array([[t in trained_on.get(repo, ()) for t in target_names] for repo in columns["repo_id"]],
                       dtype=bool).reshape(n_models, len(target_names))
    suspect = np.zeros((n_models, len(target_names)), dtype=bool)
    suspect[model_of_row[suspect_rows], column_of[codes.target[suspect_rows]]] = True
    # n_seen and n_suspect count them either way; the mean leaves them out by default
    left_out = (flagged if not include_seen else np.zeros_like(flagged)) | (
        suspect if not include_suspect else np.zeros_like(suspect))
    if seed_design == "paired":
        b = base_rows & (codes.metric == codes.metric_code(TARGET_METRIC))
        g = gains.paired((cand_model, cand_column, codes.seed[target_rows], codes.value[target_rows]),
                         (column_of[codes.target[b]], codes.seed[b], codes.value[b]), n_models, len(target_names),
                         in_suite if has_base else [], left_out)
    else:
        stats = base_stats.reindex(target_names)
        g = gains.independent(mean, var, count, stats["mean"].to_numpy(), stats["var"].to_numpy(),
                              stats["count"].fillna(0).to_numpy(), in_suite if has_base else [], left_out)
    for j, target in enumerate(target_names):
        columns[f"score:{target}"] = mean[:, j]
    for j, target in enumerate(target_names):
        if target in base_stats.index:
            columns[f"gain:{target}"] = g.per_target[:, j]
    suite_mean = _suite_cells(mean, in_suite)
    columns["n_targets"] = np.isfinite(suite_mean).sum(axis=1)
    columns["mean_score"] = suite_mean.mean(axis=1) if suite else np.full(n_models, np.nan)
    columns["mean_gain"], columns["gain_ci_low"], columns["gain_ci_high"] = g.mean, g.low, g.high
    columns["beats_base"] = np.nan_to_num(g.low, nan=-np.inf) > 0
    columns["n_seeds"] = g.n_seeds.astype(np.int64)
    columns["gain_df"] = g.df
    in_suite_cols = [c for c in in_suite if c >= 0]
    columns["n_seen"] = (flagged[:, in_suite_cols].sum(axis=1) if in_suite_cols else np.zeros(n_models)
                         ).astype(np.int64)
    columns["n_suspect"] = (suspect[:, in_suite_cols].sum(axis=1) if in_suite_cols else np.zeros(n_models)
                            ).astype(np.int64)
    return suite


class _Codes:
    """Integer codes of a scores frame's string columns (factorized once, on Arrow strings)."""

    def __init__(self, scores: pd.DataFrame):
        self.repo, self.repos = _factorize(scores["repo_id"])
        self.revision, self.revisions = _factorize(scores["revision"])
        self.metric, self.metrics = _factorize(scores["metric"])
        self.target, self.targets = _factorize(scores["target"])
        self.scorer, self.scorers = _factorize(scores["scorer"])
        self.hash, self.hashes = _factorize(scores["config_hash"])
        self.value = scores["value"].to_numpy(dtype=np.float64)
        self.seed = scores["seed"].to_numpy(dtype=np.int64)
        status = scores["status"].to_numpy(dtype=object) if "status" in scores else np.full(len(scores), OK, object)
        self.ok, self.suspect = status == OK, status == SUSPECT

    def widest_protocols(self) -> dict[str, str]:
        """For each scorer, the config hash that covers the most models (ties: the smallest hash)."""
        n_repo, n_hash = len(self.repos) + 1, len(self.hashes) + 1
        triples = np.unique((self.scorer.astype(np.int64) * n_hash + self.hash) * n_repo + self.repo)
        pairs, models = np.unique(triples // n_repo, return_counts=True)
        best: dict[str, tuple[int, str]] = {}
        for pair, n in zip(pairs.tolist(), models.tolist(), strict=True):
            scorer, config_hash = self.scorers[pair // n_hash], self.hashes[pair % n_hash]
            if scorer not in best or (-n, config_hash) < (-best[scorer][0], best[scorer][1]):
                best[scorer] = (n, config_hash)
        return {scorer: config_hash for scorer, (_, config_hash) in sorted(best.items())}

    def metric_code(self, key: str) -> int:
        return self.metrics.index(key) if key in self.metrics else -2

    def protocol_mask(self, chosen: Mapping[str, str]) -> np.ndarray:
        allowed = np.zeros((len(self.scorers) + 1, len(self.hashes) + 1), dtype=bool)
        for i, scorer in enumerate(self.scorers):
            if chosen.get(scorer) in self.hashes:
                allowed[i, self.hashes.index(chosen[scorer])] = True
        return allowed[self.scorer, self.hash]

    def current_revision_mask(self, shas: pd.Series) -> np.ndarray:
        """False for rows of a model at another revision than its current sha (rows of unknown models stay)."""
        current = pd.Series(self.repos, dtype=object).map(shas)  # sha per repo code, NaN when not crawled
        revision_code = {rev: j for j, rev in enumerate(self.revisions)}
        wanted = current.map(lambda sha: revision_code.get(sha, -1) if isinstance(sha, str) else -2)
        wanted = wanted.to_numpy(dtype=np.int64)[self.repo]
        return (wanted == -2) | (wanted == self.revision)

    def models(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """A dense code per (repo_id, revision) of the selected rows, and each code's repo and revision."""
        n_rev = max(1, len(self.revisions))
        model_codes, pairs = pd.factorize(self.repo[rows].astype(np.int64) * n_rev + self.revision[rows])
        repos = np.asarray(self.repos, dtype=object)[pairs // n_rev] if len(pairs) else np.array([], dtype=object)
        revisions = (np.asarray(self.revisions, dtype=object)[pairs % n_rev] if len(pairs)
                     else np.array([], dtype=object))
        return model_codes, repos, revisions

    def base_stats(self, rows: np.ndarray) -> pd.DataFrame:
        rows = rows & (self.metric == self.metric_code(TARGET_METRIC))
        frame = pd.DataFrame({"target": np.asarray(self.targets, dtype=object)[self.target[rows]],
                              "value": self.value[rows]})
        return frame.groupby("target")["value"].agg(["mean", "var", "count"])


def _factorize(column: pd.Series) -> tuple[np.ndarray, list[str]]:
    codes, uniques = pd.factorize(column)
    return codes, [str(u) for u in uniques]


def _cell_stats(rows: np.ndarray, cols: np.ndarray, values: np.ndarray, n_rows: int, n_cols: int):
    """Mean, sample variance (two-pass) and count of ``values`` per (row, col) cell; NaN where empty."""
    cell = rows.astype(np.int64) * n_cols + cols
    size = n_rows * n_cols
    count = np.bincount(cell, minlength=size).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.bincount(cell, weights=values, minlength=size) / count
        squares = np.bincount(cell, weights=(values - mean[cell]) ** 2, minlength=size)
        var = np.where(count >= 2, squares / (count - 1), np.nan)
    shape = (n_rows, n_cols)
    return mean.reshape(shape), var.reshape(shape), count.reshape(shape)


def _suite_cells(matrix: np.ndarray, in_suite: list[int]) -> np.ndarray:
    """The suite's columns of a per-target matrix, NaN for suite targets nobody has."""
    out = np.full((matrix.shape[0], len(in_suite)), np.nan)
    for k, j in enumerate(in_suite):
        if j >= 0:
            out[:, k] = matrix[:, j]
    return out


def direction(key: str) -> bool:
    """True when higher is better for this column key (its column's declaration: ranking/columns.py, from the
    metric's for a scorer's column)."""
    try:
        higher = column_for(key).higher_is_better
    except KeyError:
        higher = None
    if higher is None:
        raise KeyError(f"cannot sort by {key!r}: no declared direction")
    return higher


def _rank(rows: pd.DataFrame, sort_by: str) -> pd.DataFrame:
    if sort_by not in rows:
        rows[sort_by] = np.nan
    keys, ascending = [sort_by], [not direction(sort_by)]
    if sort_by != "probe_accuracy":
        keys.append("probe_accuracy")
        ascending.append(False)
    keys += ["repo_id", "revision"]
    ascending += [True, True]
    rows = rows.sort_values(keys, ascending=ascending, na_position="last", kind="mergesort").reset_index(drop=True)
    ranked = rows[sort_by].notna().to_numpy()  # a model with no value of the key is listed, never ranked
    rows.insert(0, "rank", pd.array([int(r) if ok else pd.NA for r, ok in zip(np.cumsum(ranked), ranked,
                                                                              strict=True)], dtype="Int64"))
    rows["is_baseline"] = False
    return rows


def _baseline(base_id: str, base_scores: pd.DataFrame, base_stats: pd.DataFrame, suite: tuple[str, ...],
              columns: pd.Index) -> pd.DataFrame:
    if base_scores.empty:
        return pd.DataFrame(columns=columns)
    row: dict[str, object] = dict.fromkeys(columns, np.nan)
    revisions = base_scores["revision"].unique()
    row.update(rank=0, repo_id=base_id, revision=revisions[0] if len(revisions) == 1 else "", is_baseline=True,
               beats_base=False, n_targets=len(base_stats),
               n_seeds=int(base_stats["count"].min()) if len(base_stats) else 0)
    for target, mean in base_stats["mean"].items():
        row[f"score:{target}"] = mean
        row[f"gain:{target}"] = 0.0
    if suite and len(base_stats):
        row["mean_score"] = base_stats["mean"].reindex(list(suite)).mean()
        row["mean_gain"] = 0.0
    summary = [m.key for m in summary_metrics()]
    others = base_scores[base_scores["metric"].isin(summary) & (base_scores["status"] == OK)]
    for metric_key, value in others.groupby("metric")["value"].mean().items():
        row[metric_key] = value
    return pd.DataFrame([row]).reindex(columns=columns).astype({"rank": "Int64"})

