"""The app's latency: leaderboard build for 50,000 models, a filter/search round trip, HTTP p95 under 50 clients.

1. ``build_leaderboard`` on a synthetic scores frame (seeded numpy): ``--models`` candidates x 36 targets + probe
   + free energy + LLC (≥ 40 leaderboard columns), the base with 5 seeds per target. Median of ``--repeats`` runs
   after one warm-up (the first call is reported too). Anchor, same frame, same run: the obvious pandas
   (groupby mean + pivot_table + mean + sort_values). Goal < 0.5 s.
2. ``AppHandlers.leaderboard(base, source, ViewQuery(...))`` on those scores written with ``Store.add_scores``
   into a tmp SQLite store (with the candidates' Hub metadata): searches, filters and sorts, median and p95
   over ``--handler-calls`` calls once the leaderboard is cached. Goal < 100 ms.
3. ``create_server(store, settings)`` under uvicorn in its own process on a free 127.0.0.1 port, with a store of
   ``--http-models`` candidates x 36 targets; ``--clients`` client threads (httpx) each fetch
   ``GET /api/leaderboard?base=...&format=json`` ``--requests`` times (bounded by ``--time-limit`` s).
   Anchor, same server, same run: one client. p50/p95/p99, requests/s, p95(N clients)/p50(1 client).
   Goal p95 < 300 ms on 2 cores.
4. On the real bundled boards (benchmarks/app_real.py): cold start of ``python app.py`` on a fresh store (it
   seeds IBM's published 2023 results and the study) to the first leaderboard row in Chromium, against the same
   app with seeding off (goal ≤ 10 s); filter/sort round trips on the roberta-base published board (1,278
   models) and the study board against plain pandas (goal p95 ≤ 100 ms).

Prints each figure on its own line and appends a section to benchmarks/RESULTS.md.

    python benchmarks/app.py [--models 50000] [--http-models 2000] [--clients 50] [--requests 20]
                             [--parts build,handler,http,real]
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import multiprocessing as mp
import os
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # before benchmarks/: ``import app`` must find the project's app.py, not this file
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from http_load import concurrent_gets  # noqa: E402 (benchmarks/, beside this script)
from record import append_section  # noqa: E402

BASE = "bench/base-model"
SOURCE = "project"
N_TARGETS = 36
BASE_SEEDS = 5
LICENSES = np.array(["mit", "apache-2.0", "cc-by-4.0", "openrail", None], dtype=object)


# ------------------------------------------------------------------ synthetic data
def sha(text: str) -> str:
    return hashlib.sha1(text.encode()).hexdigest()


def synthetic(n_models: int, seed: int = 0) -> tuple[dict[str, np.ndarray], pd.DataFrame]:
    """Score columns (SCORE_COLUMNS order, one array each) and the candidates' Hub metadata.

    Every candidate has one run per target (3% miss one target), a probe accuracy, a free energy and an LLC;
    the base has ``BASE_SEEDS`` runs per target and the same three summary metrics.
    """
    rng = np.random.default_rng(seed)
    targets = np.array([f"task{t:02d}" for t in range(N_TARGETS)], dtype=object)
    repos = np.array([f"org{i % 997:03d}/model-{i:05d}" for i in range(n_models)], dtype=object)
    revisions = np.array([sha(r) for r in repos], dtype=object)
    base_mu = rng.uniform(0.5, 0.9, N_TARGETS)
    quality = rng.normal(0.0, 0.02, n_models)

    # candidates' target rows, one seed each; 3% of candidates drop one target
    model_idx = np.repeat(np.arange(n_models), N_TARGETS)
    target_idx = np.tile(np.arange(N_TARGETS), n_models)
    keep = np.ones(len(model_idx), dtype=bool)
    partial = np.flatnonzero(rng.random(n_models) < 0.03)
    keep[partial * N_TARGETS + rng.integers(0, N_TARGETS, len(partial))] = False
    model_idx, target_idx = model_idx[keep], target_idx[keep]
    cand_values = base_mu[target_idx] + quality[model_idx] + rng.normal(0.0, 0.01, len(model_idx))

    base_target_idx = np.repeat(np.arange(N_TARGETS), BASE_SEEDS)
    base_values = base_mu[base_target_idx] + rng.normal(0.0, 0.01, len(base_target_idx))
    summary = [("linear_probe", "probe_accuracy", "nli", "lp1", 0.6, 0.05),
               ("free_energy", "free_energy", "", "fe1", 1200.0, 50.0),
               ("free_energy", "llc_mean", "", "fe1", 5.0, 0.5)]
    n_all = n_models + 1
    everyone_repo = np.append(repos, BASE)
    everyone_rev = np.append(revisions, sha(BASE))

    parts = {k: [] for k in ("repo_id", "revision", "scorer", "metric", "target", "seed", "value", "config_hash")}

    def add(repo, rev, scorer, metric, target, seed_, value, config_hash):
        n = len(value)
        parts["repo_id"].append(repo)
        parts["revision"].append(rev)
        parts["scorer"].append(np.full(n, scorer, dtype=object))
        parts["metric"].append(np.full(n, metric, dtype=object))
        parts["target"].append(target if isinstance(target, np.ndarray) else np.full(n, target, dtype=object))
        parts["seed"].append(seed_)
        parts["value"].append(value)
        parts["config_hash"].append(np.full(n, config_hash, dtype=object))

    add(repos[model_idx], revisions[model_idx], "intertraining", "target_score", targets[target_idx],
        np.zeros(len(model_idx), dtype=np.int64), cand_values, "ft1")
    add(np.full(len(base_values), BASE, dtype=object), np.full(len(base_values), sha(BASE), dtype=object),
        "intertraining", "target_score", targets[base_target_idx], np.tile(np.arange(BASE_SEEDS), N_TARGETS),
        base_values, "ft1")
    for scorer, metric, target, config_hash, mu, sd in summary:
        add(everyone_repo, everyone_rev, scorer, metric, target, np.full(n_all, -1, dtype=np.int64),
            rng.normal(mu, sd, n_all), config_hash)
    columns = {k: np.concatenate(v) for k, v in parts.items()}

    metadata = pd.DataFrame(
        {"sha": revisions,
         "downloads": np.floor(rng.lognormal(3.0, 2.5, n_models)).astype(np.int64),
         "likes": rng.poisson(2.0, n_models),
         "license": LICENSES[rng.integers(0, len(LICENSES), n_models)],
         "num_params": np.full(n_models, 124_645_632),
         "last_modified": "2024-05-01",
         "pipeline_tag": "text-classification"},
        index=pd.Index(repos, name="repo_id"))
    return columns, metadata


def scores_frame_of(columns: dict[str, np.ndarray]) -> pd.DataFrame:
    """The frame ``ranking.leaderboard.scores_frame`` would make of the same rows (same dtypes)."""
    from ranking.leaderboard import SCORE_COLUMNS, typed_scores

    return typed_scores(pd.DataFrame({k: columns[k] for k in SCORE_COLUMNS}))


def write_store(path: Path, columns: dict[str, np.ndarray], metadata: pd.DataFrame, chunk: int = 200_000):
    """A store with the base, its candidates (with metadata) and every score, through the Store's own API."""
    from data.records import ArchSignature, BaseModel, Candidate, CandidateStatus, Kind, Match, Score
    from data.store import Store

    store = Store(path)
    signature = ArchSignature(model_type="bert", hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
                              vocab_size=30522)
    store.upsert_base(BaseModel(repo_id=BASE, sha=sha(BASE), aliases=(BASE,), signature=signature))
    store.save_candidates([
        Candidate(repo_id=repo, base_id=BASE, sha=row.sha, kind=Kind.FINETUNE, match=Match.TAG,
                  status=CandidateStatus.OK, downloads=int(row.downloads), likes=int(row.likes),
                  license=row.license, pipeline_tag=row.pipeline_tag, num_params=int(row.num_params),
                  last_modified=datetime(2024, 5, 1, tzinfo=UTC))
        for repo, row in zip(metadata.index, metadata.itertuples(index=False), strict=True)
    ])
    n = len(columns["value"])
    seeds, values = columns["seed"].tolist(), columns["value"].tolist()
    for start in range(0, n, chunk):
        stop = min(n, start + chunk)
        store.add_scores([
            Score(repo_id=columns["repo_id"][i], revision=columns["revision"][i], scorer=columns["scorer"][i],
                  metric=columns["metric"][i], target=columns["target"][i], seed=seeds[i], value=values[i],
                  config_hash=columns["config_hash"][i], base_id=BASE)
            for i in range(start, stop)
        ])
    return store


