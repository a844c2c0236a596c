from __future__ import annotations

import asyncio
import dataclasses
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import event, text
from sqlalchemy.exc import DBAPIError

from sources import Author, ParsedEntry, ParsedFeed, Validators, parse_document
from store import PollingUpdate, SourceDefinition, Store, StoredEntry, UnknownSourceError
from store import ingest as ingest_module
from tests.conftest import FakeClock, fixture_bytes

HOUR = timedelta(hours=1)
A = SourceDefinition("outlet-a", "https://serverdesk.example/feed.rss", "Server Desk", HOUR)
B = SourceDefinition("outlet-b", "https://computeweekly.example/feed.atom", None, HOUR)


def outlet_a() -> ParsedFeed:
    return parse_document(fixture_bytes("outlet-a.rss"), A.url)


async def all_entries(store: Store, source_ids: list[str]) -> list[StoredEntry]:
    return [e async for page in store.newest_entries(source_ids, batch=2) for e in page]


async def test_new_sources_are_due_at_once(store: Store, clock: FakeClock) -> None:
    await store.sync_sources([A, B], clock())
    claimed = await store.claim_due_sources(clock(), lease=timedelta(minutes=10))
    assert [s.id for s in claimed] == ["outlet-a", "outlet-b"]
    assert claimed[0].title == "Server Desk"
    assert claimed[0].interval == HOUR
    # Claimed sources are leased: a second tick at the same time finds nothing due.
    assert await store.claim_due_sources(clock(), lease=timedelta(minutes=10)) == []
    clock.advance(timedelta(minutes=11))
    assert len(await store.claim_due_sources(clock(), lease=timedelta(minutes=10))) == 2


async def test_sync_resets_a_source_whose_url_changed_and_deactivates_removed_ones(
    store: Store, clock: FakeClock
) -> None:
    await store.sync_sources([A, B], clock())
    await store.record_not_modified("outlet-a", Validators('"v1"', None), clock(), clock() + HOUR)
    moved = dataclasses.replace(A, url="https://serverdesk.example/new.rss")
    clock.advance(timedelta(minutes=5))
    await store.sync_sources([moved], clock())
    source = await store.get_source("outlet-a")
    assert source.url == moved.url
    assert source.validators == Validators()
    assert source.next_poll_at == clock()
    assert [s.id for s in await store.list_sources()] == ["outlet-a"]
    assert [s.id for s in await store.list_sources(active_only=False)] == ["outlet-a", "outlet-b"]


async def test_unknown_source(store: Store) -> None:
    with pytest.raises(UnknownSourceError):
        await store.get_source("nope")


async def test_ingesting_the_same_document_twice_adds_nothing(
    store: Store, clock: FakeClock
) -> None:
    await store.sync_sources([A], clock())
    feed = outlet_a()
    first = await store.ingest("outlet-a", feed, Validators('"v1"', None), clock(), clock() + HOUR)
    before = await all_entries(store, ["outlet-a"])
    clock.advance(HOUR)
    second = await store.ingest("outlet-a", feed, Validators('"v1"', None), clock(), clock() + HOUR)
    after = await all_entries(store, ["outlet-a"])
    assert (first.new, first.updated, first.unchanged) == (3, 0, 0)
    assert (second.new, second.updated, second.unchanged) == (0, 0, 3)
    assert after == before
    source = await store.get_source("outlet-a")
    assert source.validators == Validators('"v1"', None)
    assert source.feed_title == "Server Desk"
    assert source.last_success_at == clock()


async def test_a_changed_entry_is_updated_in_place_and_keeps_its_id(
    store: Store, clock: FakeClock
) -> None:
    await store.sync_sources([A], clock())
    feed = outlet_a()
    await store.ingest("outlet-a", feed, Validators(), clock(), clock() + HOUR)
    [original] = [e for e in await all_entries(store, ["outlet-a"]) if "Lenovo" in (e.title or "")]
    edited = dataclasses.replace(feed.entries[0], title="Lenovo expands Tianjin AI server hub")
    changed = dataclasses.replace(feed, entries=(edited, *feed.entries[1:]))
    clock.advance(HOUR)
    counts = await store.ingest("outlet-a", changed, Validators(), clock(), clock() + HOUR)
    assert (counts.new, counts.updated, counts.unchanged) == (0, 1, 2)
    [now] = [e for e in await all_entries(store, ["outlet-a"]) if e.uid == original.uid]
    assert now.title == "Lenovo expands Tianjin AI server hub"
    assert now.first_seen_at == original.first_seen_at
    assert now.changed_at == clock() > original.changed_at


