"""The sources at a glance in SQL (store.source_queries) agree with StoredSource.state, on
SQLite and PostgreSQL: counts per state, the due backlog, a page failing first, filters."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

from store import SOURCE_STATES, SourceDefinition, Store
from tests.fakes import T0

HOUR = timedelta(hours=1)


async def sources_in_every_state(store: Store) -> None:
    names = ["ok-1", "ok-2", "slow", "flaky", "gone", "blocked", "retired", "100%_real"]
    urls = {n: f"https://{n.replace('%', 'p').replace('_', '-')}.example/feed" for n in names}
    await store.sync_sources([SourceDefinition(n, urls[n], None, HOUR) for n in names], T0)
    await store.sync_sources(
        [SourceDefinition(n, urls[n], None, HOUR) for n in names if n != "retired"], T0
    )
    for name, kind, times in [("slow", "timeout", 1), ("flaky", "http_5xx", 3)]:
        for _ in range(times):
            await store.record_failure(name, kind, "boom", T0, T0 + HOUR)
    await store.record_failure("gone", "gone", "HTTP 410", T0, T0 + HOUR, gone=True)
    await store.record_failure("blocked", "blocked_address", "10.0.0.1", T0, T0 + HOUR)
    await store.claim_due_sources(T0, HOUR, owner="someone")  # leases what is still due


async def test_the_summary_counts_what_state_says(store: Store) -> None:
    await sources_in_every_state(store)
    listed = await store.list_sources()
    summary = await store.source_summary(T0)
    assert summary.states == {**dict.fromkeys(SOURCE_STATES, 0), **Counter(s.state for s in listed)}
    assert summary.states == {"ok": 3, "backing off": 2, "gone": 1, "blocked": 1}
    assert summary.due == 0  # the rest is leased, or put off by its failure
    assert (await store.source_summary(T0 + 2 * HOUR)).due == 6  # every one but gone
    assert summary.last_polled_at == T0


async def test_a_page_puts_failing_sources_first_and_filters(store: Store) -> None:
    await sources_in_every_state(store)
    page, matching = await store.source_page(limit=3)
    assert matching == 7
    assert [s.id for s in page] == ["flaky", "blocked", "gone"]  # most failures first, then id
    rest, _ = await store.source_page(offset=3, limit=None)
    assert [s.id for s in rest] == ["slow", "100%_real", "ok-1", "ok-2"]
    failing, count = await store.source_page(states=["backing off", "gone", "blocked"])
    assert count == 4 and {s.state for s in failing} == {"backing off", "gone", "blocked"}
    assert [s.id for s in (await store.source_page(states=["ok"], text="OK-"))[0]] == [
        "ok-1",
        "ok-2",
    ]
    assert [s.id for s in (await store.source_page(text="%_"))[0]] == ["100%_real"]  # literal
    assert (await store.source_page(text="ok-1.example/FEED"))[1] == 1  # URLs too, any case
    assert await store.source_page(states=[]) == ([], 0)
