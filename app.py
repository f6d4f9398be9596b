"""The leaderboard app: browse per architecture, model pages, insights, submit, download.

    python app.py [--host 127.0.0.1] [--port 7860] [--db PATH] [--snapshot PATH|none] [--published PATH|none]

At start the store gets, once per bundled version, what it lacks of the bundled data (data/bundles.py): IBM's
published 2023 results (``data/published_2023``; ``--published`` / ``$MRL_PUBLISHED``) and the study snapshot
(``data/snapshot/study.json``; ``--snapshot`` / ``$MRL_SNAPSHOT``); ``none`` turns one off. The store's own
data always takes precedence.

Besides the Gradio page, ``GET /api/leaderboard?base=...&source=...&format=json|csv|parquet[&limit=N]``
serves a ranking (the base's row and the top N models, or all) as a file. ``build_app(store, settings)``
returns the Blocks; ``create_server`` mounts it with the API on one FastAPI app. Importing this module
imports neither torch nor gradio. (No postponed annotations here: Gradio reads the handlers'
``gr.Request`` / ``gr.SelectData`` annotations at runtime.)
"""

import argparse
import html
import logging
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from data.errors import LeaderboardError, SubmissionRejected
from data.escape import markdown_text
from data.metrics import SOURCES
from data.settings import Settings
from data.store import Store
from ranking.columns import DEFAULT_GROUPS, GROUPS
from ui.about import ABOUT, EMPTY_STATE
from ui.compare import CompareRejected
from ui.handlers import AppHandlers
from ui.urls import page_params
from ui.views import RANK_WIDTH_PX, ROW_LIMITS, SIZE_CHOICES, ViewQuery, column_widths, escape_markdown, size_choices

logger = logging.getLogger("app")

SUBMIT_CONCURRENCY = 8  # submissions checked at once (each waits on the Hub, not on the CPU)
MEDIA_TYPES = {"csv": "text/csv", "json": "application/json", "parquet": "application/vnd.apache.parquet"}
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