async def test_entries_come_newest_first_in_pages(store: Store, clock: FakeClock) -> None:
    await store.sync_sources([A, B], clock())
    await store.ingest("outlet-a", outlet_a(), Validators(), clock(), clock() + HOUR)
    other = parse_document(fixture_bytes("outlet-b.atom"), B.url)
    await store.ingest("outlet-b", other, Validators(), clock(), clock() + HOUR)
    entries = await all_entries(store, ["outlet-a", "outlet-b"])
    assert len(entries) == 5
    times = [e.sort_at for e in entries]
    assert times == sorted(times, reverse=True)
    assert entries[0].title == "Lenovo to mass-produce AI servers in Tianjin from 2027 (update)"
    assert {e.source_id for e in await all_entries(store, ["outlet-b"])} == {"outlet-b"}
    assert await store.count_entries() == {"outlet-a": 3, "outlet-b": 2}


async def test_a_date_in_the_future_does_not_pin_an_entry_to_the_top(
    store: Store, clock: FakeClock
) -> None:
    await store.sync_sources([A], clock())
    future = ParsedEntry(
        id="f", link=None, title="from the future", published=datetime(2099, 1, 1, tzinfo=UTC)
    )
    feed = ParsedFeed(url=A.url, version="rss20", entries=(future,))
    await store.ingest("outlet-a", feed, Validators(), clock(), clock() + HOUR)
    [entry] = await all_entries(store, ["outlet-a"])
    assert entry.sort_at == clock()
    assert entry.published == datetime(2099, 1, 1, tzinfo=UTC)


async def test_repeated_guids_in_one_document_are_all_kept(store: Store, clock: FakeClock) -> None:
    await store.sync_sources([A], clock())
    twins = (
        ParsedEntry(id="same", link="https://x.example/1", title="one"),
        ParsedEntry(id="same", link="https://x.example/2", title="two"),
        ParsedEntry(id="same", link="https://x.example/2", title="three"),
    )
    feed = ParsedFeed(url=A.url, version="rss20", entries=twins)
    counts = await store.ingest("outlet-a", feed, Validators(), clock(), clock() + HOUR)
    assert counts.new == 3
    again = await store.ingest("outlet-a", feed, Validators(), clock(), clock() + HOUR)
    assert again.unchanged == 3


async def test_failures_are_counted_and_success_clears_them(store: Store, clock: FakeClock) -> None:
    await store.sync_sources([A], clock())
    first_failure = clock()
    for _ in range(2):
        await store.record_failure("outlet-a", "http_5xx", "HTTP 503", clock(), clock() + HOUR)
        clock.advance(HOUR)
    source = await store.get_source("outlet-a")
    assert (source.error_kind, source.error_message, source.error_count) == (
        "http_5xx",
        "HTTP 503",
        2,
    )
    assert source.failing_since == first_failure  # the first of the run, not the latest
    assert source.last_success_at is None
    await store.record_not_modified("outlet-a", Validators(), clock(), clock() + HOUR)
    source = await store.get_source("outlet-a")
    assert (source.error_kind, source.error_count, source.failing_since) == (None, 0, None)
    await store.record_failure("outlet-a", "timeout", "timed out", clock(), clock() + HOUR)
    assert (await store.get_source("outlet-a")).failing_since == clock()


