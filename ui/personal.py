"""The "Your data" tab's work as plain methods (no gradio): read a user's file's columns, check and queue a personal
ranking, and show a request's state, ranking and downloads. ui/events.py turns these into Gradio updates.

The web process only validates and queues (``service.personal_submit``, which imports no torch); a scoring worker
(``python -m scoring work``) scores. A request is named by its random token, the key of its shareable URL
(``?personal=TOKEN``). A file payload names only a regular file in Gradio's upload folder (``ui/uploads.py``), and
every read runs in a child process with a time budget and a memory cap (``ui/sandbox.py``), after the client's hourly
slot was taken. What the tab shows is rendered in ``ui/personal_views.py``.
"""

from __future__ import annotations

import functools
import logging
import math
import re
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from data.errors import StoreError, public_sentence
from data.metrics import PROJECT_SOURCE
from data.records import JobStatus, PersonalRequest
from data.settings import Settings
from data.store import Store
from data.user_data import Columns, UploadLimits, UserData, UserDataError, read_columns, read_hub_dataset, read_upload
from ranking.personal import personal_csv, personal_json
from service.personal_submit import MAX_TOP_K, PersonalError, submit
from ui import sandbox
from ui.board_cache import LeaderboardService
from ui.handlers import save_export
from ui.layout import PersonalDefaults
from ui.personal_views import (  # noqa: F401 (escaped, data_markdown: re-exported for ui/events.py and tests)
    data_markdown,
    duration,
    escaped,
    intro_markdown,
    ranking_table,
    rule_markdown,
    status_markdown,
)
from ui.uploads import delete_upload, upload_root, uploaded_file
from ui.urls import personal_query, share_markdown

logger = logging.getLogger(__name__)

NO_PAIR = ""  # the second-text picker's value for "none": a single-text task
TEXT_GUESSES = ("text", "sentence", "sentence1", "review", "content", "question", "premise")
PAIR_GUESSES = ("sentence2", "text_pair", "hypothesis")
LABEL_GUESSES = ("label", "labels", "gold_label", "class", "category", "target", "topic", "sentiment", "polarity",
                 "emotion", "intent", "stance", "y")
DEFAULT_SPLIT = "train"
_UNSAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")


class PersonalRefused(ValueError):
    """A personal ranking that is not queued; ``reason`` is one sentence for the user (not yet escaped)."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True, kw_only=True)
class PersonalForm:
    """What the tab's controls hold when Rank is pressed; empty strings where nothing was given."""

    base_id: str = ""
    file_path: str | None = None  # the uploaded file where Gradio saved it (its name is the user's file name)
    hub_id: str = ""
    hub_config: str = ""
    hub_split: str = ""
    hub_revision: str = ""
    text_column: str = ""
    pair_column: str = NO_PAIR
    label_column: str = ""
    top_k: float | int | str | None = None  # None: settings.personal_top_k
    models: str = ""  # Hub ids and ./folders to rank with the base, instead of its top K ("" : the top K)


@dataclass(frozen=True, slots=True, kw_only=True)
class ColumnChoices:
    """An uploaded file's columns and the pickers' first guesses (``pair`` NO_PAIR: none)."""

    columns: tuple[str, ...]
    text: str
    pair: str
    label: str


@dataclass(frozen=True, slots=True, kw_only=True)
class PersonalState:
    """What the tab shows of one request: Markdown (escaped), the ranking once done, its files."""

    share: str = ""  # the link to this ranking
    status: str = ""  # what it is doing, per model
    table: pd.DataFrame | None = None
    datatypes: list[str] = field(default_factory=list)
    rule: str = ""  # how the combined rank is made, and what each estimator measures
    csv_path: Path | None = None
    json_path: Path | None = None
    is_open: bool = False  # PENDING or RUNNING: worth asking again


