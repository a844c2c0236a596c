"""A loopback HTTP upstream for tests: scripted responses, recorded requests.

    with Upstream() as upstream:
        upstream.add("/a.rss", body, content_type="application/rss+xml", etag='"v1"')
        url = upstream.url("/a.rss")
        ...
        assert upstream.requests_for("/a.rss")[1].headers["If-None-Match"] == '"v1"'

It runs a stdlib ThreadingHTTPServer on 127.0.0.1 with an ephemeral port. A route with an
``etag`` or ``last_modified`` answers 304 to a matching conditional request, as servers do.
"""

from __future__ import annotations

import sys
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType


@dataclass
class Route:
    body: bytes = b""
    status: int = 200
    content_type: str | None = "application/xml"
    headers: dict[str, str] = field(default_factory=dict)
    etag: str | None = None
    last_modified: str | None = None
    drip: float | None = None  # send the body one byte at a time, this many seconds apart

    hold: threading.Event | None = None  # when set: answer only once the event is set


class Headers(dict[str, str]):
    """Request headers, looked up case-insensitively as HTTP means them."""

    def __init__(self, items: list[tuple[str, str]]) -> None:
        super().__init__((name.lower(), value) for name, value in items)

    def __getitem__(self, name: str) -> str:
        return super().__getitem__(name.lower())

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and super().__contains__(name.lower())

    def get(self, name: str, default: str | None = None) -> str | None:  # type: ignore[override]
        return super().get(name.lower(), default)


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    headers: Headers


class Upstream:
    def __init__(self) -> None:
        self.routes: dict[str, Route] = {}
        self.requests: list[RecordedRequest] = []
        self.most_in_flight: dict[str, int] = {}  # Host header -> most requests at once
        self._in_flight: dict[str, int] = {}
        self._seen = threading.Condition()
        self._stopping = threading.Event()
        self._server = _QuietServer(("127.0.0.1", 0), _handler_for(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True
        )

    def __enter__(self) -> Upstream:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stopping.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def url(self, path: str) -> str:
        return self.base_url + path

    def add(self, path: str, body: bytes | str = b"", **options: object) -> str:
        data = body.encode("utf-8") if isinstance(body, str) else body
        self.routes[path] = Route(body=data, **options)  # type: ignore[arg-type]
        return self.url(path)

    def counts(self) -> dict[str, int]:
        """Requests per path so far."""
        with self._seen:
            counted: dict[str, int] = {}
            for request in self.requests:
                counted[request.path] = counted.get(request.path, 0) + 1
            return counted

    def requests_for(self, path: str) -> list[RecordedRequest]:
        with self._seen:
            return [r for r in self.requests if r.path == path]

    def wait_for_requests(self, count: int, timeout: float = 30.0) -> bool:
        """Block until ``count`` requests in all have arrived (False on timeout)."""
        with self._seen:
            return self._seen.wait_for(lambda: len(self.requests) >= count, timeout)

    def wait_for_path(self, path: str, count: int, timeout: float = 30.0) -> bool:
        """Block until ``count`` requests for ``path`` have arrived (False on timeout)."""
        with self._seen:
            return self._seen.wait_for(lambda: len(self.requests_for(path)) >= count, timeout)

    def _record(self, request: RecordedRequest) -> None:
        with self._seen:
            self.requests.append(request)
            self._seen.notify_all()

    def _enter(self, host: str) -> None:
        with self._seen:
            self._in_flight[host] = self._in_flight.get(host, 0) + 1
            self.most_in_flight[host] = max(self.most_in_flight.get(host, 0), self._in_flight[host])

    def _leave(self, host: str) -> None:
        with self._seen:
            self._in_flight[host] -= 1


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request: object, client_address: object) -> None:
        """A client that hangs up mid-body (a fetch cut off on purpose) is not a failure."""
        exc = sys.exc_info()[1]
        if not isinstance(exc, ConnectionError):
            super().handle_error(request, client_address)  # type: ignore[arg-type]


def _handler_for(upstream: Upstream) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            host = self.headers.get("Host", "")
            upstream._enter(host)
            try:
                self._respond()
            finally:
                upstream._leave(host)

        def _respond(self) -> None:
            path = self.path
            upstream._record(RecordedRequest("GET", path, Headers(list(self.headers.items()))))
            route = upstream.routes.get(path)
            if route is not None and route.hold is not None:
                route.hold.wait()
            if route is None:
                self._send(404, {"Content-Type": "text/plain"}, b"not found")
                return
            headers = dict(route.headers)
            if route.content_type:
                headers["Content-Type"] = route.content_type
            if route.etag:
                headers["ETag"] = route.etag
            if route.last_modified:
                headers["Last-Modified"] = route.last_modified
            if self._not_modified(route):
                headers.pop("Content-Type", None)
                self._send(304, headers, b"")
                return
            self._send(route.status, headers, route.body, route.drip)

        def _not_modified(self, route: Route) -> bool:
            if route.status != 200:
                return False
            if route.etag and self.headers.get("If-None-Match") == route.etag:
                return True
            since = self.headers.get("If-Modified-Since")
            return bool(route.last_modified and since == route.last_modified)

        def _send(
            self, status: int, headers: dict[str, str], body: bytes, drip: float | None = None
        ) -> None:
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            if status != 304:
                self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if status == 304:
                return
            if drip is None:
                self.wfile.write(body)
                return
            for index in range(len(body)):  # a server that drips: the client must cut it off
                self.wfile.write(body[index : index + 1])
                self.wfile.flush()
                upstream._stopping.wait(drip)
                if upstream._stopping.is_set():
                    return

        def log_message(self, format: str, *args: object) -> None:
            pass

    return Handler