def build_app(store: Store, settings: Settings, handlers: AppHandlers | None = None):
    import gradio as gr

    h = handlers or AppHandlers(store, settings)
    base0, source0 = h.default_selection()

    def query_from(search, licenses, min_downloads, fully, hide_below, groups, sort_by, max_rows, sizes) -> ViewQuery:
        return ViewQuery(search=search or "", licenses=tuple(licenses or ()), min_downloads=float(min_downloads or 0),
                         fully_scored_only=bool(fully), hide_below_base=bool(hide_below),
                         groups=tuple(groups or DEFAULT_GROUPS), sort_by=sort_by or "mean_gain",
                         max_rows=max_rows or "500", sizes=SIZE_CHOICES if sizes is None else tuple(sizes))

    def show_table(base, source, *filters):
        frame, datatypes, status = h.leaderboard(base, source, query_from(*filters))
        shown_ids = _repo_ids_of(h, base, source, query_from(*filters))
        return (gr.update(value=frame, datatype=datatypes or "str", column_widths=column_widths(frame)), status,
                shown_ids)

    def on_leaderboard_change(base, source, *filters):
        """A new board: its choices, its table, the model page on its top model and an empty comparison."""
        base, source = h.default_selection(base, source)
        controls = h.controls(base, source)
        sort_values = [key for _, key in controls["sort"]]
        filters = list(filters)
        filters[1] = [v for v in (filters[1] or []) if v in controls["licenses"]]
        if filters[6] not in sort_values:
            filters[6] = "mean_gain"
        table, status, shown = show_table(base, source, *filters)
        return (gr.update(choices=controls["sources"], value=source),
                gr.update(choices=controls["licenses"], value=filters[1]),
                gr.update(choices=controls["sort"], value=filters[6]), gr.update(choices=controls["sizes"]),
                gr.update(choices=controls["models"], value=controls["top_model"] or ""),
                gr.update(choices=controls["models"], value=[]), table, status, shown, (base, source))

    def on_load(request: gr.Request, *filters):
        """The board, model page or comparison that the URL names (``ui.urls``), else the default board."""
        params = page_params(dict(request.query_params) if request is not None else {})
        base, source = h.default_selection(params.base or None, params.source or None)
        note = h.url_note(params.base, base)  # ?base=roberta-base: say which board this is
        if note:
            gr.Info(html.escape(note), duration=8)
        changed = list(on_leaderboard_change(base, source, *filters))
        compared = [gr.update()] * 4
        if params.model:
            changed[4]["value"] = params.model
        if params.compare:
            changed[5]["value"] = list(params.compare)
            compared, _ = show_compare(base, source, params.compare)
        return (gr.update(choices=h.service.bases(), value=base), *changed, *compared,
                gr.Tabs(selected=params.tab))

    def show_compare(base, source, picked) -> tuple[list, bool]:
        """(header, link, chart, table) of the comparison, and whether it was made; a refusal is a warning."""
        try:
            out = h.compare(base, source, picked)
        except CompareRejected as e:
            gr.Warning(html.escape(e.reason), duration=6)
            return [f"**Not compared.** {escape_markdown(e.reason)}", "", None, gr.update(value=None)], False
        table = gr.update(value=out["table"], datatype=out["datatypes"], column_widths=out["widths"])
        return [out["header"], out["share"], out["gains"], table], True

    def on_compare(board, picked):
        outputs, made = show_compare(*board, picked)
        return (*outputs, gr.Tabs(selected="compare") if made else gr.update())

    def on_add_to_compare(board, picked, repo_id):
        """Add the model page's model to the comparison; from 2 models on, show the comparison."""
        try:
            ids = h.add_to_compare(*board, picked, repo_id)
        except CompareRejected as e:
            gr.Warning(html.escape(e.reason), duration=6)
            return gr.update(), *[gr.update()] * 4, gr.update()
        if len(ids) < 2:
            gr.Info(f"{html.escape(ids[0])} is in the comparison: add one more model to compare.")
            return gr.update(value=list(ids)), *[gr.update()] * 4, gr.update()
        return gr.update(value=list(ids)), *on_compare(board, ids)

    def on_select(shown_ids, evt: gr.SelectData):
        row = evt.index[0] if isinstance(evt.index, (list, tuple)) else evt.index
        repo_id = shown_ids[row] if shown_ids and 0 <= row < len(shown_ids) else ""
        return gr.update(value=repo_id), gr.Tabs(selected="model")

    def on_model(board, repo_id):
        page = h.model_page(*board, repo_id)
        return (page["header"], page["share"], page["gains"], page["free_energy"], page["chains"], page["dropout"],
                page["sample_efficiency"], page["revisions"])

    def on_insights(base, source):
        out = h.insights(base, source)
        return (out["free_energy"], out["free_energy_text"], out["probe"], out["probe_text"], out["heatmap"],
                out["beats_base"], out["study"], out["study_matrix"])

    def on_submit(repo_id, revision, request: gr.Request):
        client = getattr(request, "client", None)
        submitter = getattr(client, "host", None)  # the per-submitter hourly limit counts by client address
        try:
            message = h.submit(repo_id, revision, submitter=submitter)
        except SubmissionRejected as e:  # the reason can quote Hub text (a config's model_type): escaped for each
            gr.Warning(html.escape(e.reason), duration=4)
            return f"**Not queued.** {markdown_text(e.reason)}", h.jobs(), h.job_counts()
        except Exception:
            logger.exception("submission of %r failed unexpectedly", repo_id)
            gr.Warning("Something went wrong while queueing the model; it has been logged.")
            return "**Not queued.** Something went wrong; it has been logged.", h.jobs(), h.job_counts()
        return message, h.jobs(), h.job_counts()

    def on_export(board, scope, fmt, *filters):
        query = query_from(*filters) if scope == "current view" else None
        try:
            return str(h.export(*board, query, fmt))
        except SubmissionRejected as e:
            gr.Warning(e.reason)
            return None

    with gr.Blocks(title="Model Recycling Leaderboard") as demo:
        gr.Markdown("# Model Recycling Leaderboard\nWhich checkpoint on the Hub should you fine-tune from? "
                    "Finetuned models ranked by how much they improve on their base model as a starting point.")
        if base0 is None:
            gr.Markdown(EMPTY_STATE, elem_id="empty-state")
        board_links = gr.Markdown(elem_id="board-links")  # every leaderboard one click away
        with gr.Tabs() as tabs:
            with gr.Tab("Leaderboard", id="leaderboard"):
                with gr.Row():
                    base = gr.Dropdown(label="base model", choices=h.service.bases(), value=base0, elem_id="base")
                    source = gr.Radio(label="source", choices=list(SOURCES), value=source0, elem_id="source")
                    search = gr.Textbox(label="search models", placeholder="name contains…", elem_id="search")
                with gr.Row():
                    licenses = gr.Dropdown(label="license", choices=[], multiselect=True, elem_id="license")
                    min_downloads = gr.Number(label="minimum downloads", value=0, minimum=0, elem_id="min-downloads")
                    sizes = _size_filter(gr)
                    with gr.Column(min_width=200):
                        fully = gr.Checkbox(label="fully scored only", elem_id="fully-scored")
                        hide_below = gr.Checkbox(label="hide models below the base", elem_id="hide-below")
                with gr.Row():
                    groups = gr.CheckboxGroup(label="columns", choices=list(GROUPS), value=list(DEFAULT_GROUPS),
                                              elem_id="groups")
                    sort_by = gr.Dropdown(label="sort by", choices=[("mean gain", "mean_gain")], value="mean_gain",
                                          elem_id="sort-by")
                    max_rows = gr.Radio(label="rows shown", choices=list(ROW_LIMITS), value="500", elem_id="max-rows")
                compare_pick, compare_button = _compare_picker(gr)
                status = gr.Markdown(elem_id="status")
                table = gr.Dataframe(interactive=False, pinned_columns=2, max_height=640, wrap=True,
                                     elem_id="leaderboard-table", buttons=["fullscreen"])
                shown_ids = gr.State([])
                # the (base, source) on show: every event but a user's own pick of base or source reads it, not
                # those two controls, whose values in the browser can lag behind a board change's updates (and a
                # lagging source fails the Radio's check against its new choices)
                shown_board = gr.State((base0, source0))
                with gr.Row():
                    scope = gr.Radio(label="download", choices=["current view", "full ranking"],
                                     value="current view", elem_id="download-scope")
                    fmt = gr.Radio(label="format", choices=["csv", "json", "parquet"], value="csv",
                                   elem_id="download-format")
                    export_button = gr.Button("Prepare download", elem_id="export")
                    export_file = gr.File(label="file", interactive=False, elem_id="download-file")
            with gr.Tab("Model", id="model"):
                with gr.Row():
                    model = gr.Dropdown(label="model", choices=[], allow_custom_value=True, elem_id="model-input")
                    open_model = gr.Button("Show", elem_id="show-model", scale=0, min_width=120)
                    add_compare = gr.Button("Add to comparison", elem_id="add-to-compare", scale=0, min_width=200)
                header = gr.Markdown(elem_id="model-header")
                model_share = gr.Markdown(elem_id="model-share")
                gains_plot = gr.Plot(label="per-target gain (points)", elem_id="model-gains")
                with gr.Row():
                    fe_text = gr.Markdown(elem_id="model-free-energy")
                    chains = gr.Dataframe(label="LLC per chain", interactive=False, elem_id="model-chains")
                    dropout = gr.Dataframe(label="Guided dropout rates (Fisher-ranked; when fine-tuned with them)",
                                           interactive=False, elem_id="model-dropout")
                se_plot = gr.Plot(label="sample efficiency (LoRA accuracy vs labels)", elem_id="model-sample-eff")
                revisions = gr.Dataframe(label="scored revisions", interactive=False, elem_id="model-revisions")
            with gr.Tab("Compare", id="compare"):
                compare_outputs = _compare_tab(gr)
            with gr.Tab("Insights", id="insights"):
                refresh_insights = gr.Button("Refresh", elem_id="refresh-insights")
                with gr.Row():
                    with gr.Column():
                        fe_corr = gr.Markdown(elem_id="fe-corr")
                        fe_plot = gr.Plot(elem_id="fe-plot")
                    with gr.Column():
                        probe_corr = gr.Markdown(elem_id="probe-corr")
                        probe_plot = gr.Plot(elem_id="probe-plot")
                heatmap = gr.Plot(label="per-target gains of the top models", elem_id="heatmap")
                beats = gr.Plot(label="models beating their base", elem_id="beats-base")
                study = gr.Markdown(elem_id="study-report")
                study_matrix = gr.Plot(label="study: gain by source and target (points)", elem_id="study-gain-matrix")
            with gr.Tab("Submit", id="submit"):
                gr.Markdown("Submit a model of a ranked architecture; it is checked on the Hub and queued for scoring.")
                with gr.Row():
                    submit_id = gr.Textbox(label="model id", placeholder="org/name", elem_id="submit-id")
                    submit_rev = gr.Textbox(label="revision (optional)", placeholder="main, a tag or a commit sha",
                                            elem_id="submit-revision")
                    submit_button = gr.Button("Submit", variant="primary", elem_id="submit-button")
                submit_result = gr.Markdown(elem_id="submit-result")
                job_counts = gr.Markdown(elem_id="job-counts")
                refresh_jobs = gr.Button("Refresh status", elem_id="refresh-jobs")
                jobs = gr.Dataframe(label="scoring jobs", interactive=False, elem_id="jobs-table")
            with gr.Tab("About", id="about"):
                gr.Markdown(ABOUT, elem_id="about")

        filters = [search, licenses, min_downloads, fully, hide_below, groups, sort_by, max_rows, sizes]
        change_outputs = [source, licenses, sort_by, sizes, model, compare_pick, table, status, shown_ids,
                          shown_board]
        demo.load(on_load, inputs=filters, outputs=[base, *change_outputs, *compare_outputs, tabs])
        demo.load(lambda: (h.jobs(), h.job_counts()), outputs=[jobs, job_counts])
        demo.load(h.board_links, outputs=[board_links])
        # .input, not .change: on_load sets base and source itself (a URL's model or comparison must survive it).
        # Each reads the other from shown_board: the dropdown can send its input twice, the second time with the
        # source it had before the first answer changed the Radio's choices.
        base.input(lambda b, board, *f: on_leaderboard_change(b, board[1], *f), inputs=[base, shown_board, *filters],
                   outputs=change_outputs)
        source.input(lambda board, s, *f: on_leaderboard_change(board[0], s, *f),
                     inputs=[shown_board, source, *filters], outputs=change_outputs)
        search.submit(lambda board, *f: show_table(*board, *f), inputs=[shown_board, *filters],
                      outputs=[table, status, shown_ids])
        for control in (search, licenses, min_downloads, fully, hide_below, groups, sort_by, max_rows, sizes):
            control.change(lambda board, *f: show_table(*board, *f), inputs=[shown_board, *filters],
                           outputs=[table, status, shown_ids], trigger_mode="always_last")
        table.select(on_select, inputs=[shown_ids], outputs=[model, tabs])
        model_outputs = [header, model_share, gains_plot, fe_text, chains, dropout, se_plot, revisions]
        model.change(on_model, inputs=[shown_board, model], outputs=model_outputs)
        open_model.click(on_model, inputs=[shown_board, model], outputs=model_outputs)
        compare_button.click(on_compare, inputs=[shown_board, compare_pick], outputs=[*compare_outputs, tabs])
        add_compare.click(on_add_to_compare, inputs=[shown_board, compare_pick, model],
                          outputs=[compare_pick, *compare_outputs, tabs])
        export_button.click(on_export, inputs=[shown_board, scope, fmt, *filters], outputs=export_file)
        insight_outputs = [fe_plot, fe_corr, probe_plot, probe_corr, heatmap, beats, study, study_matrix]
        refresh_insights.click(lambda board: on_insights(*board), inputs=[shown_board], outputs=insight_outputs)
        tabs.select(lambda board: on_insights(*board), inputs=[shown_board], outputs=insight_outputs)
        # Submit has its own workers: one user's slow Hub answer never holds another's (Gradio's default is 1)
        for trigger in (submit_button.click, submit_id.submit):
            trigger(on_submit, inputs=[submit_id, submit_rev], outputs=[submit_result, jobs, job_counts],
                    concurrency_limit=SUBMIT_CONCURRENCY, concurrency_id="submit")
        refresh_jobs.click(lambda: (h.jobs(), h.job_counts()), outputs=[jobs, job_counts])
    return demo


