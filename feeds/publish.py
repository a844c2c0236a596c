"""The curated feeds of one feedmill: select from the store, render, cache, describe.

    request for feed F, format X, page P
      at most once per `recheck` (or after invalidate()):
          changed = store.source_changes(since the highest version seen)   # by index
          each feed with a changed source: its generation + 1
      stamp = F's generation (+ the minute, if F has max_age)          # O(1), any size of F
      cached (F, X, P) with the same stamp?  -> serve it (no other query)
      a render of (F, X, P) for this stamp running?  -> the last rendering, if there is one,
                                                        else wait for it (one render)
      else select P's entries (rules at read time, off the event loop, one time budget
           for the regular expressions; a feed over many sources reads the newest entries
           of all and keeps its own), render X
           date = when these bytes were first rendered (store.document_changed_at)
           render X with that date, hash -> ETag, gzip; cache

Both the HTTP app and the static export call this, so they give the same bytes.
"""

from __future__ import annotations

import asyncio
import functools
import gzip
import hashlib
import logging
import time
from collections import OrderedDict
from collections.abc import AsyncGenerator, Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import aclosing
from dataclasses import dataclass, field, replace
from datetime import datetime
from email.utils import format_datetime
from typing import TypeVar

from feeds.errors import UnknownFeedError
from feeds.formats import render_json_feed, render_rss
from feeds.model import FeedDefinition, PageLinks, RenderedFeed, Site, SourceInfo
from feeds.opml import OPML_MEDIA_TYPE, render_feeds_opml, render_sources_opml
from feeds.render import EPOCH, render_atom
from feeds.rules import Budget
from feeds.select import Selector, Verdict
from feeds.stories import (
    Group,
    ShownStory,
    collapse_entry,
    link_groups,
    pick_representative,
)
from store.database import unavailable_reason
from store.errors import DatabaseUnavailable
from store.model import DocumentKey, SourceChange, StoredEntry, StoredSource
from store.store import Store

log = logging.getLogger("feeds.publish")
T = TypeVar("T")
RENDERERS = {"atom": render_atom, "rss": render_rss, "json": render_json_feed}
DB_TIMEOUT = 1.0  # seconds the versions read may take before the cached documents are served
CACHE_SIZE = 512  # rendered documents kept (feeds x formats x recently asked pages)
# A rendering whose rules ran out of time is served from the cache this long at most (seconds),
# then selected again, so that it does not stay short until one of its sources changes.
INCOMPLETE_RETRY = 60.0
# A feed over more sources than this reads the newest entries of every source and keeps its
# own, rather than naming all of its sources in the query.
MANY_SOURCES = 500
Key = tuple[str, str, str | None]  # feed id, format, archive page (None: the first)


@dataclass(frozen=True, slots=True)
class Page:
    """One page of a curated feed: its entries, newest first, and the cursor of the next."""

    definition: FeedDefinition
    entries: list[StoredEntry]
    before: str | None
    next_before: str | None
    # Feeds with `dedupe`: how each entry (by uid) is shown, and whom it credits.
    stories: Mapping[str, ShownStory] = field(default_factory=dict)
    # False when the rules' time budget ran out: some entries were left out undecided.
    complete: bool = True


@dataclass(frozen=True, slots=True)
class Document:
    """A rendered document ready for HTTP: strong ETag of the body, gzip body, dates."""

    body: bytes
    gzip_body: bytes
    media_type: str
    etag: str
    updated: datetime
    entry_count: int = 0  # entries on this page of a feed (the status page shows it)
    age: int | None = None  # seconds since known current: served while the database is away
    # The ETag and Last-Modified response headers, encoded once rather than per request.
    validators: tuple[tuple[bytes, bytes], ...] = ()


