"""The app's event handlers: what each event (ui/wiring.py) does, as methods of ``AppEvents`` over ``AppHandlers``.

The work is in ``ui.handlers.AppHandlers`` (no gradio); these methods turn its results into Gradio values and
updates, in the order of the event's outputs: a ``ui.layout`` group (``BoardView``, ``ModelView``, ...) filled
with values, read out by ``as_list()``. Filter values arrive as ``*filters``, in ``Filters`` field order; the
events of the model page, comparison and insights get the ``include_seen`` toggle's value last, so they read the
board the table shows. No postponed annotations here: Gradio reads the ``gr.Request`` / ``gr.SelectData``
annotations at runtime.
"""

import html
import logging
from dataclasses import fields, replace
from pathlib import Path

import gradio as gr

from data.errors import SubmissionRejected
from data.escape import markdown_text
from ranking.columns import DEFAULT_GROUPS
from service.personal_submit import unfetchable_sentence
from ui.board_cache import BoardKey
from ui.compare import CompareRejected
from ui.handlers import AppHandlers
from ui.layout import (
    BoardView,
    CompareView,
    Filters,
    InsightsView,
    JobsView,
    ModelView,
    PersonalInputs,
    PersonalView,
    RestoredView,
    TableView,
)
from ui.personal import NO_PAIR, PersonalForm, PersonalHandlers, PersonalRefused, PersonalState, escaped
from ui.results import Comparison
from ui.urls import page_params, page_query, parse_ids
from ui.views import DEFAULT_ROWS, SIZE_CHOICES, ViewQuery, column_widths, escape_markdown, table_value

logger = logging.getLogger(__name__)


def view_query(filters: Filters) -> ViewQuery:
    """The filter controls' values as a query; an empty control means its default."""
    return ViewQuery(search=filters.search or "", licenses=tuple(filters.licenses or ()),
                     min_downloads=float(filters.min_downloads or 0), fully_scored_only=bool(filters.fully_scored),
                     hide_below_base=bool(filters.hide_below), groups=tuple(filters.groups or DEFAULT_GROUPS),
                     sort_by=filters.sort_by or "mean_gain", max_rows=filters.max_rows or DEFAULT_ROWS,
                     sizes=SIZE_CHOICES if filters.sizes is None else tuple(filters.sizes))


def filters_of(view: ViewQuery, include_seen: bool, include_suspect: bool) -> Filters:
    """The filter controls' values that show ``view`` (the inverse of ``view_query``)."""
    return Filters(search=view.search, licenses=list(view.licenses), min_downloads=view.min_downloads,
                   fully_scored=view.fully_scored_only, hide_below=view.hide_below_base, groups=list(view.groups),
                   sort_by=view.sort_by, max_rows=view.max_rows, sizes=list(view.sizes), include_seen=include_seen,
                   include_suspect=include_suspect)


def estimand(include_seen, include_suspect) -> dict[str, bool]:
    """The two toggles' values as the handlers' keywords (a toggle Gradio has not sent yet is False)."""
    return {"include_seen": bool(include_seen), "include_suspect": bool(include_suspect)}


def compare_view(out: Comparison) -> CompareView:
    """A comparison as the Compare tab shows it."""
    table = gr.update(value=out.table, datatype=out.datatypes, column_widths=out.widths)
    return CompareView(header=out.header, share=out.share, gains=out.gains, table=table)


def _unchanged_compare() -> CompareView:
    """Leave the Compare tab as it is."""
    return CompareView(header=gr.update(), share=gr.update(), gains=gr.update(), table=gr.update())