def _size_filter(gr):
    """Model size buckets by parameter count; every bucket, "unknown" included, is shown by default."""
    return gr.CheckboxGroup(label="model size (parameters)", choices=size_choices(None), value=list(SIZE_CHOICES),
                            elem_id="size-filter", scale=2)


def _compare_picker(gr):
    """The leaderboard's way into a comparison: pick 2-4 of its models (the model page can add one too)."""
    with gr.Row():
        pick = gr.Dropdown(label="compare models (pick 2–4)", choices=[], multiselect=True, allow_custom_value=True,
                           elem_id="compare-pick", scale=5)
        button = gr.Button("Compare", elem_id="compare-button", scale=0, min_width=160)
    return pick, button


def _compare_tab(gr) -> list:
    """The Compare tab's outputs, in ``show_compare`` order: header, shareable link, grouped gain bars, table."""
    header = gr.Markdown("Pick 2–4 models under **compare models** on the Leaderboard tab, or add the model "
                         "page's model with **Add to comparison**.", elem_id="compare-header")
    share = gr.Markdown(elem_id="compare-share")
    gains = gr.Plot(label="per-target gain (points)", elem_id="compare-gains")
    table = gr.Dataframe(interactive=False, pinned_columns=2, wrap=True, max_height=400, elem_id="compare-table")
    return [header, share, gains, table]