# ------------------------------------------------------------------ 1. build
def naive_leaderboard(frame: pd.DataFrame, base_id: str) -> pd.DataFrame:
    """The obvious pandas: per-cell means, pivot to one row per model, gains against the base, sort."""
    targets = frame[frame["metric"] == "target_score"]
    is_base = targets["repo_id"] == base_id
    base = targets[is_base].groupby("target")["value"].mean()
    cells = targets[~is_base].groupby(["repo_id", "revision", "target"], as_index=False)["value"].mean()
    wide = cells.pivot_table(index=["repo_id", "revision"], columns="target", values="value")
    gains = wide - base
    board = wide.add_prefix("score:").join(gains.add_prefix("gain:"))
    board["mean_score"] = wide.mean(axis=1, skipna=False)
    board["mean_gain"] = gains.mean(axis=1, skipna=False)
    others = frame[(frame["metric"] != "target_score") & (frame["repo_id"] != base_id)]
    board = board.join(others.pivot_table(index=["repo_id", "revision"], columns="metric", values="value"))
    board = board.sort_values(["mean_gain", "probe_accuracy"], ascending=[False, False], na_position="last")
    return board.reset_index()


def timed(fn, repeats: int) -> tuple[float, float, object]:
    """(first call s, median of ``repeats`` calls after it s, last result)."""
    started = time.perf_counter()
    result = fn()
    first = time.perf_counter() - started
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - started)
    return first, statistics.median(times), result


