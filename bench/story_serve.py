"""The first render of a curated feed with `dedupe: story`, against the same feed without
dedupe, over a store of many entries clustered into stories, in the same run.

    python bench/story_serve.py                       # SQLite, 30,000 and 1,000,000 entries
    python bench/story_serve.py --sizes 30000 --postgres

Entries and stories are written straight into a migrated schema (100 sources over 100 days;
stories of 1 to 4 entries from different sources, published close together), then a fresh
Publisher renders `stories.atom` (dedupe: story, limit 50) and `plain.atom` (dedupe: none)
with an empty cache, five rounds interleaved; the median of each is printed, with the
plans of the queries the story feed makes.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import insert, text  # noqa: E402
from story_ingest import entry_row, member_row, story_row  # noqa: E402

from feeds import Publisher  # noqa: E402
from feeds.model import FeedDefinition, Site  # noqa: E402
from store import SourceDefinition, Store, ensure_schema  # noqa: E402
from store.tables import EntryRow, StoryMemberRow, StoryRow  # noqa: E402

SOURCES = 100
START = datetime(2026, 1, 1, tzinfo=UTC)
NOW = START + timedelta(days=100)
POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
TEXT = "<p>" + "Lenovo expands its Tianjin AI server hub with liquid cooling. " * 6 + "</p>"


async def fill(store: Store, count: int) -> None:
    rng = random.Random(7)
    sources = [f"s{i:03d}" for i in range(SOURCES)]
    await store.sync_sources(
        [SourceDefinition(s, f"https://{s}.example/f", None, timedelta(hours=1)) for s in sources],
        NOW,
    )
    spacing = (NOW - START) / count
    made = 0
    entries: list[dict[str, Any]] = []
    members: list[dict[str, Any]] = []
    stories: list[dict[str, Any]] = []
    async with store.engine.begin() as conn:
        while made < count:
            size = min(rng.choice((1, 1, 2, 3, 4)), count - made)
            story_id = uuid.uuid4().hex
            for position, source in enumerate(rng.sample(sources, size)):
                uid = story_id if position == 0 else uuid.uuid4().hex
                when = START + spacing * (made + position)
                number = made + position
                link = f"https://{source}.example/{number}"
                entries.append(entry_row(uid, source, when, link, f"Story {number}", TEXT))
                members.append(member_row(uid, story_id, source, when))
            stories.append(story_row(story_id, size, when))
            made += size
            if len(entries) >= 20_000 or made >= count:
                await conn.execute(insert(EntryRow), entries)
                await conn.execute(insert(StoryRow), stories)
                await conn.execute(insert(StoryMemberRow), members)
                entries, members, stories = [], [], []
        if conn.dialect.name == "postgresql":
            await conn.execute(text("ANALYZE"))


async def first_renders(store: Store, rounds: int = 5) -> dict[str, float]:
    sources = tuple(f"s{i:03d}" for i in range(SOURCES))
    feeds = [
        FeedDefinition("stories", "Stories", sources, dedupe="story"),
        FeedDefinition("plain", "Plain", sources),
    ]
    times: dict[str, list[float]] = {"stories": [], "plain": []}
    for _ in range(rounds):
        for feed in ("stories", "plain"):
            publisher = Publisher(store, feeds, Site("https://bench.example/"), clock=lambda: NOW)
            started = time.perf_counter()
            document = await publisher.render(feed, "atom")
            times[feed].append(time.perf_counter() - started)
            assert document.body.count(b"<entry") == 50, feed
    return {feed: statistics.median(found) for feed, found in times.items()}


PLANS = (
    "SELECT entry_uid, story_id FROM story_members WHERE entry_uid IN ('a', 'b')",
    "SELECT story_id, entry_uid FROM story_members WHERE story_id IN ('a', 'b')",
    "SELECT * FROM entries WHERE uid IN ('a', 'b')",
)


async def print_plans(store: Store) -> None:
    async with store.engine.connect() as conn:
        sqlite = conn.dialect.name == "sqlite"
        for statement in PLANS:
            explain = "EXPLAIN QUERY PLAN " if sqlite else "EXPLAIN "
            rows = (await conn.execute(text(explain + statement))).all()
            plan = "; ".join(str(row[-1] if sqlite else row[0]).strip() for row in rows)
            print(f"    {statement}\n      -> {plan}")


async def measure(label: str, url: str, count: int) -> None:
    store = Store.open(url)
    try:
        await ensure_schema(store)
        started = time.perf_counter()
        await fill(store, count)
        print(f"{label}, {count} entries ({time.perf_counter() - started:.0f} s to write them)")
        found = await first_renders(store)
        ratio = found["stories"] / found["plain"]
        print(
            f"  first render, dedupe: story  {found['stories'] * 1e3:8.1f} ms"
            f"  (dedupe: none {found['plain'] * 1e3:.1f} ms; ratio {ratio:.2f})"
        )
        await print_plans(store)
    finally:
        await store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[30_000, 1_000_000])
    parser.add_argument("--postgres", action="store_true", help="also on PostgreSQL")
    args = parser.parse_args()
    for count in args.sizes:
        with tempfile.TemporaryDirectory() as folder:
            asyncio.run(measure("SQLite", f"sqlite:///{folder}/serve.db", count))
        if args.postgres:
            import psycopg

            schema = f"fm_serve_{uuid.uuid4().hex[:12]}"
            with psycopg.connect(POSTGRES.replace("+psycopg", ""), autocommit=True) as admin:
                admin.execute(f'CREATE SCHEMA "{schema}"')
                try:
                    url = f"{POSTGRES}?options=-csearch_path%3D{schema}"
                    asyncio.run(measure("PostgreSQL", url, count))
                finally:
                    admin.execute(f'DROP SCHEMA "{schema}" CASCADE')


if __name__ == "__main__":
    main()
