"""The leaderboard app: browse per architecture, model pages, insights, submit, download, rank on your own data.

    python app.py [--host 127.0.0.1] [--port 7860] [--db PATH] [--snapshot PATH|none] [--published PATH|none]

At start the store gets, once per bundled version, what it lacks of the bundled data (service/bundles.py): IBM's
published 2023 results (``data/published_2023``; ``--published`` / ``$MRL_PUBLISHED``) and the study snapshot
(``data/snapshot/study.json``; ``--snapshot`` / ``$MRL_SNAPSHOT``); ``none`` turns one off. The store's own
data always takes precedence.

Besides the Gradio page, ``GET /api/leaderboard?base=...[&source=...]&format=json|csv|parquet[&limit=N]
[&include_seen=1][&include_suspect=1]`` serves a ranking (the base's row and the top N models, or all) as a file;
by default each model's mean gain leaves out the suite targets its model card says it was trained on (the zero-shot
estimand) and its suspect imported cells, ``include_seen=1|true`` and ``include_suspect=1|true`` put them back.
Each such file is rendered once per store version and kept under
``<cache_dir>/api`` with a gzip copy: answers carry a strong ETag (``If-None-Match`` gets 304) and are gzipped
for clients that accept it. A store fault on the API is a 503 with its sentence. ``build_app(store, settings)``
returns the Blocks: the page's components (``ui/layout.py``) wired (``ui/wiring.py``) to their event handlers
(``ui/events.py``) over ``ui.handlers.AppHandlers``; ``create_server`` mounts it with the API on one FastAPI
app. Importing this module imports neither torch nor gradio.
"""

import argparse
import logging
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from data.errors import LeaderboardError, StoreBusy, StoreError, public_sentence
from data.metrics import PROJECT_SOURCE, SOURCES
from data.selection import canonical_id
from data.settings import Settings
from data.store import Store
from service.cli.args import settings_from_env
from ui.board_cache import BoardKey
from ui.handlers import AppHandlers
from ui.layout import APP_CSS
from ui.urls import parse_flag

logger = logging.getLogger("app")

MEDIA_TYPES = {"csv": "text/csv", "json": "application/json", "parquet": "application/vnd.apache.parquet"}


def build_app(store: Store, settings: Settings, handlers: AppHandlers | None = None):
    """The Gradio page: its components (ui/layout.py) wired to their event handlers (ui/wiring.py, ui/events.py);
    the "Your data" tab (ui/personal.py) only checks and queues personal rankings, a scoring worker runs them."""
    import gradio as gr

    from ui.events import AppEvents, PersonalEvents
    from ui.layout import build_page
    from ui.personal import PersonalHandlers
    from ui.wiring import wire, wire_personal

    h = handlers or AppHandlers(store, settings)
    personal = PersonalHandlers(store, settings, h.service)
    base0, source0 = h.default_selection()
    with gr.Blocks(title="Model Recycling Leaderboard") as demo:
        layout, personal_tab = build_page(h.service.bases(), base0, source0, personal.defaults(base0))
        wire(demo, layout, AppEvents(h))
        wire_personal(demo, personal_tab, PersonalEvents(personal))
    return demo


