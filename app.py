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
import logging
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from data.errors import LeaderboardError, SubmissionRejected
from data.metrics import SOURCES
from data.settings import Settings
from data.store import Store
from ranking.columns import DEFAULT_GROUPS, GROUPS
from ui.about import ABOUT, EMPTY_STATE
from ui.handlers import AppHandlers
from ui.views import ROW_LIMITS, ViewQuery

logger = logging.getLogger("app")

MEDIA_TYPES = {"csv": "text/csv", "json": "application/json", "parquet": "application/vnd.apache.parquet"}


def build_app(store: Store, settings: Settings, handlers: AppHandlers | None = None):
    import gradio as gr

    h = handlers or AppHandlers(store, settings)
    base0, source0 = h.default_selection()

    def query_from(search, licenses, min_downloads, fully, hide_below, groups, sort_by, max_rows) -> ViewQuery:
        return ViewQuery(search=search or "", licenses=tuple(licenses or ()), min_downloads=float(min_downloads or 0),
                         fully_scored_only=bool(fully), hide_below_base=bool(hide_below),
                         groups=tuple(groups or DEFAULT_GROUPS), sort_by=sort_by or "mean_gain",
                         max_rows=max_rows or "500")

    def show_table(base, source, *filters):
        frame, datatypes, status = h.leaderboard(base, source, query_from(*filters))
        shown_ids = _repo_ids_of(h, base, source, query_from(*filters))
        return gr.update(value=frame, datatype=datatypes or "str"), status, shown_ids

    def on_leaderboard_change(base, source, *filters):
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
                gr.update(choices=controls["sort"], value=filters[6]),
                gr.update(choices=controls["models"]), table, status, shown)

    def on_load(request: gr.Request, *filters):
        params = dict(request.query_params) if request is not None else {}
        base, source = h.default_selection(params.get("base"), params.get("source"))
        return (gr.update(choices=h.service.bases(), value=base), *on_leaderboard_change(base, source, *filters))

    def on_select(shown_ids, evt: gr.SelectData):
        row = evt.index[0] if isinstance(evt.index, (list, tuple)) else evt.index
        repo_id = shown_ids[row] if shown_ids and 0 <= row < len(shown_ids) else ""
        return gr.update(value=repo_id), gr.Tabs(selected="model")

    def on_model(base, source, repo_id):
        page = h.model_page(base, source, repo_id)
        return (page["header"], page["gains"], page["free_energy"], page["chains"], page["dropout"],
                page["sample_efficiency"],
                page["revisions"])

    def on_insights(base, source):
        out = h.insights(base, source)
        return (out["free_energy"], out["free_energy_text"], out["probe"], out["probe_text"], out["heatmap"],
                out["beats_base"], out["study"], out["study_matrix"])

    def on_submit(repo_id, revision, request: gr.Request):
        client = getattr(request, "client", None)
        submitter = getattr(client, "host", None)  # the per-submitter hourly limit counts by client address
        try:
            message = h.submit(repo_id, revision, submitter=submitter)
        except SubmissionRejected as e:
            gr.Warning(e.reason, duration=4)
            return f"**Not queued.** {_escape_md(e.reason)}", h.jobs(), h.job_counts()
        except Exception:
            logger.exception("submission of %r failed unexpectedly", repo_id)
            gr.Warning("Something went wrong while queueing the model; it has been logged.")
            return "**Not queued.** Something went wrong; it has been logged.", h.jobs(), h.job_counts()
        return message, h.jobs(), h.job_counts()

    def on_export(base, source, scope, fmt, *filters):
        query = query_from(*filters) if scope == "current view" else None
        try:
            return str(h.export(base, source, query, fmt))
        except SubmissionRejected as e:
            gr.Warning(e.reason)
            return None

    with gr.Blocks(title="Model Recycling Leaderboard") as demo:
        gr.Markdown("# Model Recycling Leaderboard\nWhich checkpoint on the Hub should you fine-tune from? "
                    "Finetuned models ranked by how much they improve on their base model as a starting point.")
        if base0 is None:
            gr.Markdown(EMPTY_STATE, elem_id="empty-state")
        with gr.Tabs() as tabs:
            with gr.Tab("Leaderboard", id="leaderboard"):
                with gr.Row():
                    base = gr.Dropdown(label="base model", choices=h.service.bases(), value=base0, elem_id="base")
                    source = gr.Radio(label="source", choices=list(SOURCES), value=source0, elem_id="source")
                    search = gr.Textbox(label="search models", placeholder="name contains…", elem_id="search")
                with gr.Row():
                    licenses = gr.Dropdown(label="license", choices=[], multiselect=True, elem_id="license")
                    min_downloads = gr.Number(label="minimum downloads", value=0, minimum=0, elem_id="min-downloads")
                    fully = gr.Checkbox(label="fully scored only", elem_id="fully-scored")
                    hide_below = gr.Checkbox(label="hide models below the base", elem_id="hide-below")
                with gr.Row():
                    groups = gr.CheckboxGroup(label="columns", choices=list(GROUPS), value=list(DEFAULT_GROUPS),
                                              elem_id="groups")
                    sort_by = gr.Dropdown(label="sort by", choices=[("mean gain", "mean_gain")], value="mean_gain",
                                          elem_id="sort-by")
                    max_rows = gr.Radio(label="rows shown", choices=list(ROW_LIMITS), value="500", elem_id="max-rows")
                status = gr.Markdown(elem_id="status")
                table = gr.Dataframe(interactive=False, pinned_columns=2, max_height=640, wrap=True,
                                     elem_id="leaderboard-table", buttons=["fullscreen"])
                shown_ids = gr.State([])
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
                    open_model = gr.Button("Show", elem_id="show-model")
                header = gr.Markdown(elem_id="model-header")
                gains_plot = gr.Plot(label="per-target gain (points)", elem_id="model-gains")
                with gr.Row():
                    fe_text = gr.Markdown(elem_id="model-free-energy")
                    chains = gr.Dataframe(label="LLC per chain", interactive=False, elem_id="model-chains")
                    dropout = gr.Dataframe(label="Guided dropout rates (Fisher-ranked; when fine-tuned with them)",
                                           interactive=False, elem_id="model-dropout")
                se_plot = gr.Plot(label="sample efficiency (LoRA accuracy vs labels)", elem_id="model-sample-eff")
                revisions = gr.Dataframe(label="scored revisions", interactive=False, elem_id="model-revisions")
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

        filters = [search, licenses, min_downloads, fully, hide_below, groups, sort_by, max_rows]
        change_outputs = [source, licenses, sort_by, model, table, status, shown_ids]
        demo.load(on_load, inputs=filters, outputs=[base, *change_outputs])
        demo.load(lambda: (h.jobs(), h.job_counts()), outputs=[jobs, job_counts])
        base.change(on_leaderboard_change, inputs=[base, source, *filters], outputs=change_outputs)
        source.change(on_leaderboard_change, inputs=[base, source, *filters], outputs=change_outputs)
        search.submit(show_table, inputs=[base, source, *filters], outputs=[table, status, shown_ids])
        for control in (search, licenses, min_downloads, fully, hide_below, groups, sort_by, max_rows):
            control.change(show_table, inputs=[base, source, *filters], outputs=[table, status, shown_ids],
                           trigger_mode="always_last")
        table.select(on_select, inputs=[shown_ids], outputs=[model, tabs])
        model_outputs = [header, gains_plot, fe_text, chains, dropout, se_plot, revisions]
        model.change(on_model, inputs=[base, source, model], outputs=model_outputs)
        open_model.click(on_model, inputs=[base, source, model], outputs=model_outputs)
        export_button.click(on_export, inputs=[base, source, scope, fmt, *filters], outputs=export_file)
        insight_outputs = [fe_plot, fe_corr, probe_plot, probe_corr, heatmap, beats, study, study_matrix]
        refresh_insights.click(on_insights, inputs=[base, source], outputs=insight_outputs)
        tabs.select(lambda b, s: on_insights(b, s), inputs=[base, source], outputs=insight_outputs)
        submit_button.click(on_submit, inputs=[submit_id, submit_rev], outputs=[submit_result, jobs, job_counts])
        submit_id.submit(on_submit, inputs=[submit_id, submit_rev], outputs=[submit_result, jobs, job_counts])
        refresh_jobs.click(lambda: (h.jobs(), h.job_counts()), outputs=[jobs, job_counts])
    return demo


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


def _escape_md(text: str) -> str:
    import html

    return html.escape(text)


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

    return gr.mount_gradio_app(api, build_app(store, settings, h), path="/", footer_links=[])


def main(argv: Sequence[str] | None = None) -> int:
    from data.bundles import seed_bundles

    args = _parser().parse_args(argv)
    settings = _settings_of(args)
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    started = time.perf_counter()
    try:
        store = Store(settings.db_path)
    except LeaderboardError as e:
        logger.error("%s", e)
        return 1
    seed_bundles(store, settings)  # logs its counts; a bad bundle is logged and the store used as it is
    server = create_server(store, settings)
    logger.info("app built in %.2fs; serving %s on http://%s:%d", time.perf_counter() - started,
                settings.db_path, settings.host, settings.port)
    import uvicorn

    uvicorn.run(server, host=settings.host, port=settings.port, log_level="warning")
    return 0


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
