"""When a served document last changed (store.documents), as the publisher dates it: the
Atom ``updated``, RSS ``lastBuildDate`` and HTTP ``Last-Modified`` of every page move with
its ETag, whatever changed it, and every process on the database gives the same date."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import timedelta
from typing import Any

import pytest
from lxml import etree

from feeds import Publisher
from feeds.errors import UnknownFeedError
from feeds.publish import Document
from sources import ParsedEntry, ParsedFeed, Validators
from store import Retention, SourceDefinition, Store
from tests.conftest import FakeClock
from tests.fakes import SITE, T0, feed_definition

ATOM = "{http://www.w3.org/2005/Atom}"
HOUR, DAY, SECOND = timedelta(hours=1), timedelta(days=1), timedelta(seconds=1)
POD = SourceDefinition("pod", "https://pod.example/feed.rss", "Pod", HOUR)


def episode(number: int, **fields: Any) -> ParsedEntry:
    values: dict[str, Any] = {
        "id": f"episode-{number}",
        "link": f"https://pod.example/{number}",
        "title": f"Episode {number}",
        "published": T0 - DAY * (10 - number),
    }
    values.update(fields)
    return ParsedEntry(**values)


async def ingest(store: Store, clock: FakeClock, *entries: ParsedEntry) -> None:
    feed = ParsedFeed(url=POD.url, version="rss20", title="Pod", entries=entries)
    await store.ingest(POD.id, feed, Validators(), clock(), clock() + HOUR)


def publisher(store: Store, clock: FakeClock, **definition: Any) -> Publisher:
    values: dict[str, Any] = {"id": "pod", "title": "Pod", "source_ids": ("pod",)}
    values.update(definition)
    return Publisher(store, [feed_definition(**values)], SITE, clock=clock, recheck=0)


def atom_updated(document: Document) -> str | None:
    return etree.fromstring(document.body).findtext(f"{ATOM}updated")


@pytest.fixture
async def pod(store: Store, clock: FakeClock) -> Store:
    await store.sync_sources([POD], clock())
    await ingest(store, clock, episode(9), episode(8))
    return store


async def test_a_back_filled_entry_moves_the_date_with_the_etag(
    pod: Store, clock: FakeClock
) -> None:
    first = await publisher(pod, clock).render("pod", "atom")
    assert first.updated == T0 and atom_updated(first) == T0.isoformat()
    clock.advance(HOUR)
    await ingest(pod, clock, episode(9), episode(8), episode(2))  # dated a week earlier
    second = await publisher(pod, clock).render("pod", "atom")
    assert second.etag != first.etag
    assert second.updated == T0 + HOUR
    assert atom_updated(second) == (T0 + HOUR).isoformat()


async def test_every_process_gives_the_same_date_for_the_same_bytes(
    pod: Store, clock: FakeClock, db_url: str
) -> None:
    first = await publisher(pod, clock).render("pod", "rss")
    clock.advance(DAY)
    other = Store.open(db_url)  # another web node, or this one after a restart
    try:
        again = await publisher(other, clock).render("pod", "rss")
    finally:
        await other.close()
    assert (again.etag, again.updated, again.body) == (first.etag, first.updated, first.body)


async def test_edits_removals_and_config_changes_move_the_date(
    pod: Store, clock: FakeClock
) -> None:
    dates = [(await publisher(pod, clock).render("pod", "json")).updated]
    changes = [
        lambda: ingest(pod, clock, episode(9, title="Episode 9 (corrected)"), episode(8)),
        lambda: pod.sync_sources([dataclasses.replace(POD, retention=Retention(None, 1))], T0),
    ]
    for change in changes:
        clock.advance(HOUR)
        await change()
        if change is changes[1]:
            assert await pod.prune_entries(clock()) == {"pod": 1}
        dates.append((await publisher(pod, clock).render("pod", "json")).updated)
    clock.advance(HOUR)
    renamed = await publisher(pod, clock, title="Pod, renamed").render("pod", "json")
    dates.append(renamed.updated)
    assert dates == [T0, T0 + HOUR, T0 + 2 * HOUR, T0 + 3 * HOUR]


async def test_two_changes_within_a_second_get_two_dates(pod: Store, clock: FakeClock) -> None:
    first = await publisher(pod, clock).render("pod", "atom")
    await ingest(pod, clock, episode(9), episode(8), episode(7))
    second = await publisher(pod, clock).render("pod", "atom")
    assert second.updated == first.updated + SECOND  # a client's If-Modified-Since is older


async def test_an_empty_feed_is_dated_when_it_was_first_served(
    store: Store, clock: FakeClock
) -> None:
    await store.sync_sources([POD], clock())
    first = await publisher(store, clock).render("pod", "atom")
    assert atom_updated(first) == T0.isoformat()  # not 1970-01-01
    clock.advance(DAY)
    rss = await publisher(store, clock).render("pod", "rss")
    assert rss.updated == T0 + DAY  # RSS's first serving
    assert b"<lastBuildDate>Wed, 25 Nov 2026 12:00:00 GMT</lastBuildDate>" in rss.body
    assert (await publisher(store, clock).render("pod", "atom")).updated == T0


async def test_an_archive_page_is_dated_by_its_own_changes(pod: Store, clock: FakeClock) -> None:
    await ingest(pod, clock, episode(9), episode(8), episode(7))
    paged = publisher(pod, clock, limit=2)
    page = await paged.select_page("pod")
    assert page.next_before is not None
    archive = await paged.render("pod", "atom", page.next_before)
    first = await paged.render("pod", "atom")
    clock.advance(HOUR)
    await ingest(pod, clock, episode(9), episode(8), episode(7), episode(1))
    assert (await paged.render("pod", "atom")).updated == first.updated  # unchanged
    moved = await paged.render("pod", "atom", page.next_before)
    assert moved.etag != archive.etag and moved.updated == T0 + HOUR
    with pytest.raises(UnknownFeedError):
        await paged.render("pod", "atom", "0123456789abcdef")


async def test_nodes_rendering_one_change_at_once_agree_on_its_date(
    pod: Store, clock: FakeClock, db_url: str
) -> None:
    await publisher(pod, clock).render("pod", "atom")
    clock.advance(HOUR)
    await ingest(pod, clock, episode(9), episode(8), episode(2))
    later = FakeClock(clock() + 5 * SECOND)  # the other node's clock is a little ahead
    others = [Store.open(db_url) for _ in range(3)]
    try:
        documents = await asyncio.gather(
            publisher(pod, clock).render("pod", "atom"),
            *(publisher(other, later).render("pod", "atom") for other in others),
        )
    finally:
        for other in others:
            await other.close()
    assert len({(d.updated, d.etag) for d in documents}) == 1
    assert documents[0].updated in (clock(), later())
