"""The full-ranking download under load: GET /api/leaderboard on the largest bundled board, 50 clients at once.

``python app.py`` runs on a fresh store in a tmp folder (it seeds IBM's published 2023 results and the study at
start) on a free 127.0.0.1 port; the board is FacebookAI/roberta-base, source published-2023 (1,278 models).
``--clients`` client threads (httpx, one connection each, in this process) each fetch the whole ranking
(no limit) ``--requests`` times, bounded by ``--time-limit`` seconds, once as CSV and once as JSON; a response
is timed until its last byte as sent (a gzip body is not decompressed here, so the clients' CPU, which shares
the machine with the server, is not counted). Latency p50/p95/p99 per format.

Anchors, same run, same store, same clients, in a process of their own (``--serve-anchor``, never part of the
app): the named anchor renders the ranking on every request (``ui.board_cache.render_board``) and sends it as it
is; beside it, the endpoint as it was before the files (``LeaderboardService.rendered``: the render kept in
memory per built board, sent uncompressed). A render per request is slow, so its phase makes a fifth of the
requests. Prints anchor/new and before/new per format and appends a section to benchmarks/RESULTS.md. Goal:
p95 <= 300 ms under 50 clients.

    python benchmarks/api_load.py [--clients 50] [--requests 10] [--time-limit 30]
"""

from __future__ import annotations

import argparse
import gzip
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # before benchmarks/: ``import app`` must find the project's app.py

from http_load import concurrent_gets, fetch  # noqa: E402 (benchmarks/, beside this script)
from record import append_section, machine  # noqa: E402

BOARD = ("FacebookAI/roberta-base", "published-2023")
FORMATS = ("csv", "json")
START_TIMEOUT_S = 180


# ------------------------------------------------------------------ the anchor server (old endpoint)
def serve_anchor(db_path: str, port: int) -> None:
    """The API's full-ranking route as it was: render (cached per built board) and send it as it is."""
    import uvicorn
    from fastapi import FastAPI, Response

    from app import MEDIA_TYPES, server_options
    from data.settings import Settings
    from data.store import Store
    from ui.board_cache import LeaderboardService, render_board

    settings = Settings(db_path=Path(db_path))
    service = LeaderboardService(Store(settings.db_path))
    api = FastAPI()

    @api.get("/api/leaderboard")
    def leaderboard(base: str, source: str = "project", format: str = "json"):  # noqa: A002 (query name)
        key = service.key(base, source)
        service.board(key, False)
        return Response(service.rendered(key, format, None, include_seen=False),
                        media_type=MEDIA_TYPES[format])

    @api.get("/rerender")
    def rerender(base: str, source: str = "project", format: str = "json"):  # noqa: A002 (query name)
        return Response(render_board(service.board(service.key(base, source), False), format),
                        media_type=MEDIA_TYPES[format])

    uvicorn.run(api, host="127.0.0.1", port=port, **server_options(settings))


# ------------------------------------------------------------------ processes
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(args: list[str], env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, *args], cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)


def wait_ready(url: str, process: subprocess.Popen) -> float:
    """Seconds until ``url`` answers 200."""
    import httpx

    started = time.perf_counter()
    while time.perf_counter() - started < START_TIMEOUT_S:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited ({process.returncode}) before answering {url}")
        try:
            if httpx.get(url, timeout=30).status_code == 200:
                return time.perf_counter() - started
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer within {START_TIMEOUT_S} s")


def stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(10)


# ------------------------------------------------------------------ load
def percentile(values: list[float], q: int) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1] if len(values) > 1 else values[0]


def phase(label: str, url: str, args, requests: int) -> tuple[str, float]:
    """One load phase: its line and its p95 (seconds)."""
    times, errors, wall, _ = concurrent_gets(url, args.clients, requests, args.time_limit)
    if not times:
        return f"{label}: no request answered ({len(errors)} errors: {errors[:1]})", float("nan")
    p50, p95, p99 = (percentile(times, q) for q in (50, 95, 99))
    line = (f"{label}, {args.clients} clients x {requests}: {len(times)}/{args.clients * requests} done in "
            f"{wall:.1f}s (limit {args.time_limit:g}s), errors {len(errors)}: p50 {p50 * 1000:.0f} ms, "
            f"p95 {p95 * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms, {len(times) / wall:.1f} req/s")
    return line, p95