def make_document(
    body: bytes, media_type: str, updated: datetime, entry_count: int = 0
) -> Document:
    etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
    compressed = gzip.compress(body, compresslevel=6, mtime=0)  # mtime 0: same bytes each time
    validators = [(b"etag", etag.encode())]
    if updated > EPOCH:
        last_modified = format_datetime(updated.replace(microsecond=0), usegmt=True)
        validators.append((b"last-modified", last_modified.encode()))
    return Document(
        body, compressed, media_type, etag, updated, entry_count, validators=tuple(validators)
    )


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
        self._versions: dict[str, int] = {}  # each source's content version, as last read
        self._seen: int | None = None  # the highest version read (None: read them all)
        self._versions_read_at: float | None = None
        self._generations: dict[str, int] = {}  # feed id -> + 1 when one of its sources changed
        self._changes = 0  # + 1 when any source changed
        self._feeds_of: dict[str, list[str]] = {}  # source id -> ids of the feeds drawing on it
        self._members: dict[str, frozenset[str]] = {}  # the sources of feeds over MANY_SOURCES
        self._index_sources()
        self._infos: dict[str, SourceInfo] = {}  # every source, as rendered entries credit it
        self._titles = _Titles(self._infos)
        self._cache: OrderedDict[Key, tuple[object, Document]] = OrderedDict()
        self._rendering: dict[Key, tuple[object, asyncio.Future[Document]]] = {}
        self._refreshing: asyncio.Future[None] | None = None
        self._confirmed: dict[Key, float] = {}  # known current at
        self._retry_at: dict[Key, float] = {}  # incomplete renderings: select again from then
        self._down: tuple[float, str] | None = None  # database failed: until when, why
        self._last_sources_opml: tuple[Document, float] | None = None
        self._announced: dict[str, str] = {}
        self.renders = 0  # documents rendered (cache misses): tests and /metrics read it
        # Told the format and the seconds of every render (the service's /metrics).
        self.observe_render: Callable[[str, float], None] | None = None

    def definition(self, feed_id: str) -> FeedDefinition:
        try:
            return self.definitions[feed_id]
        except KeyError:
            raise UnknownFeedError(feed_id) from None

    def invalidate(self) -> None:
        """Read the versions again on the next request (call after this process ingests)."""
        self._versions_read_at = None

    def _index_sources(self) -> None:
        self._feeds_of = {}
        for definition in self.definitions.values():
            for source_id in definition.source_ids:
                self._feeds_of.setdefault(source_id, []).append(definition.id)
        self._members = {
            d.id: frozenset(d.source_ids)
            for d in self.definitions.values()
            if len(d.source_ids) > MANY_SOURCES
        }

    def update_definitions(self, definitions: Sequence[FeedDefinition]) -> set[str]:
        """Serve these curated feeds from now on (a reloaded config). The rendered documents
        of every feed added, removed or changed (rules, sources, title...) leave the cache;
        the others stay. Returns the ids of those feeds."""
        wanted = {d.id: d for d in definitions}
        changed = {
            feed_id
            for feed_id in self.definitions.keys() | wanted.keys()
            if self.definitions.get(feed_id) != wanted.get(feed_id)
        }
        self.definitions = wanted
        self._selectors = {
            d.id: Selector(d) if d.id in changed else self._selectors[d.id] for d in definitions
        }
        self._index_sources()
        self._seen = self._versions_read_at = None  # all read again: titles may have changed
        for key in [k for k in self._cache if k[0] in changed]:
            del self._cache[key]
        for feed_id in set(self._announced) - wanted.keys():
            del self._announced[feed_id]
        return changed

    async def select(self, feed_id: str) -> list[StoredEntry]:
        """The entries the feed carries now, newest first."""
        return (await self.select_page(feed_id)).entries

    async def select_page(self, feed_id: str, before: str | None = None) -> Page:
        """The feed's first page, or with ``before`` the archive page of the entries that
        pass the rules and come after the entry ``before`` in newest-first order."""
        return await self.select_with(self.definition(feed_id), self._selectors[feed_id], before)

    async def select_with(
        self,
        definition: FeedDefinition,
        selector: Selector,
        before: str | None = None,
        *,
        seconds: float | None = None,
        everything: bool = False,
    ) -> Page:
        """:meth:`select_page` for any definition (a search feed's too); ``seconds``: how
        long a query's search may take, ``everything``: search every source's entries."""
        await self.source_infos()
        selector.source_titles = self._titles
        now, room = self.clock(), definition.limit + 1  # one more tells if there is a next page
        chosen: list[StoredEntry] = []
        pages = self._candidates(definition, selector, before, now, seconds, everything)
        shown: dict[str, ShownStory] = {}
        budget = Budget()
        async with aclosing(pages):
            async for batch in pages:
                if definition.dedupe == "none":
                    chosen += await _off_loop(
                        selector, selector.select, batch, room - len(chosen), now, budget
                    )
                else:
                    chosen += await self._collapse(
                        selector, batch, room - len(chosen), shown, budget
                    )
                if len(chosen) >= room:
                    break
        _report(definition.id, budget)
        entries = chosen[: definition.limit]
        next_before = entries[-1].uid if len(chosen) > definition.limit else None
        return Page(definition, entries, before, next_before, shown, budget.cut_off == 0)

    def _candidates(
        self,
        definition: FeedDefinition,
        selector: Selector,
        before: str | None,
        now: datetime,
        seconds: float | None = None,
        everything: bool = False,
    ) -> AsyncGenerator[list[StoredEntry], None]:
        """The entries a feed chooses from, newest first: with a query, those the search
        index matches; else every entry of the feed's sources (a feed over more than
        MANY_SOURCES reads the newest of all and keeps its own)."""
        if selector.query is not None:
            sources = None if everything else definition.source_ids
            return self.store.search_entries(
                selector.query, now, source_ids=sources, before=before, timeout=seconds
            )
        members = self._members.get(definition.id)
        source_ids = None if members is not None else definition.source_ids
        if before is None:
            pages = self.store.newest_entries(source_ids)
        else:
            pages = self.store.entries_before(source_ids, before)
        return pages if members is None else _of_sources(pages, members)

    async def _collapse(
        self,
        selector: Selector,
        batch: list[StoredEntry],
        room: int,
        shown: dict[str, ShownStory],
        budget: Budget,
    ) -> list[StoredEntry]:
        """The entries of ``batch`` the feed carries that represent their story (or canonical
        link), at most ``room``; ``shown`` gets how each is shown."""
        now = self.clock()
        passing = await _off_loop(selector, _passing, selector, batch, now, budget)
        groups = await self.groups(selector.definition, passing)
        prefer = selector.definition.prefer

        def represent() -> list[StoredEntry]:
            chosen = []
            for entry in passing:
                story = collapse_entry(
                    entry,
                    groups.get(entry.uid),
                    lambda m: selector.judge(m, now, budget).included,
                    prefer,
                )
                if story is not None:
                    shown[entry.uid] = story
                    chosen.append(entry)
                    if len(chosen) >= room:
                        break
            return chosen

        return await _off_loop(selector, represent)

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
        await self.source_infos()
        selector.source_titles = self._titles
        judged: list[tuple[StoredEntry, Verdict]] = []
        kept, now, budget = 0, self.clock(), Budget()
        pages = self._candidates(definition, selector, None, now)
        async with aclosing(pages):
            async for batch in pages:
                batch = batch[: candidates - len(judged)]
                verdicts = await _off_loop(selector, _verdicts, selector, batch, now, budget)
                for entry, verdict in zip(batch, verdicts, strict=True):
                    if kept >= definition.limit or len(judged) >= candidates:
                        break
                    if verdict.included and definition.dedupe != "none":
                        verdict = await self.verdict(feed_id, entry, budget)
                    kept += verdict.included
                    judged.append((entry, verdict))
                if kept >= definition.limit or len(judged) >= candidates:
                    break
        _report(feed_id, budget)
        return judged

    async def verdict(
        self, feed_id: str, entry: StoredEntry, budget: Budget | None = None
    ) -> Verdict:
        """Whether the feed carries ``entry`` and why, its ``dedupe`` included (explain)."""
        definition, selector = self.definition(feed_id), self._selectors[feed_id]
        await self.source_infos()
        selector.source_titles = self._titles
        now, budget = self.clock(), budget or Budget()
        verdict = await _off_loop(selector, selector.judge, entry, now, budget)
        if not verdict.included or definition.dedupe == "none":
            return verdict
        group = (await self.groups(definition, [entry])).get(entry.uid)
        if group is None:
            return verdict

        def carries(m: StoredEntry) -> bool:
            return selector.judge(m, now, budget).included

        def decide() -> tuple[ShownStory | None, StoredEntry]:
            shown = collapse_entry(entry, group, carries, definition.prefer)
            eligible = [m for m in group[1] if m.uid == entry.uid or carries(m)]
            return shown, pick_representative(eligible, definition.prefer)

        what = "story" if definition.dedupe == "story" else "link group"
        shown, chosen = await _off_loop(selector, decide)
        if shown is None:
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
        of the feed's sources changed since it was rendered. While the database does not
        answer, the last good rendering with its ``age`` (DatabaseUnavailable without one)."""
        definition = self.definition(feed_id)
        if extension not in RENDERERS:
            raise UnknownFeedError(f"{feed_id}.{extension}")
        key = (feed_id, extension, before)
        try:
            return await self._current(definition, extension, key)
        except Exception as exc:
            reason = unavailable_reason(exc)  # a read, or the write that dates a document
            if reason is None:
                raise
            cached = self._cache.get(key)
            if cached is None:
                raise DatabaseUnavailable(reason) from exc
            age = self._monotonic() - self._confirmed.get(key, self._monotonic())
            return replace(cached[1], age=max(int(age), 0))

    async def _current(self, definition: FeedDefinition, extension: str, key: Key) -> Document:
        stamp = await self._stamp(definition)
        cached = self._cache.get(key)
        if (
            cached is not None
            and key in self._retry_at
            and self._retry_at[key] <= self._monotonic()
        ):
            cached = None  # its rules ran out of time: select again
        if cached is not None and cached[0] == stamp:
            self._cache.move_to_end(key)
            self._confirmed[key] = self._versions_read_at or self._monotonic()
            return cached[1]
        running = self._rendering.get(key)
        if running is not None and running[0] == stamp and cached is not None:
            return cached[1]  # being rendered again for another request: the last one meanwhile
        if running is None or running[0] != stamp:
            task = asyncio.ensure_future(self._render_cached(definition, extension, key, stamp))
            task.add_done_callback(functools.partial(self._rendered, key))
            running = self._rendering[key] = (stamp, task)
        # One render for this stamp, however many requests wait for it (a first rendering);
        # one that is cancelled (its client went away) leaves it running for the others.
        return await asyncio.shield(running[1])

    def _rendered(self, key: Key, task: asyncio.Future[Document]) -> None:
        if self._rendering.get(key, (None, None))[1] is task:
            del self._rendering[key]
        if not task.cancelled():
            task.exception()  # retrieved: the waiters, if any are left, raise it

    async def _render_cached(
        self, definition: FeedDefinition, extension: str, key: Key, stamp: object
    ) -> Document:
        document, complete = await self._render(definition, extension, key[2])
        if complete:
            self._retry_at.pop(key, None)
        else:
            self._retry_at[key] = self._monotonic() + INCOMPLETE_RETRY
        self._cache[key] = (stamp, document)
        self._confirmed[key] = self._monotonic()
        self._cache.move_to_end(key)
        while len(self._cache) > CACHE_SIZE:
            evicted = self._cache.popitem(last=False)[0]
            self._confirmed.pop(evicted, None)
            self._retry_at.pop(evicted, None)
        return document

    async def _render(
        self, definition: FeedDefinition, extension: str, before: str | None
    ) -> tuple[Document, bool]:
        """The document, and whether its selection was complete (Page.complete)."""
        started = time.perf_counter()
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
        if before is not None and not page.entries and not await self.store.has_entry(before):
            raise UnknownFeedError(f"{definition.id}/before/{before}.{extension}")
        document = await self.render_page(page, extension, links)
        if self.observe_render is not None:
            self.observe_render(extension, time.perf_counter() - started)
        return document, page.complete

    async def render_page(
        self, page: Page, extension: str, links: PageLinks, *, dated: datetime | None = None
    ) -> Document:
        """A selected page as a document in ``extension``'s format, dated by when these bytes
        were first rendered by any process (store.documents), as curated feeds are; or, a
        search feed (no document is stored for any query), by ``dated``."""
        render = functools.partial(
            RENDERERS[extension],
            page.definition,
            page.entries,
            dict(self._infos),  # the thread's own: the loop updates the publisher's
            self.site,
            links,
            page.stories,
        )

        def finish(updated: datetime) -> Document:
            rendered: RenderedFeed = render(updated=updated)
            count = len(page.entries)
            return make_document(rendered.body, rendered.media_type, rendered.updated, count)

        if dated is None:
            # The content decides the date: rendered with a fixed one, hashed, then dated by
            # when these bytes were first rendered by any process (store.documents).
            # Rendering, hashing and compressing run in a thread: requests for cached
            # documents are answered meanwhile.
            digest = await asyncio.to_thread(_digest, render)
            key = DocumentKey(page.definition.id, extension, page.before or "")
            dated = await self.store.document_changed_at(key, digest, self.clock())
        document = await asyncio.to_thread(finish, dated)
        self.renders += 1
        return document

    def cached(self, feed_id: str, extension: str, before: str | None = None) -> Document | None:
        """The cached rendering of a document when it is known current without a read of
        the database (the versions were read less than ``recheck`` ago and none of the
        feed's sources changed since it was rendered); else None: ask :meth:`render`."""
        read_at = self._versions_read_at
        if read_at is None or self._monotonic() - read_at >= self._recheck or self._down:
            return None
        definition = self.definitions.get(feed_id)
        key = (feed_id, extension, before)
        cached = self._cache.get(key)
        if definition is None or cached is None or cached[0] != self._stamp_now(definition):
            return None
        self._cache.move_to_end(key)
        self._confirmed[key] = read_at
        return cached[1]

    async def _stamp(self, definition: FeedDefinition) -> object:
        await self._refresh()
        return self._stamp_now(definition)

    def _stamp_now(self, definition: FeedDefinition) -> object:
        if self.definitions.get(definition.id) is definition:
            generation = self._generations.get(definition.id, 0)
        else:  # a search feed's, over every source: any change may change it
            generation = self._changes
        if definition.max_age is None and "within:" not in (definition.query or ""):
            return generation
        # Entries age out of the feed (max_age, a query's within:) as time passes: re-select
        # at most once a minute.
        return generation, self.clock().replace(second=0, microsecond=0)

    async def _refresh(self) -> None:
        """Read the sources changed since the last read, at most once per ``recheck`` (one
        read, however many requests wait for it), and count a generation for each feed that
        draws on one of them."""
        now = self._monotonic()
        if self._versions_read_at is not None and now - self._versions_read_at < self._recheck:
            return
        if self._refreshing is None or self._refreshing.done():
            self._refreshing = asyncio.ensure_future(self._read_and_count(now))
            self._refreshing.add_done_callback(_retrieved)
        await asyncio.shield(self._refreshing)

    async def _read_and_count(self, now: float) -> None:
        changes = await self._read_changes(now)
        self._versions_read_at = now
        seen = self._seen or 0
        for change in changes:
            seen = max(seen, change.content_version)
            self._infos[change.id] = source_info(change)
            if self._versions.get(change.id) == change.content_version:
                continue  # read again in full (a reload): unchanged
            self._versions[change.id] = change.content_version
            self._changes += 1
            for feed_id in self._feeds_of.get(change.id, ()):
                self._generations[feed_id] = self._generations.get(feed_id, 0) + 1
        self._seen = seen

    async def _read_changes(self, now: float) -> list[SourceChange]:
        """The sources changed since the last read, within DB_TIMEOUT; after a failure the
        database is left alone for ``recheck`` (requests get the cached documents at once
        meanwhile)."""
        if self._down is not None and now < self._down[0]:
            raise DatabaseUnavailable(self._down[1])
        try:
            changes = await asyncio.wait_for(self.store.source_changes(self._seen), DB_TIMEOUT)
        except (DatabaseUnavailable, TimeoutError) as exc:
            reason = str(exc) or f"the database did not answer within {DB_TIMEOUT:g}s"
            self._down = (now + self._recheck, reason)
            raise DatabaseUnavailable(reason) from exc
        self._down = None
        return changes

    async def render_atom(self, feed_id: str) -> Document:
        return await self.render(feed_id, "atom")

    async def sources_opml(self) -> Document:
        """The sources as OPML; while the database is away, the last one with its age."""
        try:
            sources = await self.store.list_sources()
        except DatabaseUnavailable:
            if self._last_sources_opml is None:
                raise
            document, at = self._last_sources_opml
            return replace(document, age=max(int(self._monotonic() - at), 0))
        document = make_document(render_sources_opml(self.site, sources), OPML_MEDIA_TYPE, EPOCH)
        self._last_sources_opml = (document, self._monotonic())
        return document

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

    async def source_infos(self) -> Mapping[str, SourceInfo]:
        """Every source, as rendered entries credit it (read with the versions)."""
        await self._refresh()
        return self._infos


class _Titles(Mapping[str, str]):
    """Source id -> title, a view of the publisher's source infos (rules on ``source``)."""

    def __init__(self, infos: Mapping[str, SourceInfo]) -> None:
        self._infos = infos

    def __getitem__(self, source_id: str) -> str:
        return self._infos[source_id].title

    def __iter__(self) -> Iterator[str]:
        return iter(self._infos)

    def __len__(self) -> int:
        return len(self._infos)


async def _of_sources(
    pages: AsyncGenerator[list[StoredEntry], None], members: frozenset[str]
) -> AsyncGenerator[list[StoredEntry], None]:
    async with aclosing(pages):
        async for page in pages:
            yield [entry for entry in page if entry.source_id in members]


async def _off_loop(selector: Selector, work: Callable[..., T], *args: object) -> T:
    """``work(*args)`` in a thread when the feed's rules read entry text (regular
    expressions, keywords: CPU the event loop should not wait for), else here."""
    if selector.has_rules:
        return await asyncio.to_thread(work, *args)
    return work(*args)


def _retrieved(task: asyncio.Future[None]) -> None:
    if not task.cancelled():
        task.exception()  # the waiters raise it; retrieved even if none is left


def _digest(render: Callable[..., RenderedFeed]) -> str:
    return hashlib.sha256(render(updated=EPOCH).body).hexdigest()


def _passing(
    selector: Selector, batch: Iterable[StoredEntry], now: datetime, budget: Budget
) -> list[StoredEntry]:
    return [e for e in batch if selector.judge(e, now, budget).included]


def _verdicts(
    selector: Selector, batch: Iterable[StoredEntry], now: datetime, budget: Budget
) -> list[Verdict]:
    return [selector.judge(e, now, budget) for e in batch]


def _report(feed_id: str, budget: Budget) -> None:
    if budget.cut_off:
        log.warning(
            "feed %s: %d regular-expression searches ran out of time (%.1fs a selection); "
            "the entries they were to decide are left out",
            feed_id,
            budget.cut_off,
            budget.seconds,
        )


def source_info(source: StoredSource | SourceChange) -> SourceInfo:
    return SourceInfo(
        id=source.id, title=source.display_title, url=source.url, link=source.feed_link
    )