class AppEvents:
    """One method per event (its name is the event's Gradio API name); ``handlers`` does the work."""

    def __init__(self, handlers: AppHandlers):
        self.h = handlers

    # ------------------------------------------------------------ leaderboard
    def show_table(self, key: BoardKey, filters: Filters) -> TableView:
        query, extras = view_query(filters), estimand(filters.include_seen, filters.include_suspect)
        frame, datatypes, status = self.h.leaderboard(key, query, **extras)
        table = gr.update(value=table_value(frame), datatype=datatypes or "str", column_widths=column_widths(frame))
        return TableView(table=table, status=status, shown_ids=self.h.shown_ids(key, query, **extras),
                         page_url=self.page_url(key, filters))

    def board_change(self, key: BoardKey, filters: Filters, *, model: str = "", compared=()) -> BoardView:
        """A new board (``key``, resolved by ``AppHandlers.default_selection``): its choices, its table, the model
        page on ``model`` (default: its top model) and the comparison picker on ``compared`` (default: empty).
        Filter values the board lacks fall back; the key is kept in ``shown_board`` for every later event."""
        controls = self.h.controls(key, **estimand(filters.include_seen, filters.include_suspect))
        off = controls.empty_filters  # a filter whose column this board lacks: hidden (the status line says why)
        licenses = [v for v in (filters.licenses or []) if v in controls.licenses]
        sort_by = filters.sort_by if filters.sort_by in [key for _, key in controls.sort] else "mean_gain"
        downloads = 0 if "min_downloads" in off else filters.min_downloads
        sizes = [] if "sizes" in off else filters.sizes
        shown = self.show_table(key, replace(filters, licenses=licenses, sort_by=sort_by, min_downloads=downloads,
                                             sizes=sizes))
        return BoardView(source=gr.update(choices=controls.sources, value=key.source),
                         licenses=gr.update(choices=controls.licenses, value=licenses,
                                            visible="licenses" not in off),
                         min_downloads=gr.update(value=downloads, visible="min_downloads" not in off),
                         sort_by=gr.update(choices=controls.sort, value=sort_by),
                         sizes=gr.update(choices=controls.sizes, value=sizes, visible="sizes" not in off),
                         model=gr.update(choices=controls.models, value=model or controls.top_model or ""),
                         compare_pick=gr.update(choices=controls.models, value=list(compared)),
                         table=shown.table, status=shown.status, shown_ids=shown.shown_ids, shown_board=key,
                         page_url=shown.page_url)

    def on_load(self, request: gr.Request, *filters):
        """The board, model page or comparison that the URL names (``ui.urls``), else the default board, under the
        estimand (``include_seen=1``, ``include_suspect=1``) and with the search, filters, columns, sort and rows it
        names: (base, *BoardView, *CompareView, tabs, *RestoredView, *ModelView). The model page is computed
        here only when the URL names a model (else when its tab is opened)."""
        params = page_params(dict(request.query_params) if request is not None else {})
        key = self.h.default_selection(params.base or None, params.source or None)
        note = self.h.url_note(params.base, key.base_id)  # ?base=roberta-base: say which board this is
        if note:
            gr.Info(html.escape(note), duration=8)
        seen, suspect = params.include_seen, params.include_suspect
        wanted = filters_of(params.view, seen, suspect)
        board = self.board_change(key, wanted, model=params.model, compared=params.compare)
        compared = (self.show_compare(key, params.compare, seen, suspect)[0] if params.compare
                    else _unchanged_compare())
        shown = replace(wanted, licenses=board.licenses["value"], min_downloads=board.min_downloads["value"],
                        sort_by=board.sort_by["value"], sizes=board.sizes["value"])
        url = self.page_url(key, shown, model=params.model if params.tab == "model" else "",
                            compare=params.compare)
        restored = RestoredView(*(gr.update(value=getattr(wanted, f.name)) for f in fields(RestoredView)))
        page = (self.model_view(key, params.model, seen, suspect) if params.model
                else ModelView(*[gr.update()] * len(fields(ModelView))))
        return (gr.update(choices=self.h.service.bases(), value=key.base_id), *replace(board, page_url=url).as_list(),
                *compared.as_list(), gr.Tabs(selected=params.tab), *restored.as_list(), *page.as_list())

    # ------------------------------------------------------------- the address
    def page_url(self, shown_board, filters: Filters, *, model: str = "", compare=()) -> str:
        """The address of the view on show (ui/urls.py): its board, estimand, search, filters, columns, sort and
        rows, and the model page or comparison when one is open; "" before any board."""
        base, source = shown_board
        if not base:
            return ""
        ids = parse_ids(compare)
        return page_query(base, source, model="" if len(ids) >= 2 else (model or "").strip(),
                          compare=ids if len(ids) >= 2 else (), include_seen=bool(filters.include_seen),
                          include_suspect=bool(filters.include_suspect), view=view_query(filters))

    def on_url(self, shown_board, *filters) -> str:
        """The leaderboard's address after a change of board, filter or sort, or on its tab."""
        return self.page_url(shown_board, Filters(*filters))

    def on_model_url(self, shown_board, repo_id, *filters) -> str:
        """The address of the model page a user opened."""
        return self.page_url(shown_board, Filters(*filters), model=repo_id or "")

    def on_tab_url(self, shown_board, repo_id, picked, *filters, evt: gr.SelectData = None) -> str:
        """The address of the tab picked: the model page's, the comparison's, else the leaderboard's."""
        chosen = str(getattr(evt, "value", "") or "").lower()  # the tab's label
        if chosen == "model":
            return self.on_model_url(shown_board, repo_id, *filters)
        if chosen == "compare":
            return self.on_compare_url(shown_board, picked, *filters)
        return self.on_url(shown_board, *filters)

    def on_compare_url(self, shown_board, picked, *filters) -> str:
        """The address of a comparison of 2 or more models (fewer: the leaderboard's)."""
        return self.page_url(shown_board, Filters(*filters), compare=picked or ())

    def on_base_pick(self, base, shown_board, *filters):
        """A user's pick of base: the source on show stays when the new base has it (BoardView); the base on show
        picked again (or the menu left without a pick) changes nothing."""
        if shown_board and base == shown_board.base_id:
            return [gr.skip()] * len(fields(BoardView))
        key = self.h.default_selection(base, shown_board.source if shown_board else None)
        return self.board_change(key, Filters(*filters)).as_list()

    def on_source_input(self, shown_board, source, *filters):
        """A user's pick of source for the base on show (BoardView)."""
        return self.board_change(self.h.default_selection(shown_board.base_id, source), Filters(*filters)).as_list()

    def on_filters(self, shown_board, *filters):
        """A changed filter: the board on show, filtered anew (TableView)."""
        return self.show_table(shown_board, Filters(*filters)).as_list()

    def on_select(self, shown_ids, evt: gr.SelectData):
        """A clicked row opens its model page: (model, tabs)."""
        row = evt.index[0] if isinstance(evt.index, (list, tuple)) else evt.index
        repo_id = shown_ids[row] if shown_ids and 0 <= row < len(shown_ids) else ""
        return gr.update(value=repo_id), gr.Tabs(selected="model")

    def on_export(self, shown_board, scope, fmt, *filters):
        """The file of the current view or the full ranking (its path), or None with a warning."""
        chosen = Filters(*filters)
        query = view_query(chosen) if scope == "current view" else None
        try:  # the board shown: its estimand, whichever the scope
            return str(self.h.export(shown_board, query, fmt, **estimand(chosen.include_seen,
                                                                          chosen.include_suspect)))
        except SubmissionRejected as e:
            gr.Warning(e.reason)
            return None

    def board_links(self) -> str:
        return self.h.board_links()

    # --------------------------------------------------- model page, compare
    def model_view(self, shown_board, repo_id, include_seen=False, include_suspect=False) -> ModelView:
        page = self.h.model_page(shown_board, repo_id, **estimand(include_seen, include_suspect))
        return ModelView(header=page.header, share=page.share, gains=page.gains, free_energy=page.free_energy,
                         chains=page.chains, dropout=page.dropout, sample_efficiency=page.sample_efficiency,
                         revisions=page.revisions)

    def on_model(self, shown_board, repo_id, include_seen=False, include_suspect=False):
        return self.model_view(shown_board, repo_id, include_seen, include_suspect).as_list()

    def on_open_model(self, shown_board, repo_id, *filters):
        """A model page a user opened (a row, Show, a model typed or picked): the page and its address
        (*ModelView, page_url)."""
        chosen = Filters(*filters)
        page = self.model_view(shown_board, repo_id, chosen.include_seen, chosen.include_suspect)
        return *page.as_list(), self.page_url(shown_board, chosen, model=repo_id or "")

    def on_model_tab(self, shown_board, repo_id, include_seen=False, include_suspect=False,
                     evt: gr.SelectData = None):
        """The model page, computed when its tab is opened (a new board does not compute it); another tab leaves
        it as it is (*ModelView)."""
        if str(getattr(evt, "value", "") or "").lower() != "model":
            return [gr.update()] * len(fields(ModelView))
        return self.on_model(shown_board, repo_id, include_seen, include_suspect)

    def show_compare(self, key: BoardKey, picked, include_seen=False, include_suspect=False
                     ) -> tuple[CompareView, bool]:
        """The comparison, and whether it was made; a refusal is a warning and its reason in the header."""
        try:
            out = self.h.compare(key, picked, **estimand(include_seen, include_suspect))
        except CompareRejected as e:
            gr.Warning(html.escape(e.reason), duration=6)
            return CompareView(header=f"**Not compared.** {escape_markdown(e.reason)}", share="", gains=None,
                               table=gr.update(value=None)), False
        return compare_view(out), True

    def on_compare(self, shown_board, picked, include_seen=False, include_suspect=False):
        """(*CompareView, tabs): the Compare tab opens when the comparison was made."""
        compared, made = self.show_compare(shown_board, picked, include_seen, include_suspect)
        return (*compared.as_list(), gr.Tabs(selected="compare") if made else gr.update())

    def on_add_to_compare(self, shown_board, picked, repo_id, include_seen=False, include_suspect=False):
        """Add the model page's model to the comparison; from 2 models on, show the comparison:
        (compare_pick, *CompareView, tabs)."""
        try:
            ids = self.h.add_to_compare(shown_board, picked, repo_id, **estimand(include_seen, include_suspect))
        except CompareRejected as e:
            gr.Warning(html.escape(e.reason), duration=6)
            return gr.update(), *_unchanged_compare().as_list(), gr.update()
        if len(ids) < 2:
            gr.Info(f"{html.escape(ids[0])} is in the comparison: add one more model to compare.")
            return gr.update(value=list(ids)), *_unchanged_compare().as_list(), gr.update()
        return gr.update(value=list(ids)), *self.on_compare(shown_board, ids, include_seen, include_suspect)

    def on_include_seen(self, shown_board, repo_id, picked, include_seen, include_suspect=False):
        """A toggle (trained-on targets, suspect cells) changed the board shown: the model page and a comparison
        of the picked models (when there are 2 to 4 of the board's) follow it, so their ranks and gains agree with
        the table (*ModelView, *CompareView). A pick that cannot be compared leaves the Compare tab as it is,
        without a warning."""
        page = self.on_model(shown_board, repo_id, include_seen, include_suspect)
        try:
            out = (self.h.compare(shown_board, picked, **estimand(include_seen, include_suspect)) if picked
                   else None)
        except CompareRejected:
            out = None
        if out is None:
            return *page, *_unchanged_compare().as_list()
        return *page, *compare_view(out).as_list()

    # --------------------------------------------------------------- insights
    def on_insights(self, shown_board, include_seen=False, include_suspect=False):
        """The Insights tab; a panel this board has no data for (free energy on a published board, the study on
        any other board) is hidden."""
        out = self.h.insights(shown_board, **estimand(include_seen, include_suspect))
        fe, study = out.has_free_energy, bool(out.study.study)
        view = InsightsView(free_energy=gr.update(value=out.free_energy, visible=fe),
                            free_energy_text=gr.update(value=out.free_energy_text, visible=fe),
                            probe=out.probe, probe_text=out.probe_text, heatmap=out.heatmap,
                            beats_base=out.beats_base, study=gr.update(value=out.study.study, visible=study),
                            study_matrix=gr.update(value=out.study.study_matrix, visible=study))
        return view.as_list()

    # ----------------------------------------------------------------- submit
    def on_jobs(self):
        """JobsView: the newest jobs and the count per status."""
        return JobsView(jobs=self.h.jobs(), job_counts=self.h.job_counts()).as_list()

    def on_submit(self, repo_id, revision, request: gr.Request):
        """(message, *JobsView): queued, or not with the reason (escaped: it can quote Hub text)."""
        client = getattr(request, "client", None)
        submitter = getattr(client, "host", None)  # the per-submitter hourly limit counts by client address
        try:
            message = self.h.submit(repo_id, revision, submitter=submitter)
        except SubmissionRejected as e:
            gr.Warning(html.escape(e.reason), duration=4)
            message = f"**Not queued.** {markdown_text(e.reason)}"
        except Exception:
            logger.exception("submission of %r failed unexpectedly", repo_id)
            gr.Warning("Something went wrong while queueing the model; it has been logged.")
            message = "**Not queued.** Something went wrong; it has been logged."
        return message, *self.on_jobs()


