"""The render cache's check: what changed is read by version, each feed counts the changes of
its own sources only, one render serves every request waiting for it, and a feed over more
than MANY_SOURCES sources selects the same entries as one that names them in the query."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from feeds import Publisher
from feeds.model import Rule
from feeds.publish import INCOMPLETE_RETRY, MANY_SOURCES
from feeds.rules import Budget
from sources.model import ParsedEntry, ParsedFeed, Validators
from store import SourceChange, SourceDefinition, Store
from tests.fakes import SITE, T0, feed_definition

HOUR = timedelta(hours=1)


async def _sources(store: Store, count: int) -> list[str]:
    ids = [f"s{i:04d}" for i in range(count)]
    await store.sync_sources(
        [SourceDefinition(i, f"https://{i}.example/", None, HOUR) for i in ids], T0
    )
    return ids


async def _post(store: Store, source_id: str, number: int) -> None:
    entry = ParsedEntry(
        id=f"{source_id}-{number}",
        link=f"https://{source_id}.example/{number}",
        title=f"Story {number} of {source_id}",
        published=T0 + timedelta(minutes=number),
    )
    feed = ParsedFeed(url=f"https://{source_id}.example/", version="rss20", entries=(entry,))
    await store.ingest(source_id, feed, Validators(), T0, T0 + HOUR)


class CountingStore:
    """The store, with each ``source_changes`` call's ``since`` and answer noted."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.calls: list[tuple[int | None, list[SourceChange]]] = []

    def __getattr__(self, name: str) -> object:
        return getattr(self.store, name)

    async def source_changes(self, since: int | None = None) -> list[SourceChange]:
        changes = await self.store.source_changes(since)
        self.calls.append((since, changes))
        return changes


async def test_only_what_changed_is_read_and_only_its_feeds_render_again(store: Store) -> None:
    ids = await _sources(store, 30)
    for source_id in ids:
        await _post(store, source_id, 1)
    counting = CountingStore(store)
    first = feed_definition(id="first", source_ids=tuple(ids[:10]))
    every = feed_definition(id="every", source_ids=tuple(ids))
    publisher = Publisher(counting, [first, every], SITE, clock=lambda: T0, recheck=0)  # type: ignore[arg-type]
    for feed_id in ("first", "every"):
        await publisher.render(feed_id, "atom")
    assert counting.calls[0][0] is None and len(counting.calls[0][1]) == 30  # all, once
    assert publisher.renders == 2

    await _post(store, ids[20], 2)  # a source of `every` only
    mark = len(counting.calls)
    served = {f: await publisher.render(f, "atom") for f in ("first", "every")}
    reads = counting.calls[mark:]
    assert all(since is not None for since, _ in reads)  # by version, never all again
    assert [c.id for _, changes in reads for c in changes] == [ids[20]]
    assert publisher.renders == 3  # `every` again, `first` from the cache
    assert b"Story 2 of s0020" in served["every"].body

    await _post(store, ids[3], 2)  # a source of both
    for feed_id in ("first", "every"):
        await publisher.render(feed_id, "atom")
    assert publisher.renders == 5


async def test_requests_waiting_for_a_render_share_it(store: Store) -> None:
    ids = await _sources(store, 3)
    await _post(store, ids[0], 1)
    publisher = Publisher(
        store, [feed_definition(id="f", source_ids=tuple(ids))], SITE, clock=lambda: T0
    )
    documents = await asyncio.gather(*(publisher.render("f", "atom") for _ in range(20)))
    assert publisher.renders == 1
    assert len({id(d) for d in documents}) == 1

    await _post(store, ids[1], 2)
    publisher.invalidate()
    again = await asyncio.gather(*(publisher.render("f", "atom") for _ in range(20)))
    assert publisher.renders == 2
    # The request that found the change waits for the new rendering; those that come while
    # it runs get the last one meanwhile, never a render of their own.
    assert b"Story 2 of s0001" in again[0].body
    assert {d.etag for d in again[1:]} <= {documents[0].etag, again[0].etag}
    assert b"Story 2 of s0001" in (await publisher.render("f", "atom")).body


async def test_a_feed_over_many_sources_selects_as_one_over_few(store: Store) -> None:
    ids = await _sources(store, MANY_SOURCES + 20)
    members = ids[: MANY_SOURCES + 10]  # the last ten sources are not the feed's
    for number, source_id in enumerate(ids[-15:]):
        await _post(store, source_id, number)
    many = feed_definition(id="many", source_ids=tuple(members), limit=4)
    publisher = Publisher(store, [many], SITE, clock=lambda: T0)
    page = await publisher.select_page("many")
    assert [e.source_id for e in page.entries] == [members[-1 - i] for i in range(4)]
    rest = await publisher.select_page("many", page.next_before)
    assert [e.source_id for e in rest.entries] == [ids[-15]]  # s0505: the feed's oldest
    assert rest.next_before is None


async def test_a_rendering_whose_rules_ran_out_of_time_is_selected_again(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A selection cut short by its time budget is served from the cache for a while, not
    until one of its sources next changes."""
    ids = await _sources(store, 2)
    for source_id in ids:
        await _post(store, source_id, 1)
    ruled = feed_definition(id="ruled", source_ids=tuple(ids), include=(Rule("regex", "Story"),))
    now = [0.0]
    publisher = Publisher(
        store, [ruled], SITE, clock=lambda: T0, recheck=1e9, monotonic=lambda: now[0]
    )
    monkeypatch.setattr("feeds.publish.Budget", lambda: Budget(seconds=0))  # spent at once
    short = await publisher.render("ruled", "atom")
    assert b"Story 1" not in short.body  # every entry left out undecided
    monkeypatch.undo()
    now[0] += INCOMPLETE_RETRY / 2
    assert await publisher.render("ruled", "atom") is short  # still within the retry time
    now[0] += INCOMPLETE_RETRY
    again = await publisher.render("ruled", "atom")
    assert b"Story 1 of s0000" in again.body and b"Story 1 of s0001" in again.body
    assert await publisher.render("ruled", "atom") is again  # complete: cached as usual