def bench_build(frame: pd.DataFrame, metadata: pd.DataFrame, repeats: int) -> list[str]:
    from ranking.leaderboard import build_leaderboard

    def ours():
        return build_leaderboard(frame, base_id=BASE, source=SOURCE, base_aliases=(BASE,))

    def ours_meta():
        return build_leaderboard(frame, base_id=BASE, source=SOURCE, base_aliases=(BASE,), metadata=metadata)

    first, median, board = timed(ours, repeats)
    first_meta, median_meta, board_meta = timed(ours_meta, repeats)
    _, anchor, naive = timed(lambda: naive_leaderboard(frame, BASE), repeats)
    same_top = list(board.rows["repo_id"].head(100)) == list(naive["repo_id"].head(100))
    return [
        (f"scores frame: {len(frame):,} rows; leaderboard {len(board.rows):,} candidates x "
         f"{board.rows.shape[1]} columns ({len(board.suite)}-target suite, base {BASE_SEEDS} seeds/target)"),
        f"build_leaderboard: median {median:.3f}s over {repeats} runs, first call {first:.3f}s (goal < 0.5 s)",
        (f"build_leaderboard with Hub metadata join + current-sha filter: median {median_meta:.3f}s, "
         f"first call {first_meta:.3f}s ({board_meta.rows.shape[1]} columns)"),
        (f"anchor (naive pandas groupby + pivot_table + mean + sort_values, no CI/protocols): median "
         f"{anchor:.3f}s; ours/anchor speed = {anchor / median:.1f}x; same top 100: {same_top}"),
    ]


# ------------------------------------------------------------------ 2. handler round trip
def queries():
    from ranking.columns import GROUPS
    from ui.views import ViewQuery

    return [
        ("default view", ViewQuery()),
        ("search 'model-0042'", ViewQuery(search="model-0042")),
        ("search 'org123/'", ViewQuery(search="org123/")),
        ("search, no match", ViewQuery(search="no-such-model")),
        ("license mit", ViewQuery(licenses=("mit",))),
        ("min downloads 1000", ViewQuery(min_downloads=1000)),
        ("fully scored + above base", ViewQuery(fully_scored_only=True, hide_below_base=True)),
        ("sort by probe", ViewQuery(sort_by="probe_accuracy")),
        ("sort by score:task05", ViewQuery(sort_by="score:task05")),
        ("all column groups", ViewQuery(groups=tuple(GROUPS))),
        ("2000 rows", ViewQuery(max_rows="2000")),
    ]


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q))