class PersonalHandlers:
    def __init__(self, store: Store, settings: Settings, service: LeaderboardService | None = None, *,
                 uploads: Path | None = None):
        """``uploads``: the only folder a file payload may name (default: Gradio's upload folder)."""
        self.store = store
        self.settings = settings
        self.service = service or LeaderboardService(store)
        self.uploads = (uploads or upload_root()).resolve()
        self._export_dir = Path(settings.cache_dir) / "exports"

    @property
    def limits(self) -> UploadLimits:
        return UploadLimits(max_rows=self.settings.personal_max_rows, max_bytes=self.settings.personal_max_bytes)

    def bases(self) -> list[str]:
        """The leaderboard's bases a personal ranking can run on (crawled here, so their candidates are known)."""
        crawled = {b.repo_id for b in self.store.bases()}
        return [b for b in self.service.bases() if b in crawled]

    def default_base(self, shown: str | None = None) -> str | None:
        bases = self.bases()
        return shown if shown in bases else (bases[0] if bases else None)

    def defaults(self, shown: str | None = None) -> PersonalDefaults:
        """What the tab opens with: the bases, ``shown`` picked when a ranking can run on it, the default K."""
        return PersonalDefaults(bases=self.bases(), base0=self.default_base(shown), top_k=self.settings.personal_top_k,
                                max_top_k=MAX_TOP_K, intro=intro_markdown(self.settings),
                                models_hint=models_hint(self.settings))

    # ------------------------------------------------------------------ form
    def columns(self, file_path: str | None) -> ColumnChoices:
        """The uploaded file's columns, with guesses for the pickers; raises PersonalRefused (the file's problem)."""
        if not file_path:
            return ColumnChoices(columns=(), text="", pair=NO_PAIR, label="")
        try:
            path = uploaded_file(file_path, self.uploads)
            found = tuple(sandbox.run_bounded(functools.partial(read_columns, path, path.name, limits=self.limits),
                                              what="the file"))
        except UserDataError as e:
            raise PersonalRefused(e.reason) from e
        text = _guess(found, TEXT_GUESSES) or (found[0] if found else "")
        label = _guess(found, LABEL_GUESSES, exclude=(text,)) or next((c for c in reversed(found) if c != text), "")
        pair = _guess(found, PAIR_GUESSES, exclude=(text, label)) or NO_PAIR
        return ColumnChoices(columns=found, text=text, pair=pair, label=label)

    def read(self, form: PersonalForm) -> UserData:
        """The form's data, read and validated (the file, or the Hub dataset); raises PersonalRefused."""
        has_file, hub_id = bool(form.file_path), (form.hub_id or "").strip()
        if has_file and hub_id:
            raise PersonalRefused("Give either a file or a Hub dataset, not both: clear one of them.")
        if not has_file and not hub_id:
            raise PersonalRefused("Upload a CSV, JSON Lines or Parquet file, or name a Hub dataset, to rank the "
                                  "models on.")
        # column names exactly as the file has them (" text" is not "text"); blank means not picked
        text, label, pair = (form.text_column or ""), (form.label_column or ""), (form.pair_column or "")
        if has_file and not (text.strip() and label.strip()):
            self.columns(form.file_path)  # a file that cannot be read says so before any picker is asked for
        if not text.strip():
            raise PersonalRefused("Pick the column that holds the text.")
        if not label.strip():
            raise PersonalRefused("Pick the column that holds the label.")
        columns = Columns(text=text, label=label, pair=pair if pair.strip() else None)
        try:
            if has_file:
                path = uploaded_file(form.file_path, self.uploads)
                return sandbox.run_bounded(functools.partial(read_upload, path, columns, name=path.name,
                                                             limits=self.limits), what="the file")
            return self._read_hub(hub_id, columns, form)
        except UserDataError as e:
            raise PersonalRefused(e.reason) from e

    def _read_hub(self, hub_id: str, columns: Columns, form: PersonalForm) -> UserData:
        """The Hub dataset, downloaded into a folder of its own that goes as soon as its rows are read (whether
        they are used or refused): the datasets cache never keeps a user's data."""
        root = Path(self.settings.cache_dir) / "user-datasets"
        root.mkdir(parents=True, exist_ok=True)
        folder = Path(tempfile.mkdtemp(dir=root))
        try:
            read = functools.partial(read_hub_dataset, hub_id, columns=columns,
                                     config=(form.hub_config or "").strip() or None,
                                     split=(form.hub_split or "").strip() or DEFAULT_SPLIT,
                                     revision=(form.hub_revision or "").strip() or None, limits=self.limits,
                                     cache_dir=folder)
            return sandbox.run_bounded(read, what="the dataset", time_s=sandbox.HUB_TIME_BUDGET_S)
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    def rank(self, form: PersonalForm, submitter: str | None = None) -> PersonalRequest:
        """Check the form and queue its personal ranking (one job); raises PersonalRefused and queues nothing.
        A ``submitter`` (client address) queues at most ``settings.personal_limit_per_hour`` per hour."""
        base_id = (form.base_id or "").strip()
        if not base_id:
            raise PersonalRefused("Pick a base model: its top candidates on the leaderboard are ranked on your data.")
        top_k = self._top_k(form.top_k)
        try:
            slot = self._take_slot(submitter)  # before any parse or Hub request: a client at its limit costs nothing
        except StoreError as e:
            logger.error("no hourly slot for a personal ranking: %s", e)
            raise PersonalRefused(public_sentence(e)) from e
        try:
            data = self.read(form)
            request = submit(self.store, self.settings, base_id=base_id, data=data, top_k=top_k,
                             models=form.models or "")
        except BaseException as e:
            self._release_slot(slot)
            refusal = _refusal(e)
            if refusal is e:
                raise
            raise refusal from e
        if form.file_path:  # its rows are in the store now: the uploaded copy goes
            delete_upload(uploaded_file(form.file_path, self.uploads), self.uploads)
        logger.info("personal %s queued: %s on %d rows, top %d", request.id[:8], request.base_id, data.num_rows,
                    request.top_k)
        return request

    def _release_slot(self, slot: int | None) -> None:
        if slot is not None:
            try:
                self.store.rate.release_slot(slot)
            except StoreError:
                logger.exception("could not give back a refused request's hourly slot")

    def _take_slot(self, submitter: str | None) -> int | None:
        """One of the submitter's hourly personal rankings (its event id), or PersonalRefused saying when."""
        if submitter is None:
            return None
        from datetime import UTC, datetime, timedelta

        limit = self.settings.personal_limit_per_hour
        slot, free_at = self.store.rate.take_slot(submitter, "personal", limit, timedelta(hours=1), datetime.now(UTC))
        if slot is None:
            raise PersonalRefused(f"You have queued {limit} personal rankings in the last hour, the limit; the next "
                                  f"can be queued at {free_at:%H:%M} UTC.")
        return slot

    def _top_k(self, value: float | int | str | None) -> int:
        if value is None or (isinstance(value, str) and not value.strip()):
            return self.settings.personal_top_k
        refusal = PersonalRefused(f"The number of candidates must be a whole number from 0 to {MAX_TOP_K}.")
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise refusal from None
        if not math.isfinite(number) or not number.is_integer() or not 0 <= number <= MAX_TOP_K:
            raise refusal
        return int(number)

    # ------------------------------------------------------------------ state
    def state(self, token: str | None) -> PersonalState:
        """What the tab shows of the request named ``token`` (nothing for no token; one sentence for an unknown
        or expired one)."""
        token = (token or "").strip()
        if not token:
            return PersonalState()
        request = self.store.requests.personal(token)
        if request is None:
            return PersonalState(status=f"**No ranking at this link.** It is unknown, or it has expired: a ranking "
                                        f"is kept for {duration(self.settings.personal_ttl_s)}.")
        share = share_markdown(personal_query(request.id), "this ranking")
        alive = request.status is not JobStatus.PENDING or self.store.queue.worker_alive()
        status = "\n\n".join([status_markdown(request, self.expected_models(request), worker_alive=alive),
                              data_markdown(request)])
        if request.status is not JobStatus.DONE or request.result is None:
            return PersonalState(share=share, status=status,
                                 is_open=request.status in (JobStatus.PENDING, JobStatus.RUNNING))
        table, datatypes = ranking_table(request.result)
        return PersonalState(share=share, status=status, table=table, datatypes=datatypes,
                             rule=rule_markdown(request.result), csv_path=self._file(request, "csv"),
                             json_path=self._file(request, "json"))

    def expected_models(self, request: PersonalRequest) -> int:
        """How many models the request's job scores: the models named, or the base and up to ``top_k`` ranked
        candidates."""
        if request.result is not None:
            return len(request.result.models)
        if request.models:
            return int(request.summary.get("models", len(request.models) + 1))
        ranked = len(self.service.board(self.service.key(request.base_id, PROJECT_SOURCE)).rows)
        return 1 + min(request.top_k, ranked)

    def _file(self, request: PersonalRequest, fmt: str) -> Path:
        data = personal_csv(request.result) if fmt == "csv" else personal_json(request.result)
        return save_export(self._export_dir, _UNSAFE_NAME.sub("_", f"personal-{request.base_id}"), data, fmt)


