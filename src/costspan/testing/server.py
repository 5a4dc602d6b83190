"""A real HTTP server on 127.0.0.1 that answers like the OpenAI and Anthropic APIs, one Reply at a time."""

from __future__ import annotations

import contextlib
import json
import re
import select
import socket
import socketserver
import sys
import threading
import time
from collections import deque
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, TypeVar
from urllib.parse import parse_qsl, urlsplit

from . import anthropic_wire, bedrock_wire, gemini_wire, openai_wire
from .reply import Reply
from .wire import Frame, JsonResponse, RecordedRequest, Response, Route, StreamResponse

__all__ = ["ProviderServer"]

_ROUTES = (*openai_wire.ROUTES, *anthropic_wire.ROUTES, *gemini_wire.ROUTES, *bedrock_wire.ROUTES)
_WATCH_INTERVAL = 0.02  # seconds between looks at a waiting client (and at stop())
_Self = TypeVar("_Self", bound="ProviderServer")


class ProviderServer:
    """Serves the providers' wire formats on a free loopback port from a daemon thread.

    Each request takes the next pushed `Reply` (or a default one) and is recorded in `requests`.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._replies: deque[Reply] = deque()
        self._requests: list[RecordedRequest] = []
        self._hangups: list[RecordedRequest] = []
        self._http: _HTTPServer | None = None
        self._thread: threading.Thread | None = None

    def __enter__(self: _Self) -> _Self:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def start(self) -> None:
        if self._http is not None:
            raise RuntimeError("ProviderServer is already running")
        self._http = _HTTPServer(self)
        self._thread = threading.Thread(
            target=self._http.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="costspan-provider",
            daemon=True,
        )
        self._thread.start()

    def stop(self) -> None:
        if self._http is None or self._thread is None:
            return
        self._http.shutdown()
        self._http.close_all()
        self._thread.join()
        self._http = self._thread = None

    @property
    def url(self) -> str:
        if self._http is None:
            raise RuntimeError("ProviderServer is not running: use start() or a with block")
        return f"http://127.0.0.1:{self._http.server_address[1]}"

    @property
    def openai_base_url(self) -> str:
        return f"{self.url}/v1"

    @property
    def anthropic_base_url(self) -> str:
        return self.url

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._requests)

    @property
    def hangups(self) -> list[RecordedRequest]:
        """The requests whose streamed answer the client closed before its end."""
        with self._lock:
            return list(self._hangups)

    def push(self, *replies: Reply) -> None:
        with self._lock:
            self._replies.extend(replies)

    def reset(self) -> None:
        with self._lock:
            self._replies.clear()
            self._requests.clear()
            self._hangups.clear()

    def _hung_up(self, request: RecordedRequest) -> None:
        with self._lock:
            self._hangups.append(request)

    def _answer(self, request: RecordedRequest) -> tuple[Reply, Response]:
        """Records the request and plans its answer; an unknown path takes no Reply from the queue."""
        found = _route(request)
        with self._lock:
            self._requests.append(request)
            if found is None:
                return Reply(), _not_found(request)
            reply = self._replies.popleft() if self._replies else Reply()
        route, match = found
        if reply.status != 200:
            return reply, route.fail(reply)
        response = route.handle(request, reply, match)
        if reply.body is not None and isinstance(response, JsonResponse):
            response = replace(response, body=reply.body(response.body))
        return reply, response


def _route(request: RecordedRequest) -> tuple[Route, re.Match[str]] | None:
    if request.method != "POST":
        return None
    for route in _ROUTES:
        match = route.pattern.match(request.path)
        if match:
            return route, match
    return None


def _not_found(request: RecordedRequest) -> JsonResponse:
    if anthropic_wire.is_anthropic(request):
        return anthropic_wire.not_found(request)
    return openai_wire.not_found(request)


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    # Hundreds of concurrent clients connect at once in load tests; socketserver's default backlog is 5.
    request_queue_size = 1024

    def __init__(self, owner: ProviderServer) -> None:
        self.owner = owner
        self.stopping = threading.Event()
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(("127.0.0.1", 0), _Handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind resolves the host name (socket.getfqdn), which may leave the machine.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = "127.0.0.1", self.server_address[1]

    def track(self, connection: socket.socket, alive: bool) -> None:
        with self._connections_lock:
            (self._connections.add if alive else self._connections.discard)(connection)

    def close_all(self) -> None:
        """Stops the listener and ends kept-alive and sleeping connections: no handler outlives the server."""
        self.stopping.set()
        self.server_close()
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            _abort(connection)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that hung up (timeouts, dropped streams, stop()) is part of the script, not a server fault.
        if not isinstance(sys.exc_info()[1], OSError):
            super().handle_error(request, client_address)


def _abort(connection: socket.socket) -> None:
    with contextlib.suppress(OSError):
        connection.shutdown(socket.SHUT_RDWR)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in separate writes: with Nagle's algorithm the body waits for the client's delayed
    # ACK of the headers (40 ms on Linux loopback), on every answer.
    disable_nagle_algorithm = True
    server: _HTTPServer

    def setup(self) -> None:
        super().setup()
        self.server.track(self.connection, alive=True)

    def finish(self) -> None:
        self.server.track(self.connection, alive=False)
        super().finish()

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: test output is no place for an access log."""

    def do_POST(self) -> None:
        request = self._read()
        reply, response = self.server.owner._answer(request)
        self._pause(reply.delay)
        if not isinstance(response, StreamResponse):
            self._json(response)
            return
        try:
            self._stream(response, reply)
        except OSError:
            if not self.server.stopping.is_set() and reply.drop_after is None:
                self.server.owner._hung_up(request)
            raise

    do_GET = do_PUT = do_PATCH = do_DELETE = do_POST

    def _read(self) -> RecordedRequest:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        url = urlsplit(self.path)
        headers = {name.lower(): value for name, value in self.headers.items()}
        return RecordedRequest(self.command, url.path, dict(parse_qsl(url.query)), headers, body)

    def _pause(self, seconds: float) -> None:
        """Wait, watching the client: one that hangs up meanwhile is seen at once (ConnectionResetError), not
        when a later write fails, which with a slow script may be seconds later (the first write after a close
        still succeeds)."""
        deadline = time.monotonic() + seconds
        watching = True
        while (left := deadline - time.monotonic()) > 0:
            if self.server.stopping.is_set():
                # An OSError, so handle_error treats it like the hang-up that stop() is about to cause anyway.
                raise ConnectionAbortedError("the provider server stopped before answering")
            if not watching:
                self.server.stopping.wait(min(left, _WATCH_INTERVAL))
                continue
            readable, _, _ = select.select([self.connection], [], [], min(left, _WATCH_INTERVAL))
            if readable:
                # Nothing is due from the client before the answer ends: no data means it closed; data (a
                # request sent ahead) is left for later, and the rest of the pause is waited out.
                if not self.connection.recv(1, socket.MSG_PEEK):
                    raise ConnectionResetError("the client closed the connection")
                watching = False

    def _json(self, response: JsonResponse) -> None:
        data = json.dumps(response.body).encode()
        self.send_response(response.status)
        self._headers({"Content-Type": "application/json", "Content-Length": str(len(data))}, response.headers)
        self.wfile.write(data)

    def _stream(self, response: StreamResponse, reply: Reply) -> None:
        # Chunked encoding keeps the connection reusable, and a body cut before its last chunk is an error
        # every HTTP client reports, which is what drop_after needs.
        self.send_response(200)
        framing = {"Content-Type": response.content_type, "Transfer-Encoding": "chunked", "Cache-Control": "no-cache"}
        self._headers(framing, response.headers)
        frames = response.frames
        cut = len(frames) if reply.drop_after is None else _drop_point(frames, reply.drop_after)
        for index, frame in enumerate(frames[:cut]):
            self._pause(reply.first_chunk_delay if index == 0 else reply.chunk_delay)
            self.wfile.write(b"%x\r\n%s\r\n" % (len(frame.data), frame.data))
        if reply.drop_after is not None:
            self.close_connection = True
            _abort(self.connection)
            return
        self.wfile.write(b"0\r\n\r\n")

    def _headers(self, framing: dict[str, str], extra: dict[str, str]) -> None:
        """Sends the body's framing headers, and every other header except one that would contradict them."""
        framed = {name.lower() for name in framing}
        for name, value in [*framing.items(), *((n, v) for n, v in extra.items() if n.lower() not in framed)]:
            self.send_header(name, value)
        self.end_headers()


def _drop_point(frames: list[Frame], drop_after: int) -> int:
    """How many frames go out before the connection is cut: those up to the `drop_after`-th content delta
    (none when the stream has no content deltas)."""
    deltas = [index for index, frame in enumerate(frames) if frame.is_delta]
    if not deltas:
        return 0
    if drop_after == 0:
        return deltas[0]
    return deltas[min(drop_after, len(deltas)) - 1] + 1
