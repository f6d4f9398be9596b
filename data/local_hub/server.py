"""HTTP plumbing: a threaded HTTP/1.1 server per origin that routes, injects faults, answers and logs."""

from __future__ import annotations

import logging
import socket
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote

from data.local_hub.faults import ERROR_KINDS, Fault, FaultInjector
from data.local_hub.repos import RepoType
from data.local_hub.requests_log import RequestLog, RequestRecord
from data.local_hub.responses import HubError, Response
from data.local_hub.routes import Route

logger = logging.getLogger(__name__)

_POLL_INTERVAL_S = 0.05  # how fast serve_forever notices shutdown()
_IDLE_TIMEOUT_S = 120  # keep-alive connections idle this long are closed


@dataclass(frozen=True, slots=True)
class Incoming:
    """A request as the endpoints see it: route plus the raw query and the headers that matter."""

    method: str
    route: Route
    query: str
    authorization: str | None
    range_header: str | None


@dataclass(frozen=True, slots=True)
class Site:
    """What one origin serves: how to route a raw path, how to answer, and whom a request concerns."""

    route: Callable[[str], Route | None]
    respond: Callable[[Incoming], Response]  # may raise HubError
    subject: Callable[[Route], tuple[RepoType, str] | None]  # (repo_type, canonical id) for the request log
    faults: FaultInjector
    log: RequestLog


class RunningServer:
    """A `Site` served on 127.0.0.1 at a free port, in a daemon thread, until `stop()`."""

    def __init__(self, site: Site, name: str, port: int = 0) -> None:
        self._httpd = _HubHTTPServer(site, port)
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}"
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": _POLL_INTERVAL_S},
            name=name,
            daemon=True,
        )
        self._thread.start()
        logger.debug("%s listening on %s", name, self.url)

    def stop(self) -> None:
        """Stop accepting, close open keep-alive connections and release the port."""
        self._httpd.shutdown()
        self._httpd.close_connections()
        self._httpd.server_close()
        self._thread.join()


class _HubHTTPServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, site: Site, port: int = 0) -> None:
        super().__init__(("127.0.0.1", port), _Handler)
        self.site = site
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()

    def track(self, connection: socket.socket, *, is_open: bool) -> None:
        with self._connections_lock:
            (self._connections.add if is_open else self._connections.discard)(connection)

    def handle_error(self, request: object, client_address: tuple[str, int]) -> None:
        logger.debug("connection from %s failed: %r", client_address, sys.exc_info()[1])

    def close_connections(self) -> None:
        with self._connections_lock:
            for connection in self._connections:
                try:
                    connection.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass  # already closed by the peer


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = _IDLE_TIMEOUT_S
    server: _HubHTTPServer

    def setup(self) -> None:
        super().setup()
        # Headers and body go out in separate writes: without this, Nagle's algorithm and delayed ACKs add ~40 ms.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.server.track(self.connection, is_open=True)

    def finish(self) -> None:
        self.server.track(self.connection, is_open=False)
        super().finish()

    def do_GET(self) -> None:
        self._serve()

    def do_HEAD(self) -> None:
        self._serve()

    def log_message(self, format: str, *args: object) -> None:
        logger.debug("%s - %s", self.address_string(), format % args)

    def _serve(self) -> None:
        site = self.server.site
        raw_path, _, query = self.path.partition("?")
        path = unquote(raw_path)
        route = site.route(raw_path)
        fault = site.faults.draw(path)
        response = self._answer(route, query, fault)
        is_cut = fault is not None and fault.kind == "truncated" and self._can_truncate(response)
        subject = site.subject(route) if route else None
        # Log before answering: a client that has its answer must find the request in the log.
        site.log.append(
            RequestRecord(
                method=self.command,
                path=path,
                query=query,
                status=response.status,
                fault=fault.kind if fault and (fault.kind != "truncated" or is_cut) else None,
                repo_type=subject[0] if subject else None,
                repo_id=subject[1] if subject else None,
            )
        )
        self._send(response, is_cut=is_cut)

    def _answer(self, route: Route | None, query: str, fault: Fault | None) -> Response:
        if fault is not None and fault.kind in ERROR_KINDS:
            return fault.error_response()
        if fault is not None and fault.kind == "slow":
            time.sleep(fault.plan.slow_s)
        if route is None:
            return HubError(404, f"Not found: {self.path}").to_response()
        incoming = Incoming(
            self.command, route, query, self.headers.get("Authorization"), self.headers.get("Range")
        )
        try:
            return self.server.site.respond(incoming)
        except HubError as error:
            return error.to_response()
        except Exception:  # an answer must go out whatever broke: log it in full, answer 500
            logger.exception("local hub failed on %s %s", self.command, self.path)
            return HubError(500, "Internal error of the local hub").to_response()

    def _can_truncate(self, response: Response) -> bool:
        return self.command == "GET" and 200 <= response.status < 300 and len(response.body) > 1

    def _send(self, response: Response, *, is_cut: bool) -> None:
        """Write `response`; if `is_cut`, only half the body (JSON: a shorter complete answer; files: a broken one)."""
        body = response.body
        declared_length = len(body)
        if is_cut:
            body = body[: len(body) // 2]
            if not response.is_file:
                declared_length = len(body)
        try:
            self.send_response(response.status)
            for name, value in response.headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(declared_length))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            logger.debug("client went away during %s %s", self.command, self.path)
            self.close_connection = True
        if is_cut and response.is_file:  # the client sees a short body and a closed connection
            self.close_connection = True