def _repo_ids_of(h: AppHandlers, base, source, query: ViewQuery) -> list[str]:
    """The repo ids in display order (baseline first), so a clicked row maps back to its model."""
    from ui.views import filter_rows

    board = h.board(base, source)
    if board is None:
        return []
    view = filter_rows(board, query)
    limit = None if query.max_rows == "all" else int(query.max_rows)
    ids = list(view["repo_id"] if limit is None else view["repo_id"].head(limit))
    return ([board.base_id] if not board.baseline.empty else []) + ids


def create_server(store: Store, settings: Settings, handlers: AppHandlers | None = None):
    """One FastAPI app: the JSON/CSV/Parquet API under /api and the Gradio page at /."""
    import gradio as gr
    from fastapi import FastAPI, HTTPException, Response

    h = handlers or AppHandlers(store, settings)
    api = FastAPI(title="Model Recycling Leaderboard")

    @api.get("/api/leaderboard")
    def leaderboard(base: str, source: str = "project", format: str = "json",  # noqa: A002 (query name)
                    limit: int | None = None):
        if limit is not None and limit < 0:
            raise HTTPException(400, "limit must be a non-negative number of models")
        if format not in MEDIA_TYPES:
            raise HTTPException(400, f"format must be one of {', '.join(MEDIA_TYPES)}")
        if source not in SOURCES:
            raise HTTPException(400, f"source must be one of {', '.join(SOURCES)}")
        board = h.service.board(base, source)
        if board.rows.empty and board.baseline.empty:
            raise HTTPException(404, f"no {source} scores for {base}")
        return Response(h.service.rendered(base, source, format, limit), media_type=MEDIA_TYPES[format])

    @api.get("/api/leaderboards")
    def leaderboards():
        return [{"base_id": b, "source": s, "models": n} for b, s, n in h.service.available()]

    @api.api_route("/api/{path:path}", methods=["POST", "PUT", "PATCH", "DELETE"], include_in_schema=False)
    def read_only_api(path: str):  # the API is read-only; without this Gradio's mount answers 404
        raise HTTPException(405, "the API is read-only: use GET", headers={"Allow": "GET"})

    return gr.mount_gradio_app(api, build_app(store, settings, h), path="/", footer_links=[], css=APP_CSS)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    settings = _settings_of(args)
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    started = time.perf_counter()
    try:
        store = Store(settings.db_path)
        store.quick_check()  # a damaged file is refused now, not when a user submits
    except LeaderboardError as e:
        logger.error("%s", e)  # one sentence: busy, read-only at an old schema, damaged, cannot be opened
        return 1
    _seed_beside_gradio_import(store, settings)
    server = create_server(store, settings)
    logger.info("app built in %.2fs; serving %s on http://%s:%d", time.perf_counter() - started,
                settings.db_path, settings.host, settings.port)
    import uvicorn

    uvicorn.run(server, host=settings.host, port=settings.port, **server_options(settings))
    return 0


