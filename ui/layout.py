"""The app's page: every component, held by name in frozen dataclasses (never a list read by position).

``build_page(...)`` runs inside ``with gr.Blocks()`` (app.build_app) and returns a ``Layout`` (``build_layout``: the
leaderboard's tabs) and the "Your data" tab's ``PersonalTab``; ui/wiring.py connects their components to the event
handlers of ui/events.py. A group whose order Gradio cares about (the inputs
or outputs of an event: ``Filters``, ``BoardView``, ``ModelView``, ...) is a generic dataclass: the layout fills
it with components, an event handler with their values or updates, and ``as_list()`` gives both in one order, its
field order. Importing this module does not import gradio.
"""

from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from data.metrics import SOURCES
from ranking.columns import DEFAULT_GROUPS, GROUPS
from ui.about import ABOUT, EMPTY_STATE
from ui.board_cache import BoardKey
from ui.compare import MAX_MODELS, MIN_MODELS
from ui.in_order import InOrder as _InOrder
from ui.personal_layout import (  # noqa: F401 (the "Your data" tab's groups, re-exported beside the others)
    PersonalDefaults,
    PersonalInputs,
    PersonalTab,
    PersonalView,
    build_personal_tab,
)
from ui.views import DEFAULT_ROWS, RANK_WIDTH_PX, ROW_LIMITS, SIZE_CHOICES, size_choices

T = TypeVar("T")

# gr.Dataframe's pinned_columns does not stick in Gradio 6 (it only orders the columns): the rank and model
# columns of the two ranking tables stay in view while they scroll sideways through this CSS. The rank column
# is RANK_WIDTH_PX wide (ui.views.column_widths), so the model column sticks right after it.
PINNED_TABLES = ("#leaderboard-table", "#compare-table")
APP_CSS = "\n".join(
    f"{table} .virtual-row > [data-col=\"{col}\"] {{ position: sticky; left: {left}px; z-index: 3; "
    f"background: inherit;{edge} }}\n"
    f"{table} thead th[data-heading=\"{col}\"] {{ position: sticky; left: {left}px; z-index: 4;{edge} }}"
    for table in PINNED_TABLES
    for col, left, edge in ((0, 0, ""), (1, RANK_WIDTH_PX, " border-right: 1px solid var(--border-color-primary);"))
)


@dataclass(frozen=True, slots=True)
class Filters(_InOrder, Generic[T]):
    """The leaderboard's view controls: what a ``ui.views.ViewQuery`` is made of, and which estimand of the board is
    shown (``include_seen``: mean gains include the targets a model was trained on; ``include_suspect``: and suspect
    imported cells)."""

    search: T
    licenses: T
    min_downloads: T
    fully_scored: T
    hide_below: T
    groups: T
    sort_by: T
    max_rows: T
    sizes: T
    include_seen: T
    include_suspect: T


@dataclass(frozen=True, slots=True)
class TableView(_InOrder, Generic[T]):
    """The leaderboard table, its status line, the repo ids of its rows (a clicked row's model) and the page's
    address."""

    table: T
    status: T
    shown_ids: T
    page_url: T


@dataclass(frozen=True, slots=True)
class BoardView(_InOrder, Generic[T]):
    """What a new (base, source) updates, in one event: its choices, its table, the model page's model, an empty
    comparison and the page's address."""

    source: T
    licenses: T
    min_downloads: T
    sort_by: T
    sizes: T
    model: T
    compare_pick: T
    table: T
    status: T
    shown_ids: T
    shown_board: T
    page_url: T


@dataclass(frozen=True, slots=True)
class ModelView(_InOrder, Generic[T]):
    """The model page."""

    header: T
    share: T
    gains: T
    free_energy: T
    chains: T
    dropout: T
    sample_efficiency: T
    revisions: T


@dataclass(frozen=True, slots=True)
class CompareView(_InOrder, Generic[T]):
    """The Compare tab: header, shareable link, grouped gain bars, table."""

    header: T
    share: T
    gains: T
    table: T


@dataclass(frozen=True, slots=True)
class InsightsView(_InOrder, Generic[T]):
    free_energy: T
    free_energy_text: T
    probe: T
    probe_text: T
    heatmap: T
    beats_base: T
    study: T
    study_matrix: T


@dataclass(frozen=True, slots=True)
class JobsView(_InOrder, Generic[T]):
    """The scoring jobs table and the count of jobs per status."""

    jobs: T
    job_counts: T


