"""The curated feeds of one feedmill: select from the store, render, cache, describe.

    request for feed F, format X, page P
      versions = store.source_versions()     at most once per `recheck` (or after invalidate())
      stamp = versions of F's sources (+ the minute, if F has max_age)
      cached (F, X, P) with the same stamp?  -> serve it (no other query)
      else select P's entries (rules at read time), render X, hash -> ETag, gzip; cache

Both the HTTP app and the static export call this, so they give the same bytes.
"""

from __future__ import annotations

import gzip
import hashlib
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from contextlib import aclosing
from dataclasses import dataclass, field
from datetime import datetime

from feeds.errors import UnknownFeedError
from feeds.formats import render_json_feed, render_rss
from feeds.model import FeedDefinition, PageLinks, RenderedFeed, Site, SourceInfo
from feeds.opml import OPML_MEDIA_TYPE, render_feeds_opml, render_sources_opml
from feeds.render import EPOCH, render_atom
from feeds.select import Selector, Verdict
from feeds.stories import (
    Group,
    ShownStory,
    collapse_entry,
    link_groups,
    pick_representative,
)
from store.model import StoredEntry, StoredSource
from store.store import Store

RENDERERS = {"atom": render_atom, "rss": render_rss, "json": render_json_feed}
CACHE_SIZE = 512  # rendered documents kept (feeds x formats x recently asked pages)


@dataclass(frozen=True, slots=True)
class Page:
    """One page of a curated feed: its entries, newest first, and the cursor of the next."""

    definition: FeedDefinition
    entries: list[StoredEntry]
    before: str | None
    next_before: str | None
    # Issue 5, feeds with `dedupe`: how each entry (by uid) is shown, and whom it credits.
    stories: Mapping[str, ShownStory] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Document:
    """A rendered document ready for HTTP: strong ETag of the body, gzip body, dates."""

    body: bytes
    gzip_body: bytes
    media_type: str
    etag: str
    updated: datetime


def make_document(body: bytes, media_type: str, updated: datetime) -> Document:
    etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
    compressed = gzip.compress(body, compresslevel=6, mtime=0)  # mtime 0: same bytes each time
    return Document(body, compressed, media_type, etag, updated)


