"""Crawl throughput on a 10,000-model local Hub, and requests per unchanged model on a recrawl.

The hub runs in its own process (as the real Hub would be another machine). Anchor, measured in the
same run: a naive crawl with huggingface_hub's public API (``list_models(full=True)``, then
``model_info`` and ``hf_hub_download("config.json")`` per model, one at a time) over a sample of the
same models. Prints our models/s, the anchor's, their ratio, and appends a line to RESULTS.md.

    python benchmarks/crawl.py [--models 10000] [--anchor-sample 300] [--concurrency 8]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

from record import append_section  # noqa: E402 (benchmarks/, beside this script)


def serve(n_models: int, conn) -> None:
    """Child process: build the population, serve it, answer 'reset'/'count'/'stop' on the pipe."""
    from data.local_hub import LocalHub
    from tests.helpers.hub_population import add_shape, build_population, shape_named

    hub = LocalHub(page_size=1000)
    n_family = int(n_models * 0.7 / 1.04)
    build_population(hub, n_family)
    other = shape_named("other-base")
    for i in range(n_models - len(hub.model_ids())):
        add_shape(hub, other, f"bert-org{i % 11}/bert-finetune-{i:05d}", downloads=i)
    conn.send((hub.start(), len(hub.model_ids())))
    while True:
        command = conn.recv()
        if command == "reset":
            hub.reset_requests()
            conn.send(None)
        elif command == "count":
            conn.send((dict(hub.model_requests()), len(hub.requests)))
        else:
            hub.stop()
            conn.send(None)
            return


def naive_crawl_rate(url: str, sample: int, hf_home: Path) -> float:
    """models/s of the obvious huggingface_hub loop, over the first ``sample`` models of the same listing."""
    os.environ["HF_HOME"] = str(hf_home)
    from huggingface_hub import HfApi, hf_hub_download

    from tests.helpers.hub_population import BASE_ID

    api = HfApi(endpoint=url, token=False)
    started = time.perf_counter()
    n = 0
    for info in api.list_models(filter=f"base_model:{BASE_ID}", full=True, limit=sample):
        full = api.model_info(info.id, revision=info.sha)
        if full.siblings and any(s.rfilename == "config.json" for s in full.siblings) and not info.gated:
            hf_hub_download(info.id, "config.json", revision=info.sha, endpoint=url, token=False,
                            cache_dir=hf_home / "hub")
        n += 1
    return n / (time.perf_counter() - started)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=int, default=10_000)
    parser.add_argument("--anchor-sample", type=int, default=300)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()

    from data.crawler import crawl
    from data.hub import HubClient
    from data.settings import Settings
    from data.store import Store
    from tests.helpers.hub_population import BASE_ID, MAX_PARAMS

    parent, child = mp.Pipe()
    server = mp.get_context("fork").Process(target=serve, args=(args.models, child), daemon=True)
    server.start()
    url, hub_models = parent.recv()
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(db_path=Path(tmp) / "bench.db", hub_endpoint=url, cache_dir=Path(tmp) / "cache",
                            max_params=MAX_PARAMS, crawl_concurrency=args.concurrency,
                            crawl_backoff_base_s=0.05)
        store = Store(settings.db_path)
        first = crawl(BASE_ID, HubClient(settings), store, settings)
        parent.send("reset")
        parent.recv()
        second = crawl(BASE_ID, HubClient(settings), store, settings)
        parent.send("count")
        per_model, total_requests = parent.recv()
        unchanged_requests = sum(n for repo, n in per_model.items() if repo != BASE_ID)
        anchor = naive_crawl_rate(url, args.anchor_sample, Path(tmp) / "hf_home")
    parent.send("stop")
    parent.recv()

    ours = hub_models / first.duration_s
    ours_listed = first.found / first.duration_s
    recrawl_rate = hub_models / second.duration_s
    per_unchanged = unchanged_requests / max(1, second.unchanged)
    lines = [
        (f"hub: {hub_models} models; crawl found {first.found} for {BASE_ID} "
        f"({first.candidates} candidates, skipped {sum(first.skipped.values())}) in {first.duration_s:.2f}s"),
        f"first crawl: {ours:.0f} hub models/s ({ours_listed:.0f} listed models/s), goal >= 500",
        (f"recrawl: {second.duration_s:.2f}s ({recrawl_rate:.0f} hub models/s), {total_requests} requests in all, "
        f"{per_unchanged:.3f} per-model requests per unchanged model (goal 0)"),
        (f"anchor (naive huggingface_hub loop, {args.anchor_sample} models): {anchor:.0f} models/s; "
        f"ours/anchor = {ours_listed / anchor:.1f}x"),
    ]
    print("\n".join(lines))
    command = (f"python benchmarks/crawl.py --models {args.models} --anchor-sample {args.anchor_sample} "
               f"--concurrency {args.concurrency}")
    append_section("crawl", [f"- {line}" for line in lines], command=command)
    return 0


if __name__ == "__main__":
    sys.exit(main())
