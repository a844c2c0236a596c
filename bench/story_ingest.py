"""Story clustering inside Store.ingest: 100,000 entries with clustering on vs off, same run.

    python bench/story_ingest.py                 # SQLite, 100,000 entries
    python bench/story_ingest.py --postgres      # also PostgreSQL (127.0.0.1:5432, test)
    python bench/story_ingest.py --entries 20000
    python bench/story_ingest.py --mode event    # event mode (lexical) instead of near-copy

Both runs use the real Store (migrated schema, one transaction per document of 50 entries
of one source; 100 sources over 100 days). The baseline is `Store(stories=None)`: the same
ingest with no clustering. Synthetic entries: headline-like titles and 40-word summaries
drawn from a shared vocabulary, and every fifth entry a light copy of a recent one, so
stories form. Prints the total ratio (the issue's target is <= 1.3), the time per entry
for each block of 10,000 (flat = it does not grow with the stored count), the query
plans of the candidate lookups, and the floor of the design: the same run's plain ingest
plus the story_keys work alone (each document's candidate look-up and 20 key rows an
entry) through the bare driver.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import re
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import text  # noqa: E402

from sources.model import ParsedEntry, ParsedFeed, Validators  # noqa: E402
from store import SourceDefinition, Store, ensure_schema  # noqa: E402
from store.database import create_thread_engine  # noqa: E402
from store.stories import StoryEntry, StoryMode, StorySettings, featurize_entries  # noqa: E402
from store.story_index import (  # noqa: E402
    _COPY_KEYS,
    _INSERT_KEYS,
    _SELECT_KEYS_ANY,
    _SELECT_KEYS_IN,
    _day,
    _story_halves,
)

SOURCES = 100
NOW = datetime(2026, 4, 11, tzinfo=UTC)
BATCH = 50
BLOCK = 10_000
POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
_WORDS = (
    "lenovo nvidia server tianjin factory chip cloud market revenue quarter launch phone "
    "battery network outage merger bank rates inflation election court ruling climate storm "
    "airline strike rail port shipping oil gas solar wind grid startup funding layoffs "
    "security breach patch browser update satellite rocket vaccine trial hospital school "
    "budget tax housing prices retail sales exports tariffs ministry council mayor police"
)
WORDS = _WORDS.split(" ")


def synthetic(count: int) -> list[tuple[str, ParsedEntry]]:
    rng = random.Random(5)
    vocabulary = [f"{w}{i}" for w in WORDS for i in range(40)]  # 2,600 distinct words
    start = datetime(2026, 1, 1, tzinfo=UTC)
    spacing = timedelta(days=100) / count
    made: list[tuple[str, ParsedEntry]] = []
    source = ""
    for i in range(count):
        if i % BATCH == 0:  # each document of BATCH entries comes from one source
            source = f"s{rng.randrange(SOURCES):03d}"
        if i % 5 == 4 and i > 100:
            _, original = made[i - rng.randrange(1, 100)]
            title, summary = f"{original.title} (update)", original.summary
        else:
            title = " ".join(rng.choices(vocabulary, k=8))
            summary = " ".join(rng.choices(vocabulary, k=40))
        published = start + spacing * i
        entry = ParsedEntry(
            id=f"e{i}",
            link=f"https://{source}.example/e{i}",
            title=title,
            summary=summary,
            published=published,
        )
        made.append((source, entry))
    return made


async def ingest_all(
    url: str, entries: Sequence[tuple[str, ParsedEntry]], stories: StorySettings | None
) -> tuple[float, list[float], Store]:
    """(total seconds, seconds per entry for each block of BLOCK, the open store)."""
    store = Store.open(url, stories=stories)
    await ensure_schema(store)
    now = datetime(2026, 4, 11, tzinfo=UTC)
    definitions = [
        SourceDefinition(f"s{i:03d}", f"https://s{i:03d}.example/feed", None, timedelta(hours=1))
        for i in range(SOURCES)
    ]
    await store.sync_sources(definitions, now)
    blocks: list[float] = []
    paused = 0.0  # time spent in ANALYZE, which autovacuum would do in its own process
    analyze_at = {1000 * 2**i for i in range(12)}
    started = block_started = time.perf_counter()
    for offset in range(0, len(entries), BATCH):
        # One document of BATCH entries of one source, in time order.
        batch = entries[offset : offset + BATCH]
        feed = ParsedFeed(url="u", version="rss20", entries=tuple(e for _, e in batch))
        await store.ingest(batch[0][0], feed, Validators(), now, now)
        if store.engine.dialect.name == "postgresql" and offset + BATCH in analyze_at:
            # A live database has planner statistics (autovacuum analyzes a table each time
            # it grows by 10%); a fresh bench schema would have none for its first minute,
            # and the planner would take IN (...) look-ups for scans. Not timed.
            pause = time.perf_counter()
            async with store.engine.begin() as conn:
                await conn.execute(text("ANALYZE"))
            paused += time.perf_counter() - pause
            block_started += time.perf_counter() - pause
        if (offset + BATCH) % BLOCK == 0:
            elapsed = time.perf_counter()
            blocks.append((elapsed - block_started) / BLOCK)
            block_started = elapsed
    return time.perf_counter() - started - paused, blocks, store


PLANS = {
    "band keys": "SELECT bucket, key, story_hi, story_lo FROM story_keys "
    "WHERE bucket IN (20514, 20515, 20516) AND key IN ({keys})",
    "canonical link": "SELECT m.story_id FROM story_members m JOIN entries e "
    "ON e.uid = m.entry_uid WHERE e.canonical_link = 'https://s001.example/e5'",
    "members": "SELECT entry_uid, source_id, published, signature FROM story_members "
    "WHERE story_id IN ('a', 'b')",
}


async def print_plans(store: Store) -> None:
    async with store.engine.connect() as conn:
        keys = ", ".join(str(k) for k in (await conn.execute(text(_SOME_KEYS))).scalars())
        for name, statement in PLANS.items():
            sql = statement.format(keys=keys or "0")
            if conn.dialect.name == "sqlite":
                rows = await conn.execute(text(f"EXPLAIN QUERY PLAN {sql}"))
                plan = "; ".join(str(row[-1]) for row in rows)
            else:
                rows = await conn.execute(text(f"EXPLAIN {sql}"))
                plan = "; ".join(str(row[0]).strip() for row in rows)
            plan = re.sub(r"\{(-?\d+),[-\d,]+\}", r"{\1,...}", plan)  # the key lists
            print(f"    plan, {name}: {plan}")


_SOME_KEYS = "SELECT key FROM story_keys LIMIT 32"


async def measure(
    label: str,
    url_for: Any,
    entries: list[tuple[str, ParsedEntry]],
    mode: StoryMode = StoryMode.NEAR_COPY,
) -> None:
    plain_url, plain_cleanup = url_for()
    plain, plain_blocks, store = await ingest_all(plain_url, entries, None)
    await store.close()
    plain_cleanup()
    print(f"{label}: {len(entries)} entries, documents of {BATCH}, {SOURCES} sources")
    print(f"  ingest, no clustering       {plain:7.1f} s  {len(entries) / plain:7.0f} entries/s")
    url, cleanup = url_for()
    total, blocks, store = await ingest_all(url, entries, StorySettings(mode=mode))
    print(
        f"  ingest + {mode:<9} stories  {total:7.1f} s  {len(entries) / total:7.0f} entries/s"
        f"  ratio {total / plain:.2f}"
    )
    per = "  ".join(f"{(i + 1) * BLOCK // 1000}k: {s * 1e6:.0f}" for i, s in enumerate(blocks))
    base = "  ".join(
        f"{(i + 1) * BLOCK // 1000}k: {s * 1e6:.0f}" for i, s in enumerate(plain_blocks)
    )
    print(f"    µs/entry with stories, by stored count: {per}")
    print(f"    µs/entry without,      by stored count: {base}")
    async with store.engine.connect() as conn:
        stories = (await conn.execute(text("SELECT count(*) FROM stories"))).scalar()
        multi = (
            await conn.execute(text("SELECT count(*) FROM stories WHERE member_count > 1"))
        ).scalar()
    print(f"    {stories} stories, {multi} with more than one entry")
    await print_plans(store)
    await store.close()
    cleanup()
    url, cleanup = url_for()
    bare = await bare_index(url, entries)
    cleanup()
    print(
        f"  the LSH index's rows alone  {bare:7.1f} s  (bare driver: each document's key look-up"
        f" and its 20 rows an entry; the floor of this design: ratio {(plain + bare) / plain:.2f})"
    )


async def bare_index(url: str, entries: Sequence[tuple[str, ParsedEntry]]) -> float:
    """Seconds for the story_keys work alone, through the bare driver on the migrated
    schema: for each document, the candidate look-up (the store's own statement, the same
    days and keys) and the insert of 20 rows an entry, each entry its own story, one
    transaction a document. No features (computed before the clock starts), no members,
    no stories: what clustering this way costs at the least."""
    store = Store.open(url)
    await ensure_schema(store)
    engine = create_thread_engine(store.engine)
    await store.close()
    settings = StorySettings()
    window = settings.window
    documents = []
    for offset in range(0, len(entries), BATCH):
        batch = entries[offset : offset + BATCH]
        features = featurize_entries(
            [
                StoryEntry(uuid.uuid4().hex, s, e.published or NOW, e.title or "", e.summary or "")
                for s, e in batch
            ],
            settings,
        )
        first = min(_day(f.published - window) for f in features)
        last = max(_day(f.published + window) for f in features)
        keys = sorted({k for f in features for k in f.band_keys})
        rows = sorted(
            (_day(f.published), key, *_story_halves(f.uid)) for f in features for key in f.band_keys
        )
        documents.append((list(range(first, last + 1)), keys, rows))
    assert engine is not None
    raw: Any = engine.raw_connection()
    postgres = engine.dialect.name == "postgresql"
    analyze_at = {1000 * 2**i for i in range(12)}  # as ingest_all does, not timed
    paused = 0.0
    started = time.perf_counter()
    for number, (days, keys, rows) in enumerate(documents, 1):
        cursor = raw.cursor()
        if postgres and number * BATCH in analyze_at:
            pause = time.perf_counter()
            cursor.execute("ANALYZE story_keys")
            raw.commit()
            paused += time.perf_counter() - pause
        if postgres:
            cursor.execute(_SELECT_KEYS_ANY, (days, keys))
            cursor.fetchall()
            with cursor.copy(_COPY_KEYS) as copy:  # as the store does when no row exists
                copy.set_types(["int4", "int8", "int8", "int8"])
                for row in rows:
                    copy.write_row(row)
            raw.commit()
        else:
            cursor.execute("BEGIN IMMEDIATE")
            in_days, in_keys = ", ".join(map(str, days)), ", ".join(map(str, keys))
            cursor.execute(_SELECT_KEYS_IN.format(in_days, in_keys)).fetchall()
            cursor.executemany(_INSERT_KEYS, rows)
            cursor.execute("COMMIT")
        cursor.close()
    elapsed = time.perf_counter() - started - paused
    raw.close()
    engine.dispose()
    return elapsed


def sqlite_url() -> tuple[str, Any]:
    folder = tempfile.TemporaryDirectory()
    return f"sqlite:///{folder.name}/{uuid.uuid4().hex}.db", folder.cleanup


def postgres_url() -> tuple[str, Any]:
    import psycopg

    schema = f"fm_bench_{uuid.uuid4().hex[:12]}"
    admin = psycopg.connect(POSTGRES.replace("+psycopg", ""), autocommit=True)
    admin.execute(f'CREATE SCHEMA "{schema}"')

    def cleanup() -> None:
        admin.execute(f'DROP SCHEMA "{schema}" CASCADE')
        admin.close()

    return f"{POSTGRES}?options=-csearch_path%3D{schema}", cleanup


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=100_000)
    parser.add_argument("--postgres", action="store_true", help="also on PostgreSQL")
    parser.add_argument(
        "--mode", choices=[m.value for m in StoryMode], default=StoryMode.NEAR_COPY.value
    )
    args = parser.parse_args()
    entries = synthetic(args.entries)
    mode = StoryMode(args.mode)
    asyncio.run(measure("SQLite", sqlite_url, entries, mode))
    if args.postgres:
        asyncio.run(measure("PostgreSQL", postgres_url, entries, mode))


if __name__ == "__main__":
    main()