def url_of(port: int, fmt: str, route: str = "api/leaderboard") -> str:
    return f"http://127.0.0.1:{port}/{route}?base={BOARD[0]}&source={BOARD[1]}&format={fmt}"


def same_bytes_line(new_port: int, anchor_port: int, fmt: str) -> str:
    import httpx

    with httpx.Client(timeout=120.0) as client:
        old_body, _ = fetch(client, url_of(anchor_port, fmt))
        new_body, headers = fetch(client, url_of(new_port, fmt))
    plain = gzip.decompress(new_body) if headers.get("content-encoding") == "gzip" else new_body
    return (f"{fmt}: {len(old_body) / 1e6:.2f} MB rendered, {len(new_body) / 1e6:.2f} MB sent "
            f"({headers.get('content-encoding', 'identity')}); the same bytes as the anchor: {plain == old_body}")


def compare(new_port: int, anchor_port: int, args) -> list[str]:
    """Per format: the bodies checked equal, then the anchors' load phases and the new one's."""
    lines = []
    for fmt in FORMATS:
        checked = same_bytes_line(new_port, anchor_port, fmt)  # also the warm-up: builds the board, renders once
        few = max(1, args.requests // 5)  # a render per request is slow: fewer of them
        rerender, rerender_p95 = phase("  anchor: rendered on every request, sent uncompressed",
                                       url_of(anchor_port, fmt, "rerender"), args, few)
        cached, cached_p95 = phase("  the endpoint before: render kept per built board, sent uncompressed",
                                   url_of(anchor_port, fmt), args, args.requests)
        new, new_p95 = phase("  new: pre-rendered file, gzip, ETag", url_of(new_port, fmt), args, args.requests)
        goal = "met" if new_p95 <= 0.3 else "NOT met"
        lines += [checked, rerender, cached, f"{new} (goal p95 <= 300 ms: {goal})",
                  f"  p95 ratios: anchor/new = {rerender_p95 / new_p95:.1f}x, before/new = {cached_p95 / new_p95:.1f}x"]
        print("\n".join(lines[-5:]), flush=True)
    return lines


# ------------------------------------------------------------------ main
def run(args) -> list[str]:
    env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False", "HF_HUB_DISABLE_TELEMETRY": "1"}
    with tempfile.TemporaryDirectory() as tmp:
        env["MRL_CACHE_DIR"] = str(Path(tmp) / "cache")
        env["GRADIO_TEMP_DIR"] = str(Path(tmp) / "gradio")
        db, new_port, anchor_port = Path(tmp) / "lb.db", free_port(), free_port()
        app = start(["app.py", "--db", str(db), "--port", str(new_port)], env)
        try:
            ready = wait_ready(f"http://127.0.0.1:{new_port}/api/leaderboards", app)
            anchor = start([__file__, "--serve-anchor", str(db), str(anchor_port)], env)
            try:
                wait_ready(url_of(anchor_port, "csv"), anchor)
                first = (f"board {BOARD[0]} ({BOARD[1]}), GET /api/leaderboard full ranking; python app.py on a "
                         f"fresh store answered after {ready:.1f} s (seeding the bundles); uvicorn, 1 process "
                         f"each; clients: httpx threads here, one connection each, bodies read raw")
                print(first, flush=True)
                return [first, *compare(new_port, anchor_port, args)]
            finally:
                stop(anchor)
        finally:
            stop(app)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--requests", type=int, default=10, help="requests per client and phase")
    parser.add_argument("--time-limit", type=float, default=30.0, help="seconds per load phase")
    parser.add_argument("--serve-anchor", nargs=2, metavar=("DB", "PORT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_anchor:
        serve_anchor(args.serve_anchor[0], int(args.serve_anchor[1]))
        return 0
    started = time.perf_counter()
    lines = run(args)
    lines.append(f"benchmark wall time: {time.perf_counter() - started:.0f}s")
    command = (f"python benchmarks/api_load.py --clients {args.clients} --requests {args.requests} "
               f"--time-limit {args.time_limit:g}")
    append_section("api_load", [f"- {line}" for line in lines], command=command, host=machine(cpu=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
