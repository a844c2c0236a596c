"""The curated feeds of one feedmill: select from the store, render, describe.

Both the HTTP app and the static export call this, so they give the same bytes.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import aclosing

from feeds.errors import UnknownFeedError
from feeds.model import FeedDefinition, RenderedFeed, Site, SourceInfo
from feeds.render import render_atom
from feeds.select import Selector
from store.model import StoredEntry, StoredSource
from store.store import Store


class Publisher:
    def __init__(self, store: Store, definitions: Sequence[FeedDefinition], site: Site) -> None:
        self.store = store
        self.site = site
        self.definitions = {d.id: d for d in definitions}
        self._selectors = {d.id: Selector(d) for d in definitions}

    def definition(self, feed_id: str) -> FeedDefinition:
        try:
            return self.definitions[feed_id]
        except KeyError:
            raise UnknownFeedError(feed_id) from None

    async def select(self, feed_id: str) -> list[StoredEntry]:
        """The entries the feed carries now, newest first."""
        definition = self.definition(feed_id)
        selector = self._selectors[feed_id]
        chosen: list[StoredEntry] = []
        pages = self.store.newest_entries(definition.source_ids)
        async with aclosing(pages):
            async for page in pages:
                chosen += selector.select(page, room=definition.limit - len(chosen))
                if len(chosen) >= definition.limit:
                    break
        return chosen

    async def render_atom(self, feed_id: str) -> RenderedFeed:
        definition = self.definition(feed_id)
        entries = await self.select(feed_id)
        return render_atom(definition, entries, await self.source_infos(), self.site)

    async def source_infos(self) -> dict[str, SourceInfo]:
        return {s.id: source_info(s) for s in await self.store.list_sources(active_only=False)}


def source_info(source: StoredSource) -> SourceInfo:
    return SourceInfo(
        id=source.id, title=source.display_title, url=source.url, link=source.feed_link
    )
