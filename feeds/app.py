"""The HTTP app: the feed documents on a lean ASGI path, the rest on Starlette.

    GET|HEAD /feeds/ID.{atom,rss,json}              first page of a curated feed
    GET|HEAD /feeds/ID/before/UID.{atom,rss,json}   an archive page (RFC 5005 paging)
    GET|HEAD /sources.opml  /feeds.opml             OPML 2.0 subscription lists
    GET|HEAD /search.{atom,rss,json}?q=Q[&before=UID]  a search as a feed (feeds.search)
    GET|HEAD /  /status.json  /healthz              status page (?q=&state=&page=) and the
                                                    same as JSON, health check (Starlette)
    GET|HEAD /search?q=Q                            the search page (Starlette)

Feed and OPML responses carry a strong ETag (hash of the body), Last-Modified (feeds: when
the document last changed, stored, so it moves with the ETag and is the same on every web
node), Cache-Control and Vary; If-None-Match, else If-Modified-Since, gets a 304 without a
body; gzip when the client accepts it. Documents come from the Publisher's cache, so a 200 or a
304 costs no database query while the feed's sources are unchanged.

While the database does not answer, feeds and the index page are the last good rendering
with an ``Age`` header (503 when there is none yet), and /healthz answers 503 with the reason;
it is 200 "ok" when the database answers a trivial query within HEALTH_TIMEOUT.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import parse_qs

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

from feeds.errors import UnknownFeedError
from feeds.model import SearchSettings
from feeds.pages import render_status_page
from feeds.publish import Document, Publisher
from feeds.render import EPOCH
from feeds.search import SearchFeeds, render_search_page
from feeds.status import ProcessInfo, StatusQuery, collect_status, status_json
from store.errors import DatabaseUnavailable
from store.search import QueryError

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

_FEED = re.compile(
    r"^/feeds/([a-z0-9][a-z0-9_-]{0,99})(?:/before/([0-9a-f]{1,64}))?\.(atom|rss|json)$"
)
_SEARCH = re.compile(r"^/search\.(atom|rss|json)$")
_UID = re.compile(r"^[0-9a-f]{1,64}$")
_TEXT = [(b"content-type", b"text/plain; charset=utf-8")]
HEALTH_TIMEOUT = 1.0  # seconds the database has to answer /healthz
INDEX_TIMEOUT = 5.0  # seconds the index page's reads may take before the last one is served
INDEX_PAGES_KEPT = 64  # status pages (by query string) kept to serve while the database is away
_VARY = (b"vary", b"accept-encoding")
_UNAVAILABLE = [(b"content-type", b"text/plain; charset=utf-8"), (b"retry-after", b"5")]
_GZIP = re.compile(r"(?:^|,)\s*gzip\s*(?:;\s*q\s*=\s*(0(?:\.0*)?|1(?:\.0*)?|0\.\d+))?\s*(?:,|$)")


class FeedApp:
    """ASGI: answers feed and OPML requests itself, passes everything else to Starlette."""

    def __init__(
        self,
        publisher: Publisher,
        fallback: Starlette,
        *,
        max_age: int,
        gzip: bool = True,
        search: SearchFeeds | None = None,
    ) -> None:
        self.publisher = publisher
        self.fallback = fallback
        self.cache_control = f"public, max-age={max_age}".encode()
        self.gzip = gzip
        self.search = search
        # Told the status and seconds of every feed and OPML answer (the service's metrics).
        self.observe: Callable[[int, float], None] | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] in ("GET", "HEAD"):
            started = time.perf_counter()
            search = _SEARCH.match(scope["path"])
            if search is not None and self.search is not None:
                status = await self._search(scope, send, self.search, search.group(1))
                self._observed(status, started)
                return
            try:
                document = await self._document(scope["path"])
            except DatabaseUnavailable as exc:
                head = scope["method"] == "HEAD"
                await _send(send, 503, list(_UNAVAILABLE), f"{exc}\n".encode(), head)
                self._observed(503, started)
                return
            if document is not None:
                status = await self._respond(scope, send, document)
                self._observed(status, started)
                return
            if _FEED.match(scope["path"]) or scope["path"] in ("/sources.opml", "/feeds.opml"):
                await _send(
                    send,
                    404,
                    _TEXT,
                    f"no curated feed at {scope['path']}".encode(),
                    scope["method"] == "HEAD",
                )
                self._observed(404, started)
                return
        await self.fallback(scope, receive, send)

    def _observed(self, status: int, started: float) -> None:
        if self.observe is not None:
            self.observe(status, time.perf_counter() - started)

    async def _document(self, path: str) -> Document | None:
        if path == "/feeds.opml":
            return self.publisher.feeds_opml()
        if path == "/sources.opml":
            return await self.publisher.sources_opml()
        match = _FEED.match(path)
        if match is None:
            return None
        feed_id, before, extension = match.groups()
        try:
            return await self.publisher.render(feed_id, extension, before)
        except UnknownFeedError:
            return None

    async def _search(self, scope: Scope, send: Send, search: SearchFeeds, extension: str) -> int:
        """A search feed; a missing or bad query is a 400 that says what is wrong."""
        params = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        text = params.get("q", [""])[0].strip()
        before = params.get("before", [None])[0]
        head = scope["method"] == "HEAD"
        problem = None
        if not text:
            problem = "add a search query: ?q=words"
        elif before is not None and not _UID.match(before):
            problem = "before= must be the id of an entry"
        else:
            try:
                document = await search.render(text, extension, before)
            except QueryError as exc:
                problem = str(exc)
            except DatabaseUnavailable as exc:
                await _send(send, 503, list(_UNAVAILABLE), f"{exc}\n".encode(), head)
                return 503
        if problem is not None:
            await _send(send, 400, _TEXT, f"bad search: {problem}\n".encode(), head)
            return 400
        return await self._respond(scope, send, document)

    async def _respond(self, scope: Scope, send: Send, document: Document) -> int:
        status, headers, body = self._answer(dict(scope["headers"]), document)
        await _send(send, status, headers, body, head=scope["method"] == "HEAD" or status == 304)
        return status

    def _answer(
        self, request: dict[bytes, bytes], document: Document
    ) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        """Status, headers (but Content-Length) and body of the answer with ``document``."""
        headers = [*document.validators, (b"cache-control", self.cache_control), _VARY]
        if document.age is not None:
            headers.append((b"age", str(document.age).encode()))
        if not_modified(request, document):
            return 304, headers, b""
        body = document.body
        if self.gzip and accepts_gzip(request.get(b"accept-encoding", b"")):
            body = document.gzip_body
            headers.append((b"content-encoding", b"gzip"))
        headers.append((b"content-type", document.media_type.encode()))
        return 200, headers, body

    def quick_answer(
        self, path: str, request: list[tuple[bytes, bytes]]
    ) -> tuple[int, list[tuple[bytes, bytes]], bytes] | None:
        """The answer to a GET of ``path`` when it is a feed document whose rendering is
        cached and known current, without waiting for anything (what the server's quick
        path sends, feedmill.quick); None for every other request (the app answers it).
        The answer's headers include Content-Length."""
        match = _FEED.match(path)
        if match is None:
            return None
        started = time.perf_counter()
        feed_id, before, extension = match.groups()
        document = self.publisher.cached(feed_id, extension, before)
        if document is None:
            return None
        status, headers, body = self._answer(dict(request), document)
        if status != 304:
            headers.append((b"content-length", str(len(body)).encode()))
        self._observed(status, started)
        return status, headers, body


