"""Slow requests are cut, slow responses are not: uvicorn with ``app.server_options`` (ui/http_timeouts.py).

A client whose headers do not arrive within ``header_timeout_s``, or whose body does not arrive within
``body_timeout_s``, gets a 408 and its connection closed; meanwhile other clients are answered at once, a
kept-alive connection may idle between requests, and a response may stream for longer than either timeout.
"""

from __future__ import annotations

import contextlib
import dataclasses
import socket
import threading
import time
from collections.abc import Iterator

import pytest
from fastapi import FastAPI, Request
from fastapi.responses import PlainTextResponse, StreamingResponse

from tests.helpers.leaderboard_store import build_store

TIMEOUT_S = 1.0
SLACK_S = 3.0  # a loaded 2-core machine: the close comes within the timeout plus this
N_SLOW = 50


@contextlib.contextmanager
def served(server_app, settings) -> Iterator[int]:
    """``server_app`` under uvicorn with ``app.server_options(settings)`` on a free 127.0.0.1 port (yielded)."""
    import uvicorn

    from app import server_options

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(server_app, **server_options(settings)))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while not server.started:
            assert thread.is_alive() and time.monotonic() < deadline, "the server did not start"
            time.sleep(0.02)
        yield sock.getsockname()[1]
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


@pytest.fixture
def timed_settings(settings):
    return dataclasses.replace(settings, header_timeout_s=TIMEOUT_S, body_timeout_s=TIMEOUT_S)


def connect(port: int) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT_S + SLACK_S + 5)


