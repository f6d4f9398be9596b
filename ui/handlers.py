"""Every UI action as a plain method: ui/events.py turns them into Gradio updates, tests call them directly.

Each action on a board takes ``include_seen`` and ``include_suspect`` (keywords, default False): the board shown
either leaves out of each model's mean gain the suite targets its model card says it was trained on (the zero-shot
estimand) and its suspect imported cells (column-shifted rows of a published file), or includes them. The table,
its downloads, the model page, the comparison and the insights all read the same one."""

from __future__ import annotations

import functools
import hashlib
import logging
import re
import time
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from data.errors import LeaderboardError, StoreError, SubmissionRejected, public_sentence
from data.escape import markdown_text
from data.hub import HubClient
from data.metrics import PROJECT_SOURCE
from data.records import CandidateStatus, JobStatus
from data.selection import resolve_base_id
from data.settings import Settings
from data.store import Store
from data.submissions import submit
from ranking.export import FORMATS, render
from ranking.leaderboard import Leaderboard
from ranking.stats import pearson_with_ci
from ranking.study_report import source_labels, study_report, study_rows
from service.boards import read_study
from ui import compare, insights, model_page
from ui.board_cache import BoardKey, LeaderboardService
from ui.results import BoardControls, Comparison, InsightsPanels, ModelPage, StudyPanel
from ui.urls import page_query, share_markdown
from ui.views import (
    ViewQuery,
    column_widths,
    display_frame,
    empty_filters,
    filter_rows,
    license_choices,
    size_choices,
    sort_choices,
    status_line,
)

logger = logging.getLogger(__name__)

EXPORT_TTL_S = 3600
MAX_EXPORT_FILES = 64  # downloads are served at once; the folder keeps at most this many, none past the TTL
JOB_COLUMNS = ["id", "model", "revision", "scorer", "status", "attempts", "error", "queued", "finished"]


def _prune(folder: Path) -> None:
    """Delete exports older than EXPORT_TTL_S, then the oldest beyond MAX_EXPORT_FILES - 1 (room for one more)."""
    files = sorted((p for p in folder.iterdir() if p.is_file()), key=lambda p: p.stat().st_mtime)
    now = time.time()
    for i, old in enumerate(files):
        if now - old.stat().st_mtime > EXPORT_TTL_S or i < len(files) - (MAX_EXPORT_FILES - 1):
            old.unlink(missing_ok=True)


def save_export(folder: Path, name: str, data: bytes, fmt: str) -> Path:
    """``data`` as ``folder/<name>-<hash of data>.<fmt>`` (same bytes, same file), written whole or not at all; the
    folder is pruned first (EXPORT_TTL_S, MAX_EXPORT_FILES). ``name`` must be a safe file name stem."""
    path = folder / f"{name}-{hashlib.sha256(data).hexdigest()[:16]}.{fmt}"
    folder.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        _prune(folder)
        tmp = path.with_suffix(f".{fmt}.part")
        tmp.write_bytes(data)
        tmp.replace(path)
    return path


def personal_validation_markdown(base_id: str) -> str:
    """The bundled "does personalising help?" table (``python -m scoring personal-study``) under the study of the
    base it was measured on; empty for any other base or when the file cannot be read."""
    from ranking.personal_validation import validation_markdown
    from service.bundles import read_personal_validation

    doc = read_personal_validation()
    if doc is None or doc["base_id"] != base_id:
        return ""
    intro = ("Spearman across the study's models between each personal estimator, computed on a target's training "
             "rows, and the measured gain on that target, beside the general rank (mean gain on the other targets); "
             "95% percentile bootstrap over models. Few models: read the intervals. README: \"Does personalising "
             "help?\"")
    return "\n\n#### Does personalising help? (the Your data tab's estimators)\n\n" + intro + "\n\n" + "\n".join(
        validation_markdown(doc["rows"])) + "\n"


def study_meta(path: Path | None, base_id: str) -> dict | None:
    """The bundled snapshot's meta when its study ran on ``base_id``: the study report's design, source checks,
    checkpoints and contamination come from it, as the README's block does. None without a snapshot, when it cannot
    be read, or when its study is another base's."""
    if path is None:
        return None
    try:
        stat = Path(path).stat()
        meta = _snapshot_meta(str(path), stat.st_mtime_ns, stat.st_size)
    except (OSError, LeaderboardError) as e:
        logger.warning("the study snapshot's meta was not read: %s", e)
        return None
    study = meta.get("study")
    return meta if isinstance(study, dict) and study.get("base_id") == base_id else None


@functools.lru_cache(maxsize=4)
def _snapshot_meta(path: str, mtime_ns: int, size: int) -> dict:
    """One read per version of the file (its path, modification time and size)."""
    from data.snapshot import read_snapshot

    return read_snapshot(Path(path)).meta


