"""uvicorn's h11 protocol with two more timeouts: a request's headers, then its body, must arrive in time.

uvicorn 0.54 bounds only the idle time between requests (``timeout_keep_alive``): a client that opens a
connection and sends its headers, or a request body, a byte now and then holds the connection for as long as
it likes (slowloris). ``timed_protocol(header_s, body_s)`` is an ``H11Protocol`` subclass, given to uvicorn as
``http=``, that closes such a connection:

- headers: complete within ``header_s`` of the connection opening, or of the first byte of a next request on
  a kept-alive connection (the idle wait before it stays uvicorn's keep-alive timeout);
- body: complete within ``body_s`` of the end of the headers.

A request that runs out of time is answered 408, unless its answer has started, and its connection is closed.
Only requests are timed: a response streams for as long as it lasts (Gradio's SSE queue), and a connection
upgraded to a WebSocket leaves this protocol with its timer cancelled.
"""

from __future__ import annotations

import asyncio

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

_TIMEOUT_TEXT = b"The request took too long to arrive.\n"
REQUEST_TIMEOUT = (b"HTTP/1.1 408 Request Timeout\r\ncontent-type: text/plain; charset=utf-8\r\nconnection: close\r\n"
                   b"content-length: %d\r\n\r\n%s" % (len(_TIMEOUT_TEXT), _TIMEOUT_TEXT))


class TimedH11Protocol(H11Protocol):
    """Times each request's headers and body; see the module's docstring."""

    header_timeout_s = 10.0
    body_timeout_s = 30.0

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._timer: asyncio.TimerHandle | None = None
        self._timing: str | None = None  # "headers", "body" or None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._start("headers")

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        self._follow(started=True)

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._follow(started=bool(self.conn.trailing_data[0]))  # a pipelined next request already begun

    def connection_lost(self, exc: Exception | None) -> None:
        self._start(None)
        super().connection_lost(exc)

    def handle_websocket_upgrade(self, event: h11.Request) -> None:
        self._start(None)
        super().handle_websocket_upgrade(event)

    def _follow(self, *, started: bool) -> None:
        """Time what the request is waiting for now; ``started``: bytes of a next request have arrived."""
        state = self.conn.their_state
        if self.transport.is_closing():
            self._start(None)
        elif state is h11.IDLE:
            if started and self._timing != "headers":
                self._start("headers")
        elif state is h11.SEND_BODY:
            if self._timing != "body":
                self._start("body")
        else:
            self._start(None)

    def _start(self, timing: str | None) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._timing = timing
        if timing is not None:
            delay = self.header_timeout_s if timing == "headers" else self.body_timeout_s
            self._timer = self.loop.call_later(delay, self._expired)

    def _expired(self) -> None:
        timing, self._timer, self._timing = self._timing, None, None
        if self.transport.is_closing() or self.transport.get_protocol() is not self:
            return
        if timing == "headers" or self.cycle is None or not self.cycle.response_started:
            self.transport.write(REQUEST_TIMEOUT)  # nothing answered this request yet
        self.transport.close()


def timed_protocol(header_timeout_s: float, body_timeout_s: float) -> type[TimedH11Protocol]:
    """The protocol class for uvicorn's ``http=`` with these two timeouts (seconds)."""
    return type("TimedH11Protocol", (TimedH11Protocol,),
                {"header_timeout_s": header_timeout_s, "body_timeout_s": body_timeout_s})
