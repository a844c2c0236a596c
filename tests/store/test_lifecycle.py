"""Leases, retention with tombstones, pull counts and concurrent writers, on both databases."""

from __future__ import annotations

import asyncio
import threading
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import update

import store.ingest as ingest_module
from sources import ParsedEntry, ParsedFeed, Validators
from store import Retention, SourceDefinition, Store
from store.tables import EntryRow
from tests.conftest import FakeClock

HOUR = timedelta(hours=1)
LEASE = timedelta(minutes=5)


KEEP_ALL = Retention()


def source(retention: Retention = KEEP_ALL) -> SourceDefinition:
    return SourceDefinition("s", "https://s.example/feed", None, HOUR, retention)


def document(*numbers: int, title: str = "entry") -> ParsedFeed:
    entries = tuple(
        ParsedEntry(id=f"e{n}", link=f"https://s.example/{n}?utm_source=rss", title=f"{title} {n}")
        for n in numbers
    )
    return ParsedFeed(url="https://s.example/feed", version="rss20", entries=entries)


async def keys(store: Store) -> list[str]:
    return sorted([e.entry_key async for page in store.newest_entries(["s"]) for e in page])


async def test_a_lease_keeps_a_source_from_other_workers_until_released_or_expired(
    store: Store, clock: FakeClock
) -> None:
    await store.sync_sources([source()], clock())
    [mine] = await store.claim_due_sources(clock(), LEASE, owner="w1")
    assert (mine.lease_owner, mine.lease_expires_at) == ("w1", clock() + LEASE)
    stored = await store.get_source("s")
    assert (stored.lease_owner, stored.lease_expires_at) == ("w1", clock() + LEASE)
    assert await store.claim_due_sources(clock(), LEASE, owner="w2") == []
    # Recording the outcome releases the lease and moves the next poll: not due again.
    await store.ingest("s", document(1), Validators(), clock(), clock() + HOUR)
    released = await store.get_source("s")
    assert (released.lease_owner, released.lease_expires_at) == (None, None)
    clock.advance(LEASE * 2)
    assert await store.claim_due_sources(clock(), LEASE, owner="w2") == []
    # A worker that dies keeps its lease until it expires; then another takes the source.
    clock.advance(HOUR)
    assert len(await store.claim_due_sources(clock(), LEASE, owner="w1")) == 1
    clock.advance(LEASE - timedelta(seconds=1))
    assert await store.claim_due_sources(clock(), LEASE, owner="w2") == []
    clock.advance(timedelta(seconds=1))
    [taken] = await store.claim_due_sources(clock(), LEASE, owner="w2")
    assert taken.lease_owner == "w2"


async def test_failures_and_not_modified_release_the_lease(store: Store, clock: FakeClock) -> None:
    await store.sync_sources([source()], clock())
    await store.claim_due_sources(clock(), LEASE, owner="w1")
    await store.record_failure("s", "http_5xx", "HTTP 503", clock(), clock())
    assert (await store.get_source("s")).lease_owner is None
    await store.claim_due_sources(clock(), LEASE, owner="w1")
    await store.record_not_modified("s", Validators(), clock(), clock())
    assert (await store.get_source("s")).lease_owner is None
    assert len(await store.claim_due_sources(clock(), LEASE, owner="w2")) == 1


async def test_pull_counts_are_recorded_on_the_source(store: Store, clock: FakeClock) -> None:
    await store.sync_sources([source()], clock())
    await store.ingest("s", document(1, 2), Validators(), clock(), clock() + HOUR)
    changed = document(1, 2, 3)
    changed = ParsedFeed(
        url=changed.url,
        version="rss20",
        entries=(ParsedEntry(id="e1", link=None, title="edited"), *changed.entries[1:]),
    )
    counts = await store.ingest("s", changed, Validators(), clock(), clock() + HOUR)
    assert (counts.new, counts.updated, counts.unchanged) == (1, 1, 1)
    last = (await store.get_source("s")).last_counts
    assert last is not None
    assert (last.new, last.updated, last.unchanged) == (1, 1, 1)


async def test_canonical_links_are_stored(store: Store, clock: FakeClock) -> None:
    await store.sync_sources([source()], clock())
    await store.ingest("s", document(1), Validators(), clock(), clock() + HOUR)
    [entry] = [e async for page in store.newest_entries(["s"]) for e in page]
    assert entry.link == "https://s.example/1?utm_source=rss"
    assert entry.canonical_link == "https://s.example/1"