def bench_handler(store, calls: int) -> list[str]:
    from data.settings import Settings
    from ui.board_cache import BoardKey
    from ui.handlers import AppHandlers
    from ui.views import ViewQuery

    handlers = AppHandlers(store, Settings(db_path=store.db_path))
    started = time.perf_counter()
    handlers.leaderboard(BoardKey(BASE, SOURCE), ViewQuery())
    cold = time.perf_counter() - started
    named = queries()
    per_query: dict[str, list[float]] = {name: [] for name, _ in named}
    times = []
    rows_shown = {}
    for i in range(calls):
        name, query = named[i % len(named)]
        started = time.perf_counter()
        frame, _, _ = handlers.leaderboard(BoardKey(BASE, SOURCE), query)
        elapsed = time.perf_counter() - started
        times.append(elapsed)
        per_query[name].append(elapsed)
        rows_shown[name] = len(frame)
    everything = []
    for _ in range(3):
        started = time.perf_counter()
        handlers.leaderboard(BoardKey(BASE, SOURCE), ViewQuery(max_rows="all"))
        everything.append(time.perf_counter() - started)
    started = time.perf_counter()
    for _ in range(5):
        store.data_version()
    version_check = (time.perf_counter() - started) / 5
    worst = max(per_query, key=lambda k: statistics.median(per_query[k]))
    lines = [
        (f"handler cold (first call: load scores from SQLite + build + view): {cold:.2f}s"),
        (f"handler round trip ({calls} calls over {len(named)} searches/filters/sorts, cached board): "
         f"median {statistics.median(times) * 1000:.1f} ms, p95 {percentile(times, 95) * 1000:.1f} ms, "
         f"max {max(times) * 1000:.1f} ms (goal < 100 ms)"),
        "per query (median ms / rows shown): " + "; ".join(
            f"{name} {statistics.median(v) * 1000:.1f}/{rows_shown[name]}" for name, v in per_query.items()),
        (f"slowest query: {worst}; 'all' rows ({len(handlers.board(BoardKey(BASE, SOURCE)).rows):,}): median "
         f"{statistics.median(everything) * 1000:.0f} ms"),
        (f"store.data_version() (cache check, at most every {handlers.service.recheck_s:g}s inside a call): "
         f"{version_check * 1000:.1f} ms"),
    ]
    return lines


# ------------------------------------------------------------------ 3. HTTP
def serve(db_path: str, conn) -> None:
    """Child process: the app under uvicorn on a free 127.0.0.1 port; sends the port, runs until terminated."""
    import logging
    import socket

    import uvicorn

    from app import create_server
    from data.settings import Settings
    from data.store import Store

    logging.basicConfig(level=logging.WARNING)
    store = Store(db_path)
    settings = Settings(db_path=Path(db_path), cache_dir=Path(db_path).parent / "cache")
    server_app = create_server(store, settings)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    conn.send(sock.getsockname()[1])
    server = uvicorn.Server(uvicorn.Config(server_app, log_level="warning", access_log=False, backlog=1024))
    server.run(sockets=[sock])


def bench_http(db_path: Path, args) -> list[str]:
    import httpx

    parent, child = mp.Pipe()
    server = mp.get_context("spawn").Process(target=serve, args=(str(db_path), child), daemon=True)
    server.start()
    try:
        if not parent.poll(120):
            raise RuntimeError("the app process did not report its port within 120 s")
        port = parent.recv()
        root = f"http://127.0.0.1:{port}"
        ready_by = time.perf_counter() + 120
        while True:
            try:
                if httpx.get(f"{root}/api/leaderboards", timeout=5).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.perf_counter() > ready_by or not server.is_alive():
                raise RuntimeError("the app did not answer /api/leaderboards within 120 s")
            time.sleep(0.2)
        full = f"{root}/api/leaderboard?base={BASE}&source={SOURCE}&format=json"
        started = time.perf_counter()
        first = httpx.get(full, timeout=120)
        cold = time.perf_counter() - started
        first.raise_for_status()
        lines = [f"HTTP first request (builds the leaderboard): {cold * 1000:.0f} ms"]
        for label, url in (("first page (base + top 100 models)", f"{full}&limit=100"), ("full ranking", full)):
            lines += _load_lines(label, url, args)
    finally:
        server.terminate()
        server.join(10)
    return lines