def models_hint(settings: Settings) -> str:
    """The models box's placeholder: Hub ids, and ./NAME folders when this server has a models folder."""
    root = settings.models_dir
    if root is None or not Path(root).is_dir():
        return "owner/name, owner/name@revision — comma-separated or one per line (Hub models)"
    local = sorted(p.name for p in Path(root).iterdir() if p.is_dir() and not p.name.startswith("."))[:3]
    example = ", ".join(f"./{n}" for n in local) if local else "./folder"
    return f"owner/name, {example} — Hub ids, or folders in this server's models folder"


def _refusal(error: BaseException) -> BaseException:
    """A refused request's sentence: its own, a store fault's public one; anything else passes as it is."""
    if isinstance(error, PersonalRefused):
        return error
    if isinstance(error, StoreError):
        logger.error("queueing a personal ranking failed: %s", error)
        return PersonalRefused(public_sentence(error))
    if isinstance(error, PersonalError):
        return PersonalRefused(str(error))
    return error


def _guess(columns: tuple[str, ...], names: tuple[str, ...], exclude: tuple[str, ...] = ()) -> str:
    """The first column whose name (any case) is one of ``names``, else ""."""
    lowered = {c.strip().lower(): c for c in reversed(columns) if c not in exclude}
    return next((lowered[n] for n in names if n in lowered), "")