class Publisher:
    def __init__(
        self,
        store: Store,
        definitions: Sequence[FeedDefinition],
        site: Site,
        *,
        clock: Callable[[], datetime],
        hub: str | None = None,
        recheck: float = 1.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self.site = site
        self.clock = clock
        self.hub = hub
        self.definitions = {d.id: d for d in definitions}
        self._selectors = {d.id: Selector(d) for d in definitions}
        self._recheck = recheck
        self._monotonic = monotonic
        self._versions: dict[str, int] = {}
        self._versions_read_at: float | None = None
        self._cache: OrderedDict[tuple[str, str, str | None], tuple[object, Document]] = (
            OrderedDict()
        )
        self._announced: dict[str, str] = {}
        self.renders = 0  # documents rendered (cache misses): tests and /metrics read it

    def definition(self, feed_id: str) -> FeedDefinition:
        try:
            return self.definitions[feed_id]
        except KeyError:
            raise UnknownFeedError(feed_id) from None

    def invalidate(self) -> None:
        """Read the versions again on the next request (call after this process ingests)."""
        self._versions_read_at = None

    async def select(self, feed_id: str) -> list[StoredEntry]:
        """The entries the feed carries now, newest first."""
        return (await self.select_page(feed_id)).entries

    async def select_page(self, feed_id: str, before: str | None = None) -> Page:
        """The feed's first page, or with ``before`` the archive page of the entries that
        pass the rules and come after the entry ``before`` in newest-first order."""
        definition = self.definition(feed_id)
        selector = self._selectors[feed_id]
        selector.source_titles = {i.id: i.title for i in (await self.source_infos()).values()}
        now, room = self.clock(), definition.limit + 1  # one more tells if there is a next page
        chosen: list[StoredEntry] = []
        if before is None:
            pages = self.store.newest_entries(definition.source_ids)
        else:
            pages = self.store.entries_before(definition.source_ids, before)
        shown: dict[str, ShownStory] = {}
        async with aclosing(pages):
            async for batch in pages:
                if definition.dedupe == "none":
                    chosen += selector.select(batch, room=room - len(chosen), now=now)
                else:
                    chosen += await self._collapse(selector, batch, room - len(chosen), shown)
                if len(chosen) >= room:
                    break
        entries = chosen[: definition.limit]
        next_before = entries[-1].uid if len(chosen) > definition.limit else None
        return Page(definition, entries, before, next_before, shown)

    async def _collapse(
        self, selector: Selector, batch: list[StoredEntry], room: int, shown: dict[str, ShownStory]
    ) -> list[StoredEntry]:
        """The entries of ``batch`` the feed carries that represent their story (or canonical
        link), at most ``room``; ``shown`` gets how each is shown."""
        now = self.clock()
        passing = [e for e in batch if selector.judge(e, now).included]
        groups = await self.groups(selector.definition, passing)
        prefer = selector.definition.prefer
        chosen = []
        for entry in passing:
            story = collapse_entry(
                entry, groups.get(entry.uid), lambda m: selector.judge(m, now).included, prefer
            )
            if story is not None:
                shown[entry.uid] = story
                chosen.append(entry)
                if len(chosen) >= room:
                    break
        return chosen

    async def groups(
        self, definition: FeedDefinition, entries: Sequence[StoredEntry]
    ) -> dict[str, Group]:
        """Each entry's story (``dedupe: story``) or canonical-link group (``link``)."""
        if definition.dedupe == "story":
            return await self.store.story_groups([e.uid for e in entries])
        links = [e.canonical_link for e in entries if e.canonical_link]
        if definition.dedupe != "link" or not links:
            return {}
        by_link = await self.store.link_groups(links)
        found: dict[str, Group] = {}
        for entry in entries:
            members = by_link.get(entry.canonical_link or "")
            group = link_groups(members).get(entry.uid) if members else None
            if group is not None:
                found[entry.uid] = group
        return found

    async def explain(
        self, feed_id: str, candidates: int = 200
    ) -> list[tuple[StoredEntry, Verdict]]:
        """The verdict on each of the newest ``candidates`` entries of the feed's sources,
        stopping early once the feed is full: what ``feedmill preview --why`` prints."""
        definition = self.definition(feed_id)
        selector = self._selectors[feed_id]
        selector.source_titles = {i.id: i.title for i in (await self.source_infos()).values()}
        judged: list[tuple[StoredEntry, Verdict]] = []
        kept, now = 0, self.clock()
        pages = self.store.newest_entries(definition.source_ids)
        async with aclosing(pages):
            async for batch in pages:
                for entry in batch:
                    if kept >= definition.limit or len(judged) >= candidates:
                        return judged
                    verdict = selector.judge(entry, now)
                    if verdict.included and definition.dedupe != "none":
                        verdict = await self.verdict(feed_id, entry)
                    kept += verdict.included
                    judged.append((entry, verdict))
        return judged

    async def verdict(self, feed_id: str, entry: StoredEntry) -> Verdict:
        """Whether the feed carries ``entry`` and why, its ``dedupe`` included (explain)."""
        definition, selector = self.definition(feed_id), self._selectors[feed_id]
        selector.source_titles = {i.id: i.title for i in (await self.source_infos()).values()}
        now = self.clock()
        verdict = selector.judge(entry, now)
        if not verdict.included or definition.dedupe == "none":
            return verdict
        group = (await self.groups(definition, [entry])).get(entry.uid)
        if group is None:
            return verdict

        def carries(m: StoredEntry) -> bool:
            return selector.judge(m, now).included

        what = "story" if definition.dedupe == "story" else "link group"
        shown = collapse_entry(entry, group, carries, definition.prefer)
        if shown is None:
            eligible = [m for m in group[1] if m.uid == entry.uid or carries(m)]
            chosen = pick_representative(eligible, definition.prefer)
            return Verdict(
                False,
                f"{verdict.reason}, but {chosen.source_id}'s entry {chosen.uid} represents "
                f"its {what} {group[0]} (dedupe: {definition.dedupe})",
            )
        return Verdict(
            True,
            f"{verdict.reason}; represents its {what} {group[0]}, crediting "
            f"{len(shown.others)} other entries",
        )

    async def render(self, feed_id: str, extension: str, before: str | None = None) -> Document:
        """The document for ``feeds/ID.EXT`` (or an archive page), from the cache when none
        of the feed's sources changed since it was rendered."""
        definition = self.definition(feed_id)
        if extension not in RENDERERS:
            raise UnknownFeedError(f"{feed_id}.{extension}")
        stamp = await self._stamp(definition)
        key = (feed_id, extension, before)
        cached = self._cache.get(key)
        if cached is not None and cached[0] == stamp:
            self._cache.move_to_end(key)
            return cached[1]
        document = await self._render(definition, extension, before)
        self._cache[key] = (stamp, document)
        self._cache.move_to_end(key)
        while len(self._cache) > CACHE_SIZE:
            self._cache.popitem(last=False)
        return document

    async def _render(
        self, definition: FeedDefinition, extension: str, before: str | None
    ) -> Document:
        page = await self.select_page(definition.id, before)
        links = PageLinks(
            self_url=self.site.page_url(definition.id, extension, before),
            first_url=self.site.feed_url(definition.id, extension),
            next_url=(
                self.site.page_url(definition.id, extension, page.next_before)
                if page.next_before
                else None
            ),
            hub=self.hub,
        )
        rendered: RenderedFeed = RENDERERS[extension](
            definition, page.entries, await self.source_infos(), self.site, links, page.stories
        )
        self.renders += 1
        return make_document(rendered.body, rendered.media_type, rendered.updated)

    async def _stamp(self, definition: FeedDefinition) -> object:
        now = self._monotonic()
        stale = self._versions_read_at is None or now - self._versions_read_at >= self._recheck
        if stale:
            self._versions = await self.store.source_versions()
            self._versions_read_at = now
        versions = tuple(self._versions.get(s, -1) for s in definition.source_ids)
        if definition.max_age is None:
            return versions
        # Entries age out of the feed as time passes: re-select at most once a minute.
        return versions, self.clock().replace(second=0, microsecond=0)

    async def render_atom(self, feed_id: str) -> Document:
        return await self.render(feed_id, "atom")

    async def sources_opml(self) -> Document:
        body = render_sources_opml(self.site, await self.store.list_sources())
        return make_document(body, OPML_MEDIA_TYPE, EPOCH)

    def feeds_opml(self) -> Document:
        body = render_feeds_opml(self.site, list(self.definitions.values()))
        return make_document(body, OPML_MEDIA_TYPE, EPOCH)

    async def changed_feeds(self) -> list[str]:
        """Ids of the feeds whose first page changed since the last call (the first call only
        takes note): what WebSub subscribers must hear about."""
        changed = []
        for feed_id in self.definitions:
            etag = (await self.render(feed_id, "atom")).etag
            if self._announced.get(feed_id, etag) != etag:
                changed.append(feed_id)
            self._announced[feed_id] = etag
        return changed

    async def source_infos(self) -> dict[str, SourceInfo]:
        return {s.id: source_info(s) for s in await self.store.list_sources(active_only=False)}


def source_info(source: StoredSource) -> SourceInfo:
    return SourceInfo(
        id=source.id, title=source.display_title, url=source.url, link=source.feed_link
    )