def create_server(store: Store, settings: Settings, handlers: AppHandlers | None = None):
    """One FastAPI app: the JSON/CSV/Parquet API under /api and the Gradio page at /. A store fault while
    answering (busy, read-only, full, damaged) is a 503 whose ``detail`` is its sentence, without the store's path.
    Rankings are served from files rendered once per store version (ui/export_files.py), with ETags, gzipped
    for clients that accept it."""
    import gradio as gr
    from fastapi import FastAPI, HTTPException, Request
    from fastapi.responses import JSONResponse

    from ui.export_files import ExportFiles, export_response

    h = handlers or AppHandlers(store, settings)
    files = ExportFiles(settings.cache_dir / "api")
    api = FastAPI(title="Model Recycling Leaderboard")

    @api.exception_handler(StoreError)
    async def store_fault(request: Request, error: StoreError):
        headers = {"Retry-After": "5"} if isinstance(error, StoreBusy) else None
        logger.error("the API could not answer: %s", error)
        return JSONResponse({"detail": public_sentence(error)}, status_code=503, headers=headers)

    @api.get("/api/leaderboard")
    def leaderboard(request: Request, base: str, source: str | None = None, format: str = "json",  # noqa: A002
                    limit: int | None = None, include_seen: str = "false", include_suspect: str = "false"):
        seen, suspect = parse_flag(include_seen), parse_flag(include_suspect)
        if seen is None:
            raise HTTPException(400, "include_seen must be 1, true, 0 or false (default false: each model's mean "
                                     "gain leaves out the targets it was trained on)")
        if suspect is None:
            raise HTTPException(400, "include_suspect must be 1, true, 0 or false (default false: each model's mean "
                                     "gain leaves out its suspect imported cells)")
        if limit is not None and limit < 0:
            raise HTTPException(400, "limit must be a non-negative number of models")
        if format not in MEDIA_TYPES:
            raise HTTPException(400, f"format must be one of {', '.join(MEDIA_TYPES)}")
        if source is not None and source not in SOURCES:
            raise HTTPException(400, f"source must be one of {', '.join(SOURCES)}")
        base_id = canonical_id(base)  # resolved once: the rest takes the key
        held = [s for b, s, _ in h.service.available() if b == base_id]
        if source is None and len(held) > 1:
            raise HTTPException(400, f"{base} has {len(held)} leaderboards: add source={' or source='.join(held)}")
        source = source or (held[0] if held else PROJECT_SOURCE)
        version, board = h.service.versioned_board(BoardKey(base_id, source), seen, suspect)
        if board.rows.empty and board.baseline.empty:
            known = f"; its scores are under source={' or source='.join(held)}" if held else ""
            raise HTTPException(404, f"no {source} scores for {base}{known}")
        return export_response(files, request, version, board, format, limit, MEDIA_TYPES[format])

    @api.get("/api/leaderboards")
    def leaderboards():
        return [{"base_id": b, "source": s, "models": n} for b, s, n in h.service.available()]

    @api.api_route("/api/{path:path}", methods=["POST", "PUT", "PATCH", "DELETE"], include_in_schema=False)
    def read_only_api(path: str):  # the API is read-only; without this Gradio's mount answers 404
        raise HTTPException(405, "the API is read-only: use GET", headers={"Allow": "GET"})

    demo = build_app(store, settings, h)
    server = gr.mount_gradio_app(api, demo, path="/", footer_links=[], css=APP_CSS,
                                 max_file_size=settings.personal_max_bytes)  # an upload is cut off as it streams
    # mount_gradio_app leaves the Blocks "not launched", and Gradio then skips its check of the paths a request's
    # file payload names: any server file could be read as an upload. Mark it launched so the check holds.
    demo.has_launched = True
    return server


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
    uploads = _own_upload_folder(settings)
    _seed_beside_gradio_import(store, settings)
    server = create_server(store, settings)
    _start_housekeeping(store, settings, uploads)
    logger.info("app built in %.2fs; serving %s on http://%s:%d", time.perf_counter() - started,
                settings.db_path, settings.host, settings.port)
    import uvicorn

    uvicorn.run(server, host=settings.host, port=settings.port, **server_options(settings))
    return 0


def _own_upload_folder(settings: Settings) -> Path:
    """Gradio's upload folder (``GRADIO_TEMP_DIR``, set before gradio is imported): by default one of this app's
    own under its cache dir, so the periodic sweep deletes only this app's uploads and downloads."""
    import os

    from ui.uploads import upload_root

    os.environ.setdefault("GRADIO_TEMP_DIR", str((Path(settings.cache_dir) / "gradio").resolve()))
    return upload_root()


def _start_housekeeping(store: Store, settings: Settings, uploads: Path) -> None:
    """The periodic purge (ui/housekeeping.py): now, then every ``settings.personal_purge_every_s`` seconds."""
    import functools

    from ui.housekeeping import Housekeeper, purge_once

    Housekeeper(functools.partial(purge_once, store, settings, uploads), settings.personal_purge_every_s).start()


def _seed_beside_gradio_import(store: Store, settings: Settings) -> None:
    """Seed the bundles (service/bundles.py) in a forked process while this one imports Gradio: the two slow steps
    of a cold start (about 3 s each on 2 cores) run side by side. The page is built after both, so it shows what
    was seeded; a bad bundle is logged and the store used as it is. Without fork, the two run one after the
    other."""
    import multiprocessing

    from service.bundles import seed_bundles

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
    address the submission rate limit counts. A request's headers must arrive within ``settings.header_timeout_s``
    and its body within ``settings.body_timeout_s`` (ui/http_timeouts.py); responses are not timed."""
    from ui.http_timeouts import timed_protocol

    trusted = ",".join(settings.trusted_proxies)
    return {"log_level": "warning", "proxy_headers": bool(trusted), "forwarded_allow_ips": trusted or "",
            "server_header": False, "http": timed_protocol(settings.header_timeout_s, settings.body_timeout_s)}


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

    settings = settings_from_env(host=args.host, port=args.port, db_path=args.db)
    for flag, name in ((args.snapshot, "snapshot_path"), (args.published, "published_path")):
        if flag is not None:
            settings = dataclasses.replace(settings, **{name: snapshot_path_of(flag)})
    return settings


if __name__ == "__main__":
    sys.exit(main())
