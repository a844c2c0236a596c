"""The HTTP app (Starlette): ``GET /`` and ``GET /feeds/{id}.atom``."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, Response
from starlette.routing import Route

from feeds.errors import UnknownFeedError
from feeds.pages import render_index
from feeds.publish import Publisher


def create_app(publisher: Publisher) -> Starlette:
    async def index(request: Request) -> Response:
        sources = await publisher.store.list_sources()
        counts = await publisher.store.count_entries()
        page = render_index(publisher.site, list(publisher.definitions.values()), sources, counts)
        return HTMLResponse(page)

    async def atom_feed(request: Request) -> Response:
        try:
            rendered = await publisher.render_atom(request.path_params["feed_id"])
        except UnknownFeedError as exc:
            return PlainTextResponse(str(exc), status_code=404)
        return Response(rendered.body, media_type=rendered.media_type)

    async def health(request: Request) -> Response:
        return PlainTextResponse("ok")

    return Starlette(
        routes=[
            Route("/", index, methods=["GET", "HEAD"]),
            Route("/feeds/{feed_id}.atom", atom_feed, methods=["GET", "HEAD"]),
            Route("/healthz", health, methods=["GET", "HEAD"]),
        ]
    )