@dataclass(frozen=True, slots=True)
class RestoredView(_InOrder, Generic[T]):
    """The controls a page URL sets on load besides ``BoardView``'s: the two estimand toggles, then the search and
    the filters no board resets."""

    include_seen: T
    include_suspect: T
    search: T
    fully_scored: T
    hide_below: T
    groups: T
    max_rows: T


@dataclass(frozen=True, slots=True, kw_only=True)
class LeaderboardTab:
    base: Any
    source: Any
    compare_pick: Any
    compare_button: Any
    table: Any
    status: Any
    shown_ids: Any  # gr.State: the repo ids of the table's rows, baseline first
    # gr.State: the (base, source) on show. Every event but a user's own pick of base or source reads it, not those
    # two controls, whose values in the browser can lag behind a board change's updates (and a lagging source
    # fails the Radio's check against its new choices).
    shown_board: Any
    download_scope: Any
    download_format: Any
    export_button: Any
    export_file: Any


@dataclass(frozen=True, slots=True, kw_only=True)
class ModelTab:
    model: Any
    show: Any
    add_to_compare: Any
    view: ModelView


@dataclass(frozen=True, slots=True, kw_only=True)
class InsightsTab:
    refresh: Any
    view: InsightsView


@dataclass(frozen=True, slots=True, kw_only=True)
class SubmitTab:
    repo_id: Any
    revision: Any
    button: Any
    result: Any
    refresh: Any
    jobs: JobsView


@dataclass(frozen=True, slots=True, kw_only=True)
class Layout:
    """Every component an event reads or updates, by tab."""

    tabs: Any
    board_links: Any
    page_url: Any  # hidden: the address of the view on show (ui/urls.py); the browser's address bar follows it
    copy_link: Any  # copies the address bar's link to the clipboard
    leaderboard: LeaderboardTab
    filters: Filters
    model: ModelTab
    compare: CompareView
    insights: InsightsTab
    submit: SubmitTab

    def table_view(self) -> TableView:
        lb = self.leaderboard
        return TableView(table=lb.table, status=lb.status, shown_ids=lb.shown_ids, page_url=self.page_url)

    def restored_view(self) -> RestoredView:
        f = self.filters
        return RestoredView(include_seen=f.include_seen, include_suspect=f.include_suspect, search=f.search,
                            fully_scored=f.fully_scored, hide_below=f.hide_below, groups=f.groups,
                            max_rows=f.max_rows)

    def board_view(self) -> BoardView:
        lb, f = self.leaderboard, self.filters
        return BoardView(source=lb.source, licenses=f.licenses, min_downloads=f.min_downloads, sort_by=f.sort_by,
                         sizes=f.sizes,
                         model=self.model.model, compare_pick=lb.compare_pick, table=lb.table, status=lb.status,
                         shown_ids=lb.shown_ids, shown_board=lb.shown_board, page_url=self.page_url)


def build_page(bases: list[str], base0: str | None, source0: str, personal: PersonalDefaults
               ) -> tuple[Layout, PersonalTab]:
    """The whole page: ``build_layout``'s tabs, then "Your data" (``build_personal_tab``), then About."""
    import gradio as gr

    layout = build_layout(bases, base0, source0, about=False)
    personal_tab = build_personal_tab(layout.tabs, personal)
    with layout.tabs, gr.Tab("About", id="about"):
        gr.Markdown(ABOUT, elem_id="about")
    return layout, personal_tab


def build_layout(bases: list[str], base0: str | None, source0: str, *, about: bool = True) -> Layout:
    """The page, built in the current ``gr.Blocks`` context: header, then one tab each. ``bases`` are the base
    menu's choices, ``(base0, source0)`` the board it opens on (``base0`` None: the store has nothing to rank).
    ``about`` False leaves the About tab out (``build_page`` adds it after the tabs it adds)."""
    import gradio as gr

    gr.Markdown("# Model Recycling Leaderboard\nWhich checkpoint on the Hub should you fine-tune from? "
                "Finetuned models ranked by how much they improve on their base model as a starting point.")
    if base0 is None:
        gr.Markdown(EMPTY_STATE, elem_id="empty-state")
    with gr.Row():
        board_links = gr.Markdown(elem_id="board-links")  # every leaderboard one click away
        copy_link = gr.Button("Copy link to this view", elem_id="copy-link", scale=0, min_width=220, size="sm")
    page_url = gr.Textbox(visible=False, elem_id="page-url")
    with gr.Tabs() as tabs:
        with gr.Tab("Leaderboard", id="leaderboard"):
            leaderboard, filters = _leaderboard_tab(gr, bases, base0, source0)
        with gr.Tab("Model", id="model"):
            model = _model_tab(gr)
        with gr.Tab("Compare", id="compare"):
            compare = _compare_tab(gr)
        with gr.Tab("Insights", id="insights"):
            insights = _insights_tab(gr)
        with gr.Tab("Submit", id="submit"):
            submit = _submit_tab(gr)
        if about:
            with gr.Tab("About", id="about"):
                gr.Markdown(ABOUT, elem_id="about")
    return Layout(tabs=tabs, board_links=board_links, page_url=page_url, copy_link=copy_link,
                  leaderboard=leaderboard, filters=filters, model=model,
                  compare=compare, insights=insights, submit=submit)