def _seed_beside_gradio_import(store: Store, settings: Settings) -> None:
    """Seed the bundles (data/bundles.py) in a forked process while this one imports Gradio: the two slow steps
    of a cold start (about 3 s each on 2 cores) run side by side. The page is built after both, so it shows what
    was seeded; a bad bundle is logged and the store used as it is. Without fork, the two run one after the
    other."""
    import multiprocessing

    from data.bundles import seed_bundles

    if "fork" not in multiprocessing.get_all_start_methods():
        seed_bundles(store, settings)
        return
    seeding = multiprocessing.get_context("fork").Process(target=seed_bundles, args=(store, settings),
                                                          name="seed-bundles")
    seeding.start()
    import gradio  # noqa: F401  (imported here, beside the seeding, instead of inside create_server)

    seeding.join()
    if seeding.exitcode:
        logger.error("seeding the bundles failed (exit code %s): the store is used as it is", seeding.exitcode)


def server_options(settings: Settings) -> dict:
    """uvicorn options beyond host and port. X-Forwarded-For is believed only from ``settings.trusted_proxies``
    (MRL_TRUSTED_PROXIES): uvicorn's default trusts it from 127.0.0.1, which lets any local client choose the
    address the submission rate limit counts."""
    trusted = ",".join(settings.trusted_proxies)
    return {"log_level": "warning", "proxy_headers": bool(trusted), "forwarded_allow_ips": trusted or "",
            "server_header": False}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", help="interface to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, help="port (default 7860)")
    parser.add_argument("--db", type=Path, help="SQLite store (default: $MRL_DB or ./leaderboard.db)")
    parser.add_argument("--snapshot", metavar="PATH|none", help="study snapshot that seeds the store once with what "
                        "it lacks (default: $MRL_SNAPSHOT or data/snapshot/study.json; none: don't seed)")
    parser.add_argument("--published", metavar="PATH|none", help="IBM's published results, seeded the same way "
                        "(default: $MRL_PUBLISHED or data/published_2023; none: don't seed)")
    return parser


def _settings_of(args: argparse.Namespace) -> Settings:
    import dataclasses

    from data.settings import snapshot_path_of

    settings = Settings.from_env().with_overrides(host=args.host, port=args.port, db_path=args.db)
    for flag, name in ((args.snapshot, "snapshot_path"), (args.published, "published_path")):
        if flag is not None:
            settings = dataclasses.replace(settings, **{name: snapshot_path_of(flag)})
    return settings


if __name__ == "__main__":
    sys.exit(main())