# the scatter's models are not the study report's: say so under it, so the two correlations are not read as one
FE_SCOPE = ("Over this board's candidates whose free energy passed its convergence gate (the base, at gain 0 by "
            "definition, and unconverged estimates left out); the study report's validity table counts both.")


class AppHandlers:
    def __init__(self, store: Store, settings: Settings, *, hub_factory: Callable[[], HubClient] | None = None):
        self.store = store
        self.settings = settings
        self.service = LeaderboardService(store)
        self._hub_factory = hub_factory or (lambda: HubClient.interactive(settings))  # a person is waiting
        self._export_dir = Path(settings.cache_dir) / "exports"

    # ------------------------------------------------------------ leaderboard
    def default_selection(self, base: str | None = None, source: str | None = None) -> BoardKey:
        """The board a request shows, resolved once: the requested (base, source) when they exist (a legacy or
        differently cased id opens its canonical board), else the best-populated leaderboard."""
        available = self.service.available()
        if not available:
            return BoardKey(None, PROJECT_SOURCE)
        if base:
            base, _ = resolve_base_id(base, known=[b for b, _, _ in available])
        if base in {b for b, _, _ in available}:
            sources = self.service.sources(base)
            return BoardKey(base, source if source in sources else sources[0])
        best = max(available, key=lambda a: (a[2], a[1] == PROJECT_SOURCE))
        return BoardKey(best[0], best[1])

    def board_links(self) -> str:
        """A link to every leaderboard with scores, largest first, so each is one click from any page."""
        boards = sorted(self.service.available(), key=lambda a: (-a[2], a[0], a[1]))
        links = [f"[{markdown_text(b)} · {s} · {n:,} scored]({page_query(b, s)})" for b, s, n in boards if n]
        return ("**Leaderboards:** " + " — ".join(links)) if links else ""

    def url_note(self, requested_base: str | None, shown_base: str | None) -> str | None:
        """What to tell a visitor whose ``?base=`` was another id of a board (roberta-base), or no board."""
        if not requested_base or not shown_base:
            return None
        canonical, note = resolve_base_id(requested_base, known=self.service.bases())
        if canonical == shown_base:
            return note and f"{note}."
        return f"There is no leaderboard for {requested_base.strip()[:200]}; showing {shown_base}."

    def board(self, key: BoardKey, *, include_seen: bool = False, include_suspect: bool = False) -> Leaderboard | None:
        return None if not key.base_id else self.service.board(key, include_seen, include_suspect)

    def leaderboard(self, key: BoardKey, query: ViewQuery, *, include_seen: bool = False,
                    include_suspect: bool = False) -> tuple[pd.DataFrame, list[str], str]:
        """(table, column datatypes, status line) of the current view."""
        board = self.board(key, include_seen=include_seen, include_suspect=include_suspect)
        if board is None:
            return pd.DataFrame(), [], "No leaderboard yet."
        view = filter_rows(board, query)
        frame, datatypes = display_frame(board, view, query)
        return frame, datatypes, status_line(board, view, query)

    def shown_ids(self, key: BoardKey, query: ViewQuery, *, include_seen: bool = False,
                  include_suspect: bool = False) -> list[str]:
        """The repo ids of the view's rows in display order (baseline first), so a clicked row maps back to its
        model."""
        board = self.board(key, include_seen=include_seen, include_suspect=include_suspect)
        if board is None:
            return []
        view = filter_rows(board, query)
        limit = None if query.max_rows == "all" else int(query.max_rows)
        ids = list(view["repo_id"] if limit is None else view["repo_id"].head(limit))
        return ([board.base_id] if not board.baseline.empty else []) + ids

    def controls(self, key: BoardKey, *, include_seen: bool = False, include_suspect: bool = False
                 ) -> BoardControls:
        """Choices that depend on the selected leaderboard."""
        board = self.board(key, include_seen=include_seen, include_suspect=include_suspect)
        return BoardControls(sources=self.service.sources(key.base_id) if key.base_id else [PROJECT_SOURCE],
                             licenses=license_choices(board) if board else [],
                             sort=sort_choices(board) if board else [("mean gain", "mean_gain")],
                             models=list(board.to_frame()["repo_id"]) if board else [],
                             sizes=size_choices(board), empty_filters=empty_filters(board),
                             top_model=model_page.top_model(board))

    def export(self, key: BoardKey, query: ViewQuery | None, fmt: str, *,
               include_seen: bool = False, include_suspect: bool = False) -> Path:
        """Write the current view (``query``) or the full ranking (None) of the board shown as a file; returns its
        path."""
        if fmt not in FORMATS:
            raise ValueError(f"unknown export format {fmt!r}")
        board = self.board(key, include_seen=include_seen, include_suspect=include_suspect)
        if board is None:
            raise SubmissionRejected("There is no leaderboard to download yet.")
        frame = None
        scope = "full"
        if query is not None:
            view = filter_rows(board, query)
            frame = pd.concat([board.baseline, view], ignore_index=True) if not board.baseline.empty else view
            scope = "view"
        data = render(board, fmt, frame)
        estimand = "-include-seen" * include_seen + "-include-suspect" * include_suspect
        name = re.sub(r"[^A-Za-z0-9._-]+", "_", f"{board.base_id}-{key.source}-{scope}{estimand}")
        return save_export(self._export_dir, name, data, fmt)

    # ------------------------------------------------------------- model page
    def model_page(self, key: BoardKey, repo_id: str, *, include_seen: bool = False,
                   include_suspect: bool = False) -> ModelPage:
        board = self.board(key, include_seen=include_seen, include_suspect=include_suspect)
        repo_id = (repo_id or "").strip()
        if board is None or not repo_id:
            return ModelPage(header="Pick a model on the leaderboard (click its row) or type its id.",
                             gains=insights.empty_figure("no model selected"), free_energy="",
                             chains=pd.DataFrame(columns=["chain", "llc", "status"]),
                             dropout=pd.DataFrame(columns=["dropout module", "rate"]),
                             sample_efficiency=insights.empty_figure("no model selected"),
                             revisions=model_page.scored_revisions(self.store, ""), share="")
        row = model_page.find_row(board, repo_id)
        revision = str(row["revision"]) if row is not None else ""
        fe_text, chains = model_page.free_energy_details(self.store, repo_id, revision)
        points = model_page.sample_efficiency_points(self.store, repo_id, board.base_id)
        return ModelPage(
            header=model_page.header_markdown(board, row, repo_id),
            gains=insights.target_gains_bar(row) if row is not None else insights.empty_figure("not ranked here"),
            free_energy=fe_text, chains=chains, dropout=model_page.guided_dropout_rates(self.store, repo_id, revision),
            sample_efficiency=insights.sample_efficiency_figure(points),
            revisions=model_page.scored_revisions(self.store, repo_id),
            share=share_markdown(page_query(board.base_id, key.source, model=repo_id, include_seen=include_seen,
                                            include_suspect=include_suspect), "this model page"))

    # ---------------------------------------------------------------- compare
    def compare(self, key: BoardKey, ids, *, include_seen: bool = False,
                include_suspect: bool = False) -> Comparison:
        """2-4 models of one leaderboard side by side: header, grouped per-target gain bars, one table (with its
        datatypes and column widths) and the shareable link. Raises compare.CompareRejected with the reason."""
        board = self.board(key, include_seen=include_seen, include_suspect=include_suspect)
        if board is None:
            raise compare.CompareRejected("There is no leaderboard to compare models on yet.")
        rows = compare.compared_rows(board, ids)
        table, datatypes = compare.compare_table(rows)
        return Comparison(header=compare.compare_header(board, rows), gains=insights.compare_gains_figure(rows),
                          table=table, datatypes=datatypes, widths=column_widths(table),
                          share=share_markdown(page_query(board.base_id, key.source, compare=rows["repo_id"],
                                                          include_seen=include_seen, include_suspect=include_suspect),
                                               "this comparison"))

    def add_to_compare(self, key: BoardKey, picked, repo_id: str | None, *,
                       include_seen: bool = False, include_suspect: bool = False) -> tuple[str, ...]:
        """The picked ids with this model page's model added; raises compare.CompareRejected when it is not on
        the leaderboard or the comparison is full."""
        board = self.board(key, include_seen=include_seen, include_suspect=include_suspect)
        repo_id = (repo_id or "").strip()
        if board is not None and repo_id and model_page.find_row(board, repo_id) is None:
            raise compare.CompareRejected(f"{repo_id} is not on the {board.base_id} leaderboard ({key.source} "
                                          "scores).")
        return compare.with_model(picked, repo_id)

    # --------------------------------------------------------------- insights
    def insights(self, key: BoardKey, *, include_seen: bool = False, include_suspect: bool = False
                 ) -> InsightsPanels:
        """Correlations, heatmap and study of the board shown; "beats the base" of every base's board under the
        same estimand (``include_seen``, ``include_suspect``)."""
        board = self.board(key, include_seen=include_seen, include_suspect=include_suspect)
        frame = board.to_frame() if board is not None else pd.DataFrame(columns=["is_baseline", "mean_gain"])
        fe_fig, fe_corr = insights.scatter_vs_gain(frame, "free_energy", "free energy")
        fe_pairs = insights.pairs_with_gain(frame, "free_energy")
        study = self._study(board)
        probe_fig, probe_corr = insights.scatter_vs_gain(frame, "probe_accuracy", "probe accuracy")
        summary = []
        for b in self.service.bases():
            sources = self.service.sources(b)
            chosen = key.source if key.source in sources else sources[0]
            rows = self.service.board(BoardKey(b, chosen), include_seen, include_suspect).rows
            ranked = int(rows["mean_gain"].notna().sum()) if len(rows) else 0
            beating = int(rows["beats_base"].fillna(False).astype(bool).sum()) if len(rows) else 0
            summary.append((f"{b} ({chosen})", beating, ranked))
        probe_pairs = insights.pairs_with_gain(frame, "probe_accuracy")
        # Spearman's ρ is each figure's title: the line above it adds Pearson's r (and the free energy's scope)
        return InsightsPanels(
            free_energy=fe_fig,
            free_energy_text="  \n".join([insights.correlation_text(pearson_with_ci(*fe_pairs), "free energy",
                                                                       "mean gain"), FE_SCOPE]),
            probe=probe_fig,
            probe_text=insights.correlation_text(pearson_with_ci(*probe_pairs), "probe accuracy", "mean gain"),
            heatmap=insights.gain_heatmap(frame), beats_base=insights.beats_base_bars(summary), study=study,
            has_free_energy=len(fe_pairs[0]) > 0)

    def _study(self, board: Leaderboard | None) -> StudyPanel:
        """The offline study's report and source × target gain matrix, when this project leaderboard's candidates
        carry ``dataset:`` tags and have intertraining gains (``python -m scoring study``); else empty."""
        if board is not None and board.source == PROJECT_SOURCE:
            labels = source_labels(self.store.candidates(board.base_id, CandidateStatus.OK))
            if labels and study_rows(board.rows, labels)["repo_id"].isin(labels.keys()).any():
                report = study_report(board, read_study(self.store, board.base_id),
                                      meta=study_meta(self.settings.snapshot_path, board.base_id),
                                      published=published_baseline_board(self.store))
                return insights.study_view(report, personal_validation_markdown(board.base_id))
        return StudyPanel(study="", study_matrix=insights.empty_figure("no source × target study for this leaderboard"))

    # ----------------------------------------------------------------- submit
    def submit(self, repo_id: str, revision: str | None, submitter: str | None = None) -> str:
        """Queue a model; raises SubmissionRejected with the reason to show (or when ``submitter`` is over its
        hourly limit)."""
        try:
            result = submit(repo_id, revision, self._hub_factory(), self.store, self.settings, submitter=submitter)
        except StoreError as e:  # busy, read-only, damaged, full: its sentence (no path), not a generic failure
            logger.error("queueing %r failed: %s", repo_id, e)
            raise SubmissionRejected(public_sentence(e)) from e
        self.service.invalidate()
        scorers = ", ".join(j.scorer for j in result.jobs)
        if not result.is_new:
            return (f"**{result.repo_id}** at `{result.sha[:8]}` is already queued or scored "
                    f"(jobs: {scorers}).")
        position = f" Queue position: **{result.queue_position}**." if result.queue_position else ""
        return (f"Queued **{result.repo_id}** at `{result.sha[:8]}` for the {result.base_id} leaderboard "
                f"(jobs: {scorers}).{position}")

    def jobs(self, limit: int = 200) -> pd.DataFrame:
        """The newest jobs with their status and, for failures, the error (no personal ranking's job)."""
        jobs = self.store.queue.public_jobs(limit)
        rows = [[j.id, j.repo_id, j.revision[:8], j.scorer, j.status.value, j.attempts, _first_line(j.error),
                 j.created_at.isoformat(timespec="seconds") if j.created_at else "",
                 j.finished_at.isoformat(timespec="seconds") if j.finished_at else ""] for j in jobs]
        return pd.DataFrame(rows, columns=JOB_COLUMNS)

    def job_counts(self) -> str:
        stats = self.store.queue.queue_stats()  # personal rankings' jobs left out, as in ``jobs``
        counts = {status: getattr(stats, status.value.lower()) for status in JobStatus}
        return " · ".join(f"{status.value.lower()} {n}" for status, n in counts.items() if n) or "no jobs yet"


def _first_line(error: str | None) -> str:
    """A job's error as the Jobs view shows it: its first line (a sentence; an old row may hold a traceback)."""
    return (error or "").strip().split("\n", 1)[0]


def published_baseline_board(store) -> Leaderboard | None:
    """IBM's 2023 board whose probe-vs-gain τ the study's validity table prints as the published baseline; None
    when this store has not imported it."""
    from data.metrics import PUBLISHED_SOURCE
    from ranking.leaderboard import leaderboard_from
    from ranking.validity import PUBLISHED_BASELINE_BASE
    from service.boards import read_board

    data = read_board(store, PUBLISHED_BASELINE_BASE, PUBLISHED_SOURCE)
    return leaderboard_from(data) if not data.scores.empty else None
