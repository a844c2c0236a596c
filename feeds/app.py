"""The HTTP app: the feed documents on a lean ASGI path, the rest on Starlette.

    GET|HEAD /feeds/ID.{atom,rss,json}              first page of a curated feed
    GET|HEAD /feeds/ID/before/UID.{atom,rss,json}   an archive page (RFC 5005 paging)
    GET|HEAD /sources.opml  /feeds.opml             OPML 2.0 subscription lists
    GET|HEAD /search.{atom,rss,json}?q=Q[&before=UID]  a search as a feed (feeds.search)
    GET|HEAD /  /healthz  /search?q=Q               index page, health check, search page

Feed and OPML responses carry a strong ETag (hash of the body), Last-Modified (the newest
entry), Cache-Control and Vary; If-None-Match / If-Modified-Since get a 304 without a body;
gzip when the client accepts it. Documents come from the Publisher's cache, so a 200 or a
304 costs no database query while the feed's sources are unchanged.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, MutableMapping
from datetime import datetime
from email.utils import format_datetime, parsedate_to_datetime
from typing import Any
from urllib.parse import parse_qs

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, Response
from starlette.routing import Route

from feeds.errors import UnknownFeedError
from feeds.model import SearchSettings
from feeds.pages import render_index
from feeds.publish import Document, Publisher
from feeds.render import EPOCH
from feeds.search import SearchFeeds, render_search_page
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

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] in ("GET", "HEAD"):
            search = _SEARCH.match(scope["path"])
            if search is not None and self.search is not None:
                await self._search(scope, send, self.search, search.group(1))
                return
            document = await self._document(scope["path"])
            if document is not None:
                await self._respond(scope, send, document)
                return
            if _FEED.match(scope["path"]) or scope["path"] in ("/sources.opml", "/feeds.opml"):
                await _send(
                    send,
                    404,
                    _TEXT,
                    f"no curated feed at {scope['path']}".encode(),
                    scope["method"] == "HEAD",
                )
                return
        await self.fallback(scope, receive, send)

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

    async def _search(self, scope: Scope, send: Send, search: SearchFeeds, extension: str) -> None:
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
        if problem is not None:
            await _send(send, 400, _TEXT, f"bad search: {problem}\n".encode(), head)
            return
        await self._respond(scope, send, document)

    async def _respond(self, scope: Scope, send: Send, document: Document) -> None:
        request = dict(scope["headers"])
        headers = [
            (b"etag", document.etag.encode()),
            (b"cache-control", self.cache_control),
            (b"vary", b"accept-encoding"),
        ]
        if document.updated > EPOCH:
            headers.append((b"last-modified", http_date(document.updated).encode()))
        if not_modified(request, document):
            await _send(send, 304, headers, b"", head=True)
            return
        body = document.body
        if self.gzip and accepts_gzip(request.get(b"accept-encoding", b"")):
            body = document.gzip_body
            headers.append((b"content-encoding", b"gzip"))
        headers.append((b"content-type", document.media_type.encode()))
        await _send(send, 200, headers, body, head=scope["method"] == "HEAD")


async def _send(
    send: Send, status: int, headers: list[tuple[bytes, bytes]], body: bytes, head: bool
) -> None:
    if status != 304:
        headers = [*headers, (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": b"" if head else body})


def http_date(moment: datetime) -> str:
    return format_datetime(moment.replace(microsecond=0), usegmt=True)


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
) -> FeedApp:
    """``search``: the public search's settings (default: served, default limits)."""
    search = search or SearchSettings()
    searches = SearchFeeds(publisher, search) if search.public else None

    async def index(request: Request) -> Response:
        sources = await publisher.store.list_sources()
        counts = await publisher.store.count_entries()
        stories = await publisher.store.recent_stories(10)
        page = render_index(
            publisher.site,
            list(publisher.definitions.values()),
            sources,
            counts,
            stories,
            search=searches is not None,
        )
        return HTMLResponse(page)

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
        return HTMLResponse(render_search_page(publisher.site, text, page, titles))

    async def health(request: Request) -> Response:
        return PlainTextResponse("ok")

    starlette = Starlette(
        routes=[
            Route("/", index, methods=["GET", "HEAD"]),
            Route("/healthz", health, methods=["GET", "HEAD"]),
            *([Route("/search", search_page, methods=["GET", "HEAD"])] if searches else []),
        ]
    )
    return FeedApp(publisher, starlette, max_age=max_age, gzip=gzip, search=searches)
