"""HTTP load for benchmarks/api_load.py and app.py: ``clients`` threads x ``requests`` GETs of one URL, started
together behind a barrier, each thread an httpx client with one connection."""

from __future__ import annotations

import threading
import time
from typing import NamedTuple


class Load(NamedTuple):
    latencies: list[float]  # seconds per answered request (200), until its body's last byte
    errors: list[str]  # repr of each failed request's error
    wall: float  # seconds from the start to the last thread's end
    sizes: list[int]  # body bytes per answered request, in the order of ``latencies``


def fetch(client, url: str, raw: bool = True) -> tuple[bytes, dict]:
    """The body and the headers; RuntimeError unless HTTP 200. ``raw``: the body as sent (still gzipped when it was),
    else decoded (as ``response.content``)."""
    with client.stream("GET", url) as response:
        body = b"".join(response.iter_raw()) if raw else response.read()
        if response.status_code != 200:
            raise RuntimeError(f"HTTP {response.status_code}")
        return body, dict(response.headers)


def _client(url: str, n: int, deadline: float, barrier: threading.Barrier, load: Load, raw: bool,
            timeout: float) -> None:
    import httpx

    with httpx.Client(timeout=timeout) as client:
        barrier.wait()
        for _ in range(n):
            if time.perf_counter() > deadline:
                return
            started = time.perf_counter()
            try:
                body, _ = fetch(client, url, raw)
            except (httpx.HTTPError, RuntimeError) as e:
                load.errors.append(repr(e))
                continue
            load.latencies.append(time.perf_counter() - started)
            load.sizes.append(len(body))


def concurrent_gets(url: str, clients: int, requests: int, time_limit: float, *, raw: bool = True,
                    timeout: float = 120.0) -> Load:
    """``clients`` threads x ``requests`` GETs of ``url`` started together; no request starts after
    ``time_limit`` seconds. ``raw``: bodies read as sent (see ``fetch``); ``timeout``: httpx's, per request."""
    load = Load([], [], 0.0, [])
    barrier = threading.Barrier(clients + 1)
    deadline = time.perf_counter() + time_limit
    threads = [threading.Thread(target=_client, args=(url, requests, deadline, barrier, load, raw, timeout),
                                daemon=True) for _ in range(clients)]
    for thread in threads:
        thread.start()
    barrier.wait()
    started = time.perf_counter()
    for thread in threads:
        thread.join(timeout=max(0.0, deadline - time.perf_counter()) + timeout + 5)
    return load._replace(wall=time.perf_counter() - started)