async def test_a_crash_mid_ingest_leaves_nothing_half_written(
    store: Store, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    await store.sync_sources([A], clock())
    real = ingest_module.upsert_entries

    def crash_after_writing(*args: object, **kwargs: object) -> object:
        real(*args, **kwargs)  # type: ignore[arg-type]
        raise RuntimeError("power cut")

    monkeypatch.setattr("store.store.upsert_entries", crash_after_writing)
    with pytest.raises(RuntimeError):
        await store.ingest(
            "outlet-a", outlet_a(), Validators('"v1"', None), clock(), clock() + HOUR
        )
    assert await all_entries(store, ["outlet-a"]) == []
    assert (await store.get_source("outlet-a")).validators == Validators()
    if store.engine.dialect.name == "sqlite":
        async with store.engine.connect() as conn:
            assert (await conn.execute(text("PRAGMA integrity_check"))).scalar() == "ok"


async def test_concurrent_304s_share_transactions_and_each_keeps_its_own_values(
    store: Store, clock: FakeClock
) -> None:
    many = [
        SourceDefinition(f"s{i:03d}", f"https://x{i}.example/feed", None, HOUR) for i in range(60)
    ]
    await store.sync_sources(many, clock())
    begins: list[object] = []

    def count(conn: object) -> None:
        begins.append(conn)

    event.listen(store.engine.sync_engine, "begin", count)
    try:
        await asyncio.gather(
            *(
                store.record_not_modified(
                    d.id,
                    Validators(f'"e{i}"', None),
                    clock(),
                    clock() + i * timedelta(minutes=1),
                    # two column sets (with and without polling state) in one batch
                    PollingUpdate(None, None, i, f"h{i}", None, None) if i % 2 else None,
                )
                for i, d in enumerate(many)
            )
        )
    finally:
        event.remove(store.engine.sync_engine, "begin", count)
    assert len(begins) < 10  # group commit: not one transaction per source, on both databases
    for i, source in enumerate(await store.list_sources()):
        assert source.validators == Validators(f'"e{i}"', None)
        assert source.next_poll_at == clock() + i * timedelta(minutes=1)
        assert source.last_success_at == clock()
        assert source.body_hash == (f"h{i}" if i % 2 else None)
        assert source.redirect_count == (i if i % 2 else 0)


async def test_a_cancelled_caller_of_a_group_commit_still_has_its_update_written(
    store: Store, clock: FakeClock
) -> None:
    await store.sync_sources([A, B], clock())
    first, second = (
        asyncio.ensure_future(
            store.record_not_modified(s, Validators(f'"{s}"', None), clock(), clock() + HOUR)
        )
        for s in ("outlet-a", "outlet-b")
    )
    await asyncio.sleep(0)  # one turn of the loop: both updates are queued
    first.cancel()
    await second
    with pytest.raises(asyncio.CancelledError):
        await first
    for source in await store.list_sources():
        assert source.validators == Validators(f'"{source.id}"', None)
        assert source.next_poll_at == clock() + HOUR


async def test_claims_take_the_earliest_due_first_up_to_the_limit(
    store: Store, clock: FakeClock
) -> None:
    c = SourceDefinition("outlet-c", "https://c.example/feed", None, HOUR)
    await store.sync_sources([A, B, c], clock())
    for minutes, source_id in ((20, "outlet-a"), (30, "outlet-b"), (10, "outlet-c")):
        due = clock() + timedelta(minutes=minutes)
        await store.record_not_modified(source_id, Validators(), clock(), due)
    clock.advance(HOUR)
    claimed = await store.claim_due_sources(clock(), timedelta(minutes=10), limit=2, owner="w")
    assert [s.id for s in claimed] == ["outlet-c", "outlet-a"]  # by due time, not by id
    assert all(s.lease_owner == "w" and s.last_polled_at == clock() for s in claimed)
    assert claimed[0].lease_expires_at == clock() + timedelta(minutes=10)
    [last] = await store.claim_due_sources(clock(), timedelta(minutes=10), limit=2, owner="w")
    assert last.id == "outlet-b"


async def test_a_failed_group_commit_fails_every_caller_in_it_and_keeps_nothing(
    store: Store, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    await store.sync_sources([A, B], clock())
    monkeypatch.setattr("store.store._UPDATE_SOURCE", text("UPDATE no_such_table SET etag = :etag"))
    outcomes = await asyncio.gather(
        *(
            store.record_not_modified(s, Validators('"v9"', None), clock(), clock() + HOUR)
            for s in ("outlet-a", "outlet-b")
        ),
        return_exceptions=True,
    )
    assert all(isinstance(o, DBAPIError) for o in outcomes), outcomes
    monkeypatch.undo()
    for source in await store.list_sources():
        assert source.validators == Validators()
    # the queue is empty and the store still writes
    await store.record_not_modified("outlet-a", Validators('"v2"', None), clock(), clock() + HOUR)
    assert (await store.get_source("outlet-a")).validators == Validators('"v2"', None)


async def test_authors_keep_their_pages(store: Store, clock: FakeClock) -> None:
    await store.sync_sources([A], clock())
    authors = (Author("Mei Lin", "https://serverdesk.example/mei"), Author("Desk"))
    entry = ParsedEntry(id="x", link=None, title="T", authors=authors)
    feed = ParsedFeed(url=A.url, version="rss20", entries=(entry,))
    await store.ingest(A.id, feed, Validators(), clock(), clock() + HOUR)
    assert [e.authors for e in await all_entries(store, [A.id])] == [authors]
