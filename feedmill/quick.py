"""The server's quick path: a feed document that is cached and known current is answered as
soon as its request's headers are parsed, without the ASGI round (a task, a scope, two sends
through uvicorn's checks), which costs more than the answer itself.

    request headers parsed (uvicorn's httptools protocol)
      GET or HEAD, no query, nothing else in flight on the connection, the app's
      FeedApp.quick_answer(path, headers) has an answer (the Publisher's cached rendering,
      known current without a read)?
          -> status line, uvicorn's default headers (date, server), the answer; keep-alive
             as uvicorn keeps it
      else -> uvicorn as usual (the ASGI app answers: renders, 404s, the status page...)

The answers are the app's own (headers and body from FeedApp._answer), so the bytes are the
same either way; the tests compare them.
"""

from __future__ import annotations

from typing import Any

from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from feeds.app import FeedApp


class QuickProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with the quick path for cached feed documents."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._quick_app = self.app if isinstance(self.app, FeedApp) else None
        self._answered = False  # the request being parsed was answered quickly

    def on_headers_complete(self) -> None:
        if not self._answer_quickly():
            super().on_headers_complete()

    def on_body(self, body: bytes) -> None:
        if not self._answered:
            super().on_body(body)

    def on_message_complete(self) -> None:
        if not self._answered:
            super().on_message_complete()
            return
        self._answered = False
        self.server_state.total_requests += 1
        if self.transport.is_closing():
            return
        self._unset_keepalive_if_required()
        self.timeout_keep_alive_task = self.loop.call_later(
            self.timeout_keep_alive, self.timeout_keep_alive_handler
        )

    def _answer_quickly(self) -> bool:
        parser = self.parser
        method = parser.get_method()
        if (
            self._quick_app is None
            or method not in (b"GET", b"HEAD")
            or b"?" in self.url
            or b"%" in self.url
            or (self.cycle is not None and not self.cycle.response_complete)
            or self.pipeline
            or self.flow.write_paused
            or parser.should_upgrade()
        ):
            return False
        answer = self._quick_app.quick_answer(self.url.decode("ascii", "replace"), self.headers)
        if answer is None:
            return False
        status, headers, body = answer
        keep_alive = parser.get_http_version() == "1.1" and parser.should_keep_alive()
        lines = [STATUS_LINE[status]]
        for name, value in [*self.server_state.default_headers, *headers]:
            lines += [name, b": ", value, b"\r\n"]
        if not keep_alive:
            lines.append(b"connection: close\r\n")
        lines.append(b"\r\n")
        if method == b"GET":
            lines.append(body)
        self.transport.write(b"".join(lines))
        if not keep_alive:
            self.transport.close()
        self._answered = True
        return True
