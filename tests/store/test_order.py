"""Undated entries keep their document's order (the first is the newest), on the first
ingest and on later polls that add some, so a curated feed's ``limit`` keeps the newest."""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from pathlib import Path

from feeds import Publisher
from sources import ParsedEntry, ParsedFeed, Validators, parse_document
from store import SourceDefinition, Store
from tests.conftest import FakeClock
from tests.fakes import SITE, feed_definition

HOUR = timedelta(hours=1)
HEISE = SourceDefinition("heise", "https://www.heise.de/newsticker/heise.rdf", None, HOUR)


async def ingest(store: Store, clock: FakeClock, feed: ParsedFeed) -> None:
    await store.ingest(HEISE.id, feed, Validators(), clock(), clock() + HOUR)


async def titles(store: Store) -> list[str | None]:
    return [e.title async for page in store.newest_entries([HEISE.id]) for e in page]


async def test_undated_entries_keep_document_order_across_polls(
    store: Store, clock: FakeClock, corpus: Path
) -> None:
    document = (corpus / "real" / "miniflux__rdf_UTF8.xml").read_bytes()
    feed = parse_document(document, HEISE.url)
    upstream = [e.title for e in feed.entries]
    assert len(upstream) == 60 and not any(e.published or e.updated for e in feed.entries)
    await store.sync_sources([HEISE], clock())
    await ingest(store, clock, feed)
    assert await titles(store) == upstream
    definition = feed_definition(id="heise", source_ids=(HEISE.id,), limit=50)
    publisher = Publisher(store, [definition], SITE, clock=clock)
    assert [e.title for e in await publisher.select("heise")] == upstream[:50]

    clock.advance(HOUR)
    fresh = tuple(ParsedEntry(id=f"new-{n}", link=None, title=f"New {n}") for n in (1, 2))
    edited = dataclasses.replace(feed.entries[5], title="Edited in place")
    later = dataclasses.replace(feed, entries=(*fresh, *feed.entries[:5], edited))
    await ingest(store, clock, later)
    edited = ["New 1", "New 2", *upstream[:5], "Edited in place", *upstream[6:]]
    assert await titles(store) == edited