def _leaderboard_tab(gr, bases: list[str], base0: str | None, source0: str) -> tuple[LeaderboardTab, Filters]:
    with gr.Row():
        base = gr.Dropdown(label="base model", choices=bases, value=base0, elem_id="base")
        source = gr.Radio(label="source", choices=list(SOURCES), value=source0, elem_id="source")
        search = gr.Textbox(label="search models", placeholder="name contains…", elem_id="search")
        sort_by = gr.Dropdown(label="sort by", choices=[("mean gain", "mean_gain")], value="mean_gain",
                              elem_id="sort-by")
    with gr.Row():
        licenses = gr.Dropdown(label="license", choices=[], multiselect=True, elem_id="license")
        min_downloads = gr.Number(label="minimum downloads", value=0, minimum=0, elem_id="min-downloads")
        sizes = _size_filter(gr)
        with gr.Column(min_width=200):
            fully_scored = gr.Checkbox(label="fully scored only", elem_id="fully-scored")
            hide_below = gr.Checkbox(label="hide models below the base", elem_id="hide-below")
        with gr.Column(scale=2, min_width=260):
            include_seen = _include_seen_toggle(gr)
            include_suspect = _include_suspect_toggle(gr)
    with gr.Row():
        groups = gr.CheckboxGroup(label="columns", choices=list(GROUPS), value=list(DEFAULT_GROUPS), elem_id="groups",
                                  scale=3)
        max_rows = gr.Radio(label="rows shown", choices=list(ROW_LIMITS), value=DEFAULT_ROWS, elem_id="max-rows",
                            scale=2)
    compare_pick, compare_button = _compare_picker(gr)
    status = gr.Markdown(elem_id="status")
    table = gr.Dataframe(interactive=False, pinned_columns=2, max_height=640, wrap=True, elem_id="leaderboard-table",
                         buttons=["fullscreen"])
    shown_ids = gr.State([])
    shown_board = gr.State(BoardKey(base0, source0))  # the board on show, resolved once (ui/board_cache.py)
    with gr.Row():
        scope = gr.Radio(label="download", choices=["current view", "full ranking"], value="current view",
                         elem_id="download-scope")
        fmt = gr.Radio(label="format", choices=["csv", "json", "parquet"], value="csv", elem_id="download-format")
        export_button = gr.Button("Prepare download", elem_id="export")
        export_file = gr.File(label="file", interactive=False, elem_id="download-file")
    tab = LeaderboardTab(base=base, source=source, compare_pick=compare_pick, compare_button=compare_button,
                         table=table, status=status, shown_ids=shown_ids, shown_board=shown_board, download_scope=scope,
                         download_format=fmt, export_button=export_button, export_file=export_file)
    filters = Filters(search=search, licenses=licenses, min_downloads=min_downloads, fully_scored=fully_scored,
                      hide_below=hide_below, groups=groups, sort_by=sort_by, max_rows=max_rows, sizes=sizes,
                      include_seen=include_seen, include_suspect=include_suspect)
    return tab, filters


INCLUDE_SEEN_LABEL = "Include the targets a model was trained on"  # unticked: the zero-shot mean gain


def _include_seen_toggle(gr):
    """The estimand shown: unticked (default), the zero-shot mean gain; ticked, every suite target counts."""
    return gr.Checkbox(label=INCLUDE_SEEN_LABEL, value=False, elem_id="include-seen")


INCLUDE_SUSPECT_LABEL = "Include suspect imported cells"


def _include_suspect_toggle(gr):
    """Unticked (default): suspect imported cells are shown but left out of mean gains; ticked, they count."""
    return gr.Checkbox(label=INCLUDE_SUSPECT_LABEL, value=False, elem_id="include-suspect")


def _size_filter(gr):
    """Model size buckets by parameter count; every bucket, "unknown" included, is shown by default."""
    return gr.CheckboxGroup(label="model size (parameters)", choices=size_choices(None), value=list(SIZE_CHOICES),
                            elem_id="size-filter", scale=2)


