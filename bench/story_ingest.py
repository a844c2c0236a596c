"""Story clustering inside Store.ingest: entries with clustering on vs off, same run, and
the start-up build of the in-memory index.

    python bench/story_ingest.py                 # SQLite and PostgreSQL, 100,000 entries
    python bench/story_ingest.py --sqlite-only
    python bench/story_ingest.py --entries 1000000 --sqlite-only
    python bench/story_ingest.py --entries 20000 --first-fetch   # sources' whole histories

Both runs use the real Store (migrated schema, one transaction per document of 50 entries
of one source; 100 sources over 100 days). The baseline is `Store(stories=None)`: the same
ingest with no clustering. Synthetic entries: headline-like titles and 40-word summaries
drawn from a shared vocabulary, and every fifth entry a light copy of a recent one, so
stories form. Prints the ratio, the time per entry for each block of 10,000 (flat = it does
not grow with the stored count), then the build of an index from story_members holding a
window of 100,000 entries (members written directly: each its own story), its time and its
memory per entry (tracemalloc), and the plan of the query that reads them.

--first-fetch orders the same entries as a first fetch of every source brings them: source
after source, each source's entries (spanning the whole 100 days) in documents of 50, so
nearly every entry is published long before the newest clustered one and is decided by a
back-fill index (docs/dedup.md "Late entries").
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import tempfile
import time
import tracemalloc
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import insert, text  # noqa: E402

from sources.model import ParsedEntry, ParsedFeed, Validators  # noqa: E402
from store import SourceDefinition, Store, ensure_schema  # noqa: E402
from store.stories import StoryEntry, StoryIndex, StorySettings, featurize_entries  # noqa: E402
from store.story_store import load_members  # noqa: E402
from store.tables import EntryRow, StoryMemberRow, StoryRow  # noqa: E402

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


def synthetic(count: int, span: timedelta = timedelta(days=100)) -> list[tuple[str, ParsedEntry]]:
    rng = random.Random(5)
    vocabulary = [f"{w}{i}" for w in WORDS for i in range(40)]  # 2,600 distinct words
    start = datetime(2026, 1, 1, tzinfo=UTC)
    spacing = span / count
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


def documents(
    entries: Sequence[tuple[str, ParsedEntry]], first_fetch: bool
) -> list[Sequence[tuple[str, ParsedEntry]]]:
    """Documents of BATCH entries of one source: as they were made (in time order), or
    source after source (a first fetch)."""
    if not first_fetch:
        return [entries[offset : offset + BATCH] for offset in range(0, len(entries), BATCH)]
    by_source: dict[str, list[tuple[str, ParsedEntry]]] = {}
    for found in entries:
        by_source.setdefault(found[0], []).append(found)
    return [
        held[offset : offset + BATCH]
        for _, held in sorted(by_source.items())
        for offset in range(0, len(held), BATCH)
    ]


async def ingest_all(
    url: str, docs: Sequence[Sequence[tuple[str, ParsedEntry]]], stories: StorySettings | None
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
    done = 0
    for batch in docs:
        offset, done = done, done + len(batch)
        feed = ParsedFeed(url="u", version="rss20", entries=tuple(e for _, e in batch))
        await store.ingest(batch[0][0], feed, Validators(), now, now)
        if store.engine.dialect.name == "postgresql" and any(
            offset < at <= done for at in analyze_at
        ):
            # A live database has planner statistics (autovacuum analyzes a table each time
            # it grows by 10%); a fresh bench schema would have none for its first minute,
            # and the planner would take IN (...) look-ups for scans. Not timed.
            pause = time.perf_counter()
            async with store.engine.begin() as conn:
                await conn.execute(text("ANALYZE"))
            paused += time.perf_counter() - pause
            block_started += time.perf_counter() - pause
        if done // BLOCK > offset // BLOCK:
            elapsed = time.perf_counter()
            blocks.append((elapsed - block_started) / BLOCK)
            block_started = elapsed
    return time.perf_counter() - started - paused, blocks, store


async def measure(
    label: str, url_for: Any, entries: list[tuple[str, ParsedEntry]], first_fetch: bool
) -> None:
    docs = documents(entries, first_fetch)
    plain_url, plain_cleanup = url_for()
    plain, plain_blocks, store = await ingest_all(plain_url, docs, None)
    await store.close()
    plain_cleanup()
    order = "source after source (first fetch)" if first_fetch else "in time order"
    print(f"{label}: {len(entries)} entries, {len(docs)} documents {order}, {SOURCES} sources")
    print(f"  ingest, no clustering       {plain:7.1f} s  {len(entries) / plain:7.0f} entries/s")
    url, cleanup = url_for()
    total, blocks, store = await ingest_all(url, docs, StorySettings())
    print(
        f"  ingest + stories            {total:7.1f} s  {len(entries) / total:7.0f} entries/s"
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
    index = store.clusterer.index if store.clusterer else None
    held = len(index) if index is not None else 0
    print(f"    {stories} stories, {multi} with more than one entry; {held} entries in the index")
    await store.close()
    cleanup()
    if not first_fetch:
        url, cleanup = url_for()
        await measure_build(url)
        cleanup()


WINDOW_ENTRIES = 100_000


async def measure_build(url: str) -> None:
    """A store whose members (100,000, each its own story) all lie within the index's
    horizon: the time to build the index from them, and its memory per entry."""
    store = Store.open(url)
    await ensure_schema(store)
    settings = StorySettings()
    entries = synthetic(WINDOW_ENTRIES, settings.window)
    await store.sync_sources(
        [
            SourceDefinition(f"s{i:03d}", f"https://s{i:03d}.example/f", None, timedelta(hours=1))
            for i in range(SOURCES)
        ],
        NOW,
    )
    async with store.engine.begin() as conn:
        for offset in range(0, len(entries), 5000):
            batch = entries[offset : offset + 5000]
            uids = [uuid.uuid4().hex for _ in batch]
            found = featurize_entries(
                [
                    StoryEntry(u, s, e.published or NOW, e.title or "", e.summary or "", e.link)
                    for u, (s, e) in zip(uids, batch, strict=True)
                ],
                settings,
            )
            await conn.execute(
                insert(EntryRow),
                [
                    entry_row(u, s, e.published or NOW, e.link, e.title or "", e.summary or "")
                    for u, (s, e) in zip(uids, batch, strict=True)
                ],
            )
            await conn.execute(insert(StoryRow), [story_row(f.uid, 1, f.published) for f in found])
            await conn.execute(
                insert(StoryMemberRow),
                [member_row(f.uid, f.uid, f.source_id, f.published, f.terms) for f in found],
            )
        if conn.dialect.name == "postgresql":
            await conn.execute(text("ANALYZE"))

    def build(conn: Any, traced: bool) -> tuple[float, int, int]:
        index = StoryIndex(settings)
        if traced:
            tracemalloc.start()
        started = time.perf_counter()
        load_members(conn, index)
        spent = time.perf_counter() - started
        size = tracemalloc.get_traced_memory()[0] if traced else 0
        tracemalloc.stop()
        return spent, len(index), size

    for traced in (False, True):
        async with store.engine.connect() as conn:
            spent, held, size = await conn.run_sync(build, traced)
        if not traced:
            print(f"  index built from story_members: {held} entries in {spent:.2f} s")
        else:
            print(f"    its memory: {size / held:.0f} bytes an entry ({size / 2**20:.0f} MiB)")
    async with store.engine.connect() as conn:
        statement = (
            "SELECT m.entry_uid, m.terms, e.canonical_link FROM story_members m "
            "JOIN entries e ON e.uid = m.entry_uid WHERE m.published >= '2026-01-01'"
        )
        explain = "EXPLAIN QUERY PLAN " if conn.dialect.name == "sqlite" else "EXPLAIN "
        rows = (await conn.execute(text(explain + statement))).all()
        plan = "; ".join(
            str(row[-1] if conn.dialect.name == "sqlite" else row[0]).strip() for row in rows
        )
        print(f"    plan: {plan}")
    await store.close()


def entry_row(
    uid: str, source_id: str, when: datetime, link: str | None, title: str, summary: str
) -> dict[str, Any]:
    """An entries row, as written by the benches that fill a store directly."""
    return {
        "source_id": source_id,
        "entry_key": uid,
        "uid": uid,
        "link": link,
        "canonical_link": link,
        "title": title,
        "summary": summary,
        "authors": [],
        "categories": [],
        "enclosures": [],
        "published": when,
        "sort_at": when,
        "first_seen_at": when,
        "changed_at": when,
        "content_hash": uid,
    }


def story_row(story_id: str, size: int, when: datetime) -> dict[str, Any]:
    return {
        "id": story_id,
        "representative_uid": story_id,
        "member_count": size,
        "source_count": size,
        "created_at": when,
        "updated_at": when,
    }


def member_row(
    uid: str, story_id: str, source_id: str, when: datetime, terms: bytes | None = None
) -> dict[str, Any]:
    return {
        "entry_uid": uid,
        "story_id": story_id,
        "source_id": source_id,
        "published": when,
        "terms": terms,
        "kind": None if uid == story_id else "event",
        "scores": [],
        "joined_at": when,
        "seq": 1,
    }


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
    parser.add_argument("--sqlite-only", action="store_true", help="not on PostgreSQL")
    parser.add_argument("--first-fetch", action="store_true", help="source after source")
    args = parser.parse_args()
    entries = synthetic(args.entries)
    asyncio.run(measure("SQLite", sqlite_url, entries, args.first_fetch))
    if not args.sqlite_only:
        asyncio.run(measure("PostgreSQL", postgres_url, entries, args.first_fetch))


if __name__ == "__main__":
    main()