def _load_lines(label: str, url: str, args) -> list[str]:
    """1 client (the anchor), then ``args.clients`` at once, on one URL."""
    one, one_errors, _, sizes = concurrent_gets(url, 1, args.requests, args.time_limit, raw=False, timeout=60.0)
    many, many_errors, wall, _ = concurrent_gets(url, args.clients, args.requests, args.time_limit, raw=False,
                                                 timeout=60.0)
    size = sizes[0] if sizes else 0
    p50_one = statistics.median(one)
    p50, p95, p99 = (percentile(many, q) for q in (50, 95, 99))
    planned = args.clients * args.requests
    return [
        (f"HTTP {label}: GET {url.split('/api/')[1].split('?')[0]} ({args.http_models:,} candidates x {N_TARGETS} "
         f"targets), {size / 1e6:.2f} MB per response; uvicorn, 1 process; clients: httpx threads here"),
        (f"  1 client (anchor), {len(one)} requests: p50 {p50_one * 1000:.0f} ms, "
         f"p95 {percentile(one, 95) * 1000:.0f} ms, {len(one) / sum(one):.1f} req/s, errors {len(one_errors)}"),
        (f"  {args.clients} clients x {args.requests}: {len(many)}/{planned} done in {wall:.1f}s "
         f"(limit {args.time_limit:g}s), errors {len(many_errors)}: p50 {p50 * 1000:.0f} ms, p95 {p95 * 1000:.0f} ms, "
         f"p99 {p99 * 1000:.0f} ms, {len(many) / wall:.1f} req/s (goal p95 < 300 ms)"),
        f"  p95({args.clients} clients) / p50(1 client) = {p95 / p50_one:.1f}x",
    ]


# ------------------------------------------------------------------ main
PARTS = ("build", "handler", "http", "real")


def synthetic_parts(args, parts: list[str]) -> list[str]:
    """Sections 1-3 on synthetic scores."""
    lines: list[str] = []
    columns, metadata = synthetic(args.models, seed=0)
    if "build" in parts:
        frame = scores_frame_of(columns)
        lines += bench_build(frame, metadata, args.repeats)
        print("\n".join(lines), flush=True)
        del frame
        gc.collect()
    with tempfile.TemporaryDirectory() as tmp:
        if "handler" in parts:
            started = time.perf_counter()
            store = write_store(Path(tmp) / "handler.db", columns, metadata)
            written = time.perf_counter() - started
            n_rows = len(columns["value"])
            section = [(f"store: {n_rows:,} scores + {len(metadata):,} candidates written with Store.add_scores / "
                        f"save_candidates in {written:.1f}s ({n_rows / written:,.0f} scores/s)")]
            section += bench_handler(store, args.handler_calls)
            print("\n".join(section), flush=True)
            lines += section
        del columns
        gc.collect()
        if "http" in parts:
            http_columns, http_metadata = synthetic(args.http_models, seed=1)
            write_store(Path(tmp) / "http.db", http_columns, http_metadata)
            section = bench_http(Path(tmp) / "http.db", args)
            print("\n".join(section), flush=True)
            lines += section
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=int, default=50_000)
    parser.add_argument("--http-models", type=int, default=2_000)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--requests", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=5, help="timed build runs after the warm-up")
    parser.add_argument("--handler-calls", type=int, default=55)
    parser.add_argument("--time-limit", type=float, default=120.0, help="seconds per HTTP load phase")
    parser.add_argument("--parts", default=",".join(PARTS), help=f"comma-separated subset of {','.join(PARTS)}")
    args = parser.parse_args()
    parts = [p for p in args.parts.split(",") if p]
    if not parts or set(parts) - set(PARTS):
        parser.error(f"--parts must name some of {', '.join(PARTS)}")

    lines: list[str] = []
    if {"build", "handler", "http"} & set(parts):
        lines += synthetic_parts(args, parts)
    if "real" in parts:
        from app_real import cold_start_lines, round_trip_lines  # benchmarks/app_real.py, beside this script

        section = cold_start_lines() + round_trip_lines()
        print("\n".join(section), flush=True)
        lines += section

    command = (f"python benchmarks/app.py --models {args.models} --http-models {args.http_models} "
               f"--clients {args.clients} --requests {args.requests} --repeats {args.repeats} "
               f"--handler-calls {args.handler_calls} --time-limit {args.time_limit:g} --parts {args.parts}")
    append_section("app", [f"- {line}" for line in lines], command=command)
    return 0


if __name__ == "__main__":
    sys.exit(main())