def read_until_closed(client: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection (a socket timeout fails the test)."""
    chunks = []
    while chunk := client.recv(65536):
        chunks.append(chunk)
    return b"".join(chunks)


def read_response(client: socket.socket) -> tuple[bytes, bytes]:
    """(status line and headers, body) of one response with a Content-Length."""
    data = b""
    while b"\r\n\r\n" not in data:
        data += client.recv(65536)
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.lower().split(b"\r\n")
    length = next(int(line.split(b":")[1]) for line in lines if line.startswith(b"content-length:"))
    while len(body) < length:
        body += client.recv(65536)
    return head, body


def get(port: int, path: str) -> tuple[bytes, bytes]:
    with connect(port) as client:
        client.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        return read_response(client)


def test_fifty_clients_that_never_finish_their_headers_are_closed_while_others_are_served(tmp_path,
                                                                                        timed_settings):
    import app

    server_app = app.create_server(build_store(tmp_path / "lb.db"), timed_settings)
    with served(server_app, timed_settings) as port:
        get(port, "/api/leaderboards")  # warm: the first answer builds the list of boards
        slow = [connect(port) for _ in range(N_SLOW)]
        opened = time.monotonic()
        for client in slow:
            client.sendall(b"GET /api/leaderboards HTTP/1.1\r\nHost: x\r\nX-Slow: ")  # and never the rest
        started = time.perf_counter()
        head, body = get(port, "/api/leaderboards")
        assert time.perf_counter() - started < 1.0
        assert head.startswith(b"HTTP/1.1 200") and b"org/base" in body
        answers, closed_at = [], []
        for client in slow:
            with client:
                answers.append(read_until_closed(client))
                closed_at.append(time.monotonic() - opened)
    assert all(a.startswith(b"HTTP/1.1 408 ") and b"connection: close" in a for a in answers)
    assert max(closed_at) < TIMEOUT_S + SLACK_S


def test_a_connection_that_sends_nothing_is_closed(timed_settings):
    with served(echo_app(), timed_settings) as port, connect(port) as client:
        started = time.monotonic()
        assert read_until_closed(client).startswith(b"HTTP/1.1 408 ")
        assert TIMEOUT_S * 0.9 < time.monotonic() - started < TIMEOUT_S + SLACK_S


def echo_app() -> FastAPI:
    """POST /echo answers its body once it has all of it, GET /ping "pong", GET /stream six events in 3 s."""
    import asyncio

    api = FastAPI()

    @api.post("/echo")
    async def echo(request: Request):
        return PlainTextResponse(await request.body())

    @api.get("/ping")
    async def ping():
        return PlainTextResponse("pong")

    @api.get("/stream")
    async def stream():
        async def chunks():
            for i in range(6):  # 3 s in all, three times the timeouts
                await asyncio.sleep(0.5)
                yield f"data: {i}\n\n".encode()

        return StreamingResponse(chunks(), media_type="text/event-stream")

    return api


def test_a_slow_body_is_cut_and_a_prompt_one_answered(timed_settings):
    with served(echo_app(), timed_settings) as port:
        with connect(port) as client:
            client.sendall(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n" + b"a" * 10)
            started = time.monotonic()
            assert read_until_closed(client).startswith(b"HTTP/1.1 408 ")
            assert time.monotonic() - started < TIMEOUT_S + SLACK_S
        with connect(port) as client:  # answered before its body came: closed, with no 408 after the answer
            client.sendall(b"POST /ping HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n" + b"a" * 10)
            started = time.monotonic()
            answer = read_until_closed(client)
            assert answer.startswith(b"HTTP/1.1 405 ") and b" 408 " not in answer
            assert time.monotonic() - started < TIMEOUT_S + SLACK_S
        with connect(port) as client:
            client.sendall(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 20\r\n\r\n" + b"b" * 10)
            time.sleep(TIMEOUT_S / 3)
            client.sendall(b"c" * 10)
            head, body = read_response(client)
            assert head.startswith(b"HTTP/1.1 200") and body == b"b" * 10 + b"c" * 10


def test_a_body_that_trickles_in_is_cut_even_though_bytes_keep_coming(timed_settings):
    with served(echo_app(), timed_settings) as port, connect(port) as client:
        client.sendall(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n")
        started = time.monotonic()
        with contextlib.suppress(OSError):  # the server may close while a byte is on its way
            while time.monotonic() - started < TIMEOUT_S + SLACK_S:
                client.sendall(b"x")
                time.sleep(0.1)
        assert read_until_closed(client).startswith(b"HTTP/1.1 408 ")
        assert time.monotonic() - started < TIMEOUT_S + SLACK_S + 0.5


def test_keep_alive_idles_between_requests_and_headers_may_arrive_in_pieces(timed_settings):
    with served(echo_app(), timed_settings) as port, connect(port) as client:
        for _ in range(3):
            for piece in (b"GET /ping HTTP/1.1\r\n", b"Host: x\r\n", b"\r\n"):
                client.sendall(piece)
                time.sleep(TIMEOUT_S / 5)  # headers in pieces, within the header timeout
            head, body = read_response(client)
            assert head.startswith(b"HTTP/1.1 200") and body == b"pong"
            time.sleep(TIMEOUT_S * 1.5)  # idle longer than the header timeout: uvicorn's keep-alive (5 s) rules
        client.sendall(b"GET /ping HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        assert read_until_closed(client).endswith(b"pong")


def test_a_response_streams_for_longer_than_the_timeouts(timed_settings):
    with served(echo_app(), timed_settings) as port, connect(port) as client:
        client.sendall(b"GET /stream HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        started = time.monotonic()
        answer = read_until_closed(client)
        assert answer.startswith(b"HTTP/1.1 200") and time.monotonic() - started > 2.5
        assert all(f"data: {i}".encode() in answer for i in range(6))


def test_server_options_carry_the_settings_timeouts(settings):
    import app

    options = app.server_options(dataclasses.replace(settings, header_timeout_s=2.5, body_timeout_s=7.0))
    assert (options["http"].header_timeout_s, options["http"].body_timeout_s) == (2.5, 7.0)
    defaults = app.server_options(settings)["http"]
    assert (defaults.header_timeout_s, defaults.body_timeout_s) == (10.0, 30.0)