def _compare_picker(gr):
    """The leaderboard's way into a comparison: pick 2-4 of its models (the model page can add one too)."""
    with gr.Row():
        pick = gr.Dropdown(label=f"compare models (pick {MIN_MODELS}–{MAX_MODELS})", choices=[], multiselect=True,
                           allow_custom_value=True, max_choices=MAX_MODELS, elem_id="compare-pick", scale=5)
        button = gr.Button("Compare", elem_id="compare-button", scale=0, min_width=160)
    return pick, button


def _model_tab(gr) -> ModelTab:
    with gr.Row():
        model = gr.Dropdown(label="model", choices=[], allow_custom_value=True, elem_id="model-input")
        show = gr.Button("Show", elem_id="show-model", scale=0, min_width=120)
        add_to_compare = gr.Button("Add to comparison", elem_id="add-to-compare", scale=0, min_width=200)
    header = gr.Markdown(elem_id="model-header")
    share = gr.Markdown(elem_id="model-share")
    gains = gr.Plot(label="per-target gain (points)", elem_id="model-gains")
    with gr.Row():
        free_energy = gr.Markdown(elem_id="model-free-energy")
        chains = gr.Dataframe(label="LLC per chain", interactive=False, elem_id="model-chains")
        dropout = gr.Dataframe(label="Guided dropout rates (Fisher-ranked; when fine-tuned with them)",
                               interactive=False, elem_id="model-dropout")
    sample_efficiency = gr.Plot(label="sample efficiency (LoRA accuracy vs labels)", elem_id="model-sample-eff")
    revisions = gr.Dataframe(label="scored revisions", interactive=False, elem_id="model-revisions")
    view = ModelView(header=header, share=share, gains=gains, free_energy=free_energy, chains=chains, dropout=dropout,
                     sample_efficiency=sample_efficiency, revisions=revisions)
    return ModelTab(model=model, show=show, add_to_compare=add_to_compare, view=view)


def _compare_tab(gr) -> CompareView:
    header = gr.Markdown("Pick 2–4 models under **compare models** on the Leaderboard tab, or add the model "
                         "page's model with **Add to comparison**.", elem_id="compare-header")
    share = gr.Markdown(elem_id="compare-share")
    gains = gr.Plot(label="per-target gain (points)", elem_id="compare-gains")
    table = gr.Dataframe(interactive=False, pinned_columns=2, wrap=True, max_height=400, elem_id="compare-table")
    return CompareView(header=header, share=share, gains=gains, table=table)


def _insights_tab(gr) -> InsightsTab:
    refresh = gr.Button("Refresh", elem_id="refresh-insights")
    with gr.Row():
        with gr.Column():
            fe_text = gr.Markdown(elem_id="fe-corr")
            fe_plot = gr.Plot(elem_id="fe-plot")
        with gr.Column():
            probe_text = gr.Markdown(elem_id="probe-corr")
            probe_plot = gr.Plot(elem_id="probe-plot")
    heatmap = gr.Plot(label="per-target gains of the top models", elem_id="heatmap")
    beats_base = gr.Plot(label="models beating their base", elem_id="beats-base")
    study = gr.Markdown(elem_id="study-report")
    study_matrix = gr.Plot(label="study: gain by source and target (points)", elem_id="study-gain-matrix")
    view = InsightsView(free_energy=fe_plot, free_energy_text=fe_text, probe=probe_plot, probe_text=probe_text,
                        heatmap=heatmap, beats_base=beats_base, study=study, study_matrix=study_matrix)
    return InsightsTab(refresh=refresh, view=view)


def _submit_tab(gr) -> SubmitTab:
    gr.Markdown("Submit a model of a ranked architecture; it is checked on the Hub and queued for scoring.")
    with gr.Row():
        repo_id = gr.Textbox(label="model id", placeholder="org/name", elem_id="submit-id")
        revision = gr.Textbox(label="revision (optional)", placeholder="main, a tag or a commit sha",
                              elem_id="submit-revision")
        button = gr.Button("Submit", variant="primary", elem_id="submit-button")
    result = gr.Markdown(elem_id="submit-result")
    job_counts = gr.Markdown(elem_id="job-counts")
    refresh = gr.Button("Refresh status", elem_id="refresh-jobs")
    jobs = gr.Dataframe(label="scoring jobs", interactive=False, elem_id="jobs-table")
    return SubmitTab(repo_id=repo_id, revision=revision, button=button, result=result, refresh=refresh,
                     jobs=JobsView(jobs=jobs, job_counts=job_counts))