async def test_max_entries_prunes_the_oldest_and_tombstones_keep_them_out(
    store: Store, clock: FakeClock
) -> None:
    await store.sync_sources([source(Retention(max_entries=3))], clock())
    for n in range(1, 6):  # e1 oldest ... e5 newest, one a minute
        await store.ingest("s", document(n), Validators(), clock(), clock() + HOUR)
        clock.advance(timedelta(minutes=1))
    assert await keys(store) == ["e3", "e4", "e5"]
    counts = await store.ingest("s", document(1, 2, 3, 4, 5), Validators(), clock(), clock())
    assert (counts.new, counts.unchanged, counts.ignored, counts.pruned) == (0, 3, 2, 0)
    assert await keys(store) == ["e3", "e4", "e5"]
    counts = await store.ingest("s", document(6), Validators(), clock(), clock())
    assert (counts.new, counts.pruned) == (1, 1)
    assert await keys(store) == ["e4", "e5", "e6"]


async def test_max_age_prunes_old_entries(store: Store, clock: FakeClock) -> None:
    await store.sync_sources([source()], clock())
    await store.ingest("s", document(1, 2), Validators(), clock(), clock())
    clock.advance(timedelta(days=2))
    await store.ingest("s", document(1, 2, 3), Validators(), clock(), clock())
    assert await store.prune_entries(clock()) == {}  # no retention configured: keep all
    await store.sync_sources([source(Retention(max_age=timedelta(days=1)))], clock())
    assert await store.prune_entries(clock()) == {"s": 2}
    assert await keys(store) == ["e3"]
    counts = await store.ingest("s", document(1, 2, 3), Validators(), clock(), clock())
    assert (counts.new, counts.ignored) == (0, 2)


async def test_two_writers_of_the_same_entries_create_no_duplicates(
    db_url: str, store: Store, clock: FakeClock
) -> None:
    await store.sync_sources([source()], clock())
    others = [Store.open(db_url) for _ in range(3)]
    try:
        results = await asyncio.gather(
            *(
                s.ingest("s", document(*range(50)), Validators(), clock(), clock())
                for s in [store, *others]
            )
        )
    finally:
        for other in others:
            await other.close()
    assert sum(r.new for r in results) == 50
    assert all(r.new + r.unchanged == 50 for r in results)
    assert await store.count_entries() == {"s": 50}


async def test_an_insert_that_loses_a_race_is_run_again_with_exact_counts(
    store: Store, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    await store.sync_sources([source()], clock())
    await store.ingest("s", document(1, 2), Validators(), clock(), clock())
    looked_up = []

    def stale(*args: object) -> tuple[dict[str, object], set[str]]:
        # Every look-up misses e1 and e2, as if another writer stored them just after it.
        looked_up.append(1)
        return {}, set()

    monkeypatch.setattr(ingest_module, "_known_and_buried", stale)
    counts = await store.ingest("s", document(1, 2, 3), Validators(), clock(), clock())
    # The fast insert's row count fell short (1 of 3): rolled back and run again, then the
    # RETURNING insert tells e3 (ours) from e1 and e2 (the other writer's).
    assert len(looked_up) == 2
    assert (counts.new, counts.unchanged) == (1, 2)
    assert await keys(store) == ["e1", "e2", "e3"]
    assert await store.count_entries() == {"s": 3}


async def test_the_ingest_transaction_runs_off_the_event_loop(
    store: Store, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    await store.sync_sources([source()], clock())
    real = ingest_module.upsert_entries
    threads = []

    def recording(*args: Any, **kwargs: Any) -> Any:
        threads.append(threading.current_thread())
        return real(*args, **kwargs)

    monkeypatch.setattr("store.store.upsert_entries", recording)
    await store.ingest("s", document(1), Validators(), clock(), clock())
    await store.ingest("s", document(1, 2), Validators(), clock(), clock())
    loop_thread = threading.current_thread()
    assert loop_thread not in threads  # a writer thread: serving goes on meanwhile
    if store.engine.dialect.name == "sqlite":  # one writer thread: SQLite has one writer
        assert len(set(threads)) == 1
    assert await keys(store) == ["e1", "e2"]


async def test_an_insert_that_meets_any_unique_constraint_skips_the_row(
    db_url: str, store: Store, clock: FakeClock
) -> None:
    """Two writers that check the (source, key) index at the same moment both insert, and
    the second meets the first on ``uq_entries_uid``: that must skip the row like a key
    conflict does. (A row with only the uid taken stands in for that moment, which a test
    cannot time; tests/store/test_race_stress.py runs the real race for many rounds.)"""
    await store.sync_sources([source()], clock())
    await store.ingest("s", document(1), Validators(), clock(), clock())
    async with store.engine.begin() as conn:
        await conn.execute(
            update(EntryRow).where(EntryRow.entry_key == "e1").values(entry_key="renamed")
        )
    counts = await store.ingest("s", document(1, 2), Validators(), clock(), clock())
    assert (counts.new, counts.unchanged) == (1, 1)
    assert await keys(store) == ["e2", "renamed"]
