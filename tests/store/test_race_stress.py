"""The race of several writers storing the same new entries, run for hundreds of rounds.

Marked ``stress``: not part of the default run (`make stress` runs it). One round is
tests/store/test_lifecycle.py::test_two_writers_of_the_same_entries_create_no_duplicates;
a lost race shows only now and then, so one round in the default suite cannot show it is gone.
FEEDMILL_STRESS_ROUNDS sets the number of rounds (300 by default).
"""

from __future__ import annotations

import asyncio
import os
from datetime import timedelta

import pytest

from sources import ParsedEntry, ParsedFeed, Validators
from store import Retention, SourceDefinition, Store
from tests.conftest import FakeClock

pytestmark = pytest.mark.stress

ROUNDS = int(os.environ.get("FEEDMILL_STRESS_ROUNDS", "300"))
WRITERS = int(os.environ.get("FEEDMILL_STRESS_WRITERS", "4"))
ENTRIES = int(os.environ.get("FEEDMILL_STRESS_ENTRIES", "50"))


def document(source_id: str) -> ParsedFeed:
    entries = tuple(
        ParsedEntry(id=f"e{n}", link=f"https://{source_id}.example/{n}", title=f"entry {n}")
        for n in range(ENTRIES)
    )
    return ParsedFeed(url=f"https://{source_id}.example/feed", version="rss20", entries=entries)


async def test_writers_of_the_same_new_entries_never_fail_nor_duplicate(
    db_url: str, store: Store, clock: FakeClock
) -> None:
    sources = [
        SourceDefinition(
            f"s{n}", f"https://s{n}.example/feed", None, timedelta(hours=1), Retention()
        )
        for n in range(ROUNDS)
    ]
    await store.sync_sources(sources, clock())
    writers = [store, *(Store.open(db_url) for _ in range(WRITERS - 1))]
    try:
        for source in sources:
            feed = document(source.id)
            results = await asyncio.gather(
                *(w.ingest(source.id, feed, Validators(), clock(), clock()) for w in writers)
            )
            assert sum(r.new for r in results) == ENTRIES, source.id
            assert all(r.new + r.unchanged == ENTRIES for r in results), source.id
    finally:
        for writer in writers[1:]:
            await writer.close()
    counts = await store.count_entries()
    assert counts == {source.id: ENTRIES for source in sources}
