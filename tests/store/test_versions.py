"""The store side of issue 6: content versions for the feed cache, archive cursors, language."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

from sources import Validators, parse_document
from store import SourceDefinition, Store
from tests.conftest import FakeClock, fixture_bytes

HOUR = timedelta(hours=1)
A = SourceDefinition("outlet-a", "https://serverdesk.example/feed.rss", "Server Desk", HOUR)
B = SourceDefinition("outlet-b", "https://computeweekly.example/feed.atom", None, HOUR)


async def test_versions_grow_only_when_entries_or_source_metadata_change(
    store: Store, clock: FakeClock
) -> None:
    await store.sync_sources([A, B], clock())
    assert await store.source_versions() == {"outlet-a": 0, "outlet-b": 0}
    feed = parse_document(fixture_bytes("outlet-a.rss"), A.url)
    await store.ingest("outlet-a", feed, Validators(), clock(), clock() + HOUR)
    assert await store.source_versions() == {"outlet-a": 1, "outlet-b": 0}
    await store.ingest("outlet-a", feed, Validators(), clock(), clock() + HOUR)
    assert (await store.source_versions())["outlet-a"] == 1  # the same document again
    renamed = dataclasses.replace(feed, title="Server Desk (renamed)")
    await store.ingest("outlet-a", renamed, Validators(), clock(), clock() + HOUR)
    assert (await store.source_versions())["outlet-a"] == 2
    changed = dataclasses.replace(
        renamed, entries=(dataclasses.replace(renamed.entries[0], title="New title"),)
    )
    await store.ingest("outlet-a", changed, Validators(), clock(), clock() + HOUR)
    assert (await store.source_versions())["outlet-a"] == 3


async def test_entries_before_continues_the_newest_first_order(
    store: Store, clock: FakeClock
) -> None:
    await store.sync_sources([A, B], clock())
    for source, name in ((A, "outlet-a.rss"), (B, "outlet-b.atom")):
        feed = parse_document(fixture_bytes(name), source.url)
        await store.ingest(source.id, feed, Validators(), clock(), clock() + HOUR)
    ids = ["outlet-a", "outlet-b"]
    everything = [e async for page in store.newest_entries(ids) for e in page]
    after_second = [e async for page in store.entries_before(ids, everything[1].uid) for e in page]
    assert [e.uid for e in after_second] == [e.uid for e in everything[2:]]
    assert [e async for page in store.entries_before(ids, "no-such-uid") for e in page] == []


async def test_the_language_of_an_entry_is_stored(store: Store, clock: FakeClock) -> None:
    await store.sync_sources([A, B], clock())
    feed = parse_document(fixture_bytes("outlet-b.atom"), B.url)
    await store.ingest("outlet-b", feed, Validators(), clock(), clock() + HOUR)
    entries = [e async for page in store.newest_entries(["outlet-b"]) for e in page]
    assert {e.language for e in entries} == {"en-gb"}