PERSONAL_FORM_FIELDS = tuple(f.name for f in fields(PersonalInputs))


class PersonalEvents:
    """The "Your data" tab's events over ``ui.personal.PersonalHandlers`` (one method per event)."""

    def __init__(self, handlers: PersonalHandlers):
        self.h = handlers

    def show(self, state: PersonalState) -> PersonalView:
        """The view of a request's state; the timer runs while the request is open."""
        if state.table is not None:
            table = gr.update(value=state.table, datatype=state.datatypes or "str",
                              column_widths=column_widths(state.table))
        else:
            table = gr.update(value=None)
        return PersonalView(share=state.share, status=state.status, table=table, rule=state.rule,
                            csv_file=str(state.csv_path) if state.csv_path else None,
                            json_file=str(state.json_path) if state.json_path else None,
                            timer=gr.Timer(active=state.is_open))

    def on_personal_load(self, request: gr.Request):
        """The bases a ranking can run on, and the ranking a ``?personal=TOKEN`` URL names:
        (base, token, *PersonalView)."""
        params = page_params(dict(request.query_params) if request is not None else {})
        base = gr.update(choices=self.h.bases(), value=self.h.default_base(params.base or None))
        return base, params.personal, *self.show(self.h.state(params.personal)).as_list()

    def on_personal_file(self, file_path):
        """An uploaded (or cleared) file: its columns in the three pickers, or its problem:
        (text column, pair column, label column, message)."""
        try:
            found = self.h.columns(file_path)
        except PersonalRefused as e:
            gr.Warning(html.escape(e.reason), duration=6)
            empty = gr.update(choices=[], value="")
            return empty, gr.update(choices=[("none", NO_PAIR)], value=NO_PAIR), empty, (
                f"**Cannot use this file.** {escaped(e.reason)}")
        columns = list(found.columns)
        message = (f"Read {len(columns)} columns of **{escaped(Path(file_path).name)}**: check the text and "
                   f"label columns, then press **Rank**.") if file_path else ""
        return (gr.update(choices=columns, value=found.text),
                gr.update(choices=[("none", NO_PAIR), *columns], value=found.pair),
                gr.update(choices=columns, value=found.label), message)

    def on_personal_rank(self, base_id, file_path, hub_id, hub_config, hub_split, hub_revision, text_column,
                         pair_column, label_column, top_k, models, request: gr.Request = None):
        """Check and queue the form's ranking, then watch it: (message, token, *PersonalView). A refusal is its
        sentence (escaped: it can quote the file or the Hub) and leaves what is on show as it is. The hourly
        limit counts by client address, as Submit's does."""
        values = (base_id, file_path, hub_id, hub_config, hub_split, hub_revision, text_column, pair_column,
                  label_column, top_k, models)
        form = PersonalForm(**dict(zip(PERSONAL_FORM_FIELDS, values, strict=True)))
        unchanged = [gr.update()] * len(fields(PersonalView))
        submitter = getattr(getattr(request, "client", None), "host", None)
        try:
            request = self.h.rank(form, submitter=submitter)
        except PersonalRefused as e:
            gr.Warning(html.escape(e.reason), duration=6)
            return f"**Not queued.** {escaped(e.reason)}", gr.update(), *unchanged
        except Exception:
            logger.exception("queueing a personal ranking on %r failed unexpectedly", form.base_id)
            gr.Warning("Something went wrong while queueing the ranking; it has been logged.")
            return "**Not queued.** Something went wrong; it has been logged.", gr.update(), *unchanged
        message = ("**Queued.** The ranking below updates as each model is scored; its link opens it again "
                   "later, from any browser.")
        if missing := request.summary.get("not_fetchable"):
            message += (f" **Cannot be fetched now**, so listed without a rank: "
                        f"{escaped(unfetchable_sentence(missing))}.")
        return message, request.id, *self.show(self.h.state(request.id)).as_list()

    def on_personal_poll(self, token):
        """The watched request's progress, then its ranking (*PersonalView); the timer stops once it ended."""
        return self.show(self.h.state(token)).as_list()