async def _send(
    send: Send, status: int, headers: list[tuple[bytes, bytes]], body: bytes, head: bool
) -> None:
    if status != 304:
        headers = [*headers, (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": b"" if head else body})


def not_modified(request: dict[bytes, bytes], document: Document) -> bool:
    """RFC 9110 13.1.2/13.1.3: If-None-Match (weak comparison) wins over If-Modified-Since."""
    if_none_match = request.get(b"if-none-match")
    if if_none_match is not None:
        tags = [t.strip().removeprefix("W/") for t in if_none_match.decode("latin-1").split(",")]
        return "*" in tags or document.etag in tags
    since = request.get(b"if-modified-since")
    if since is None or document.updated <= EPOCH:
        return False
    try:
        moment = parsedate_to_datetime(since.decode("latin-1"))
    except (TypeError, ValueError):
        return False
    if moment.tzinfo is None:
        return False
    return document.updated.replace(microsecond=0) <= moment


def accepts_gzip(accept_encoding: bytes) -> bool:
    match = _GZIP.search(accept_encoding.decode("latin-1").lower())
    return match is not None and (match.group(1) is None or float(match.group(1)) > 0)


def create_app(
    publisher: Publisher,
    *,
    max_age: int = 300,
    gzip: bool = True,
    search: SearchSettings | None = None,
    process: Callable[[], ProcessInfo] | None = None,
    routes: Sequence[BaseRoute] = (),
) -> FeedApp:
    """The app; ``search``: the public search's settings (default: served, default limits);
    ``process`` tells the status page about the process serving it; ``routes`` are served
    too (the service's /metrics). While the database does not answer, the index page is the
    last good one (by its query string) with an ``Age`` header."""
    search = search or SearchSettings()
    searches = SearchFeeds(publisher, search) if search.public else None
    started = ProcessInfo(version="", role="serve", started_at=publisher.clock())
    describe = process or (lambda: started)
    last_pages: dict[str, tuple[str, float]] = {}  # query string -> last good page, when

    async def status_page(query: StatusQuery) -> str:
        report = await collect_status(publisher, describe(), publisher.clock(), query)
        stories = await publisher.store.recent_stories(10)
        definitions = list(publisher.definitions.values())
        return render_status_page(
            publisher.site, definitions, report, stories, search=searches is not None
        )

    async def index(request: Request) -> Response:
        query = StatusQuery.from_params(request.query_params)
        key = str(request.query_params)
        try:
            page = await asyncio.wait_for(status_page(query), INDEX_TIMEOUT)
        except (DatabaseUnavailable, TimeoutError) as exc:
            if key not in last_pages:
                reason = str(exc) or "the database did not answer"
                return PlainTextResponse(reason, 503, headers={"retry-after": "5"})
            page, at = last_pages[key]
            return HTMLResponse(page, headers={"age": str(int(time.monotonic() - at))})
        if key in last_pages or len(last_pages) < INDEX_PAGES_KEPT:
            last_pages[key] = (page, time.monotonic())
        return HTMLResponse(page)

    async def status(request: Request) -> Response:
        query = StatusQuery.from_params(request.query_params)
        try:
            report = await asyncio.wait_for(
                collect_status(publisher, describe(), publisher.clock(), query), INDEX_TIMEOUT
            )
        except (DatabaseUnavailable, TimeoutError) as exc:
            reason = str(exc) or "the database did not answer"
            return PlainTextResponse(reason, 503, headers={"retry-after": "5"})
        return JSONResponse(status_json(report))

    async def search_page(request: Request) -> Response:
        assert searches is not None
        text = request.query_params.get("q", "").strip()
        before = request.query_params.get("before")
        titles = {i.id: i.title for i in (await publisher.source_infos()).values()}
        if not text:
            return HTMLResponse(render_search_page(publisher.site, "", None, titles))
        try:
            page = await searches.page(text, before if before and _UID.match(before) else None)
        except QueryError as exc:
            body = render_search_page(publisher.site, text, None, titles, str(exc))
            return HTMLResponse(body, status_code=400)
        except DatabaseUnavailable as exc:
            return PlainTextResponse(str(exc), 503, headers={"retry-after": "5"})
        return HTMLResponse(render_search_page(publisher.site, text, page, titles))

    async def health(request: Request) -> Response:
        try:
            await asyncio.wait_for(publisher.store.ping(), HEALTH_TIMEOUT)
        except DatabaseUnavailable as exc:
            return PlainTextResponse(str(exc), 503)
        except TimeoutError:
            return PlainTextResponse(f"the database did not answer within {HEALTH_TIMEOUT:g}s", 503)
        return PlainTextResponse("ok")

    starlette = Starlette(
        routes=[
            Route("/", index, methods=["GET", "HEAD"]),
            Route("/status.json", status, methods=["GET", "HEAD"]),
            Route("/healthz", health, methods=["GET", "HEAD"]),
            *([Route("/search", search_page, methods=["GET", "HEAD"])] if searches else []),
            *routes,
        ]
    )
    return FeedApp(publisher, starlette, max_age=max_age, gzip=gzip, search=searches)
