"""Benchmark: the store on SQLite and PostgreSQL.

1. Ingest: 100,000 entries (2,000 sources x 50) through ``Store.ingest`` (identity, canonical
   link, content hash, known/tombstone look-up, INSERT ... ON CONFLICT DO NOTHING, retention,
   source state and content version; one transaction per source, sequentially). Baseline,
   same run, same database kind: a bare SQLAlchemy Core ``executemany`` of the same
   (precomputed) rows into the same table, one transaction per source. Target: ratio <= 2.
2. Select + render a curated feed of 50 entries (20 of 100 sources, a keyword rule) from a
   store of 1,000 entries and from one of 1,000,000. Target: large / small <= 1.5. The query
   plans are printed (EXPLAIN).

    python bench/store.py [--postgres URL] [--skip-large] [--rounds N]

--skip-large: only the ingest part (the render part builds 1,000,000-entry stores, minutes);
--rounds N: the ingest part N times, every round printed; --block N: feedmill and the
baseline take turns N sources at a time (default 50), so both see the same machine load.

PostgreSQL: a private schema on --postgres (default postgresql://postgres@127.0.0.1:5432/test),
dropped afterwards; skipped when unreachable.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import insert, text  # noqa: E402

from feeds import FeedDefinition, Publisher, Site  # noqa: E402
from sources import Author, ParsedEntry, ParsedFeed, Validators  # noqa: E402
from store import SourceDefinition, Store, ensure_schema  # noqa: E402
from store.canonical import canonical_link, normalize_url  # noqa: E402
from store.identity import content_hash, entry_keys  # noqa: E402
from store.ingest import _new_row, entries_table  # noqa: E402

T0 = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)
SUMMARY = "<p>" + "A paragraph about AI servers and data centres. " * 8 + "</p>"


def document(source: int, per_source: int) -> ParsedFeed:
    entries = tuple(
        ParsedEntry(
            id=None if n % 2 else f"tag:outlet{source}.example,2026:{n}",
            link=f"https://Outlet{source}.example/story/{n}?utm_source=rss&id={n}",
            title=f"{'GPU' if n % 3 == 0 else 'Local'} story {n} from outlet {source}",
            summary=SUMMARY,
            published=T0 - timedelta(minutes=n),
            authors=(Author("Reporter"),),
            categories=("tech",),
        )
        for n in range(per_source)
    )
    return ParsedFeed(url=f"https://outlet{source}.example/feed", version="rss20", entries=entries)


def definitions(count: int) -> list[SourceDefinition]:
    return [
        SourceDefinition(f"s{i}", f"https://outlet{i}.example/feed", None, HOUR)
        for i in range(count)
    ]


@asynccontextmanager
async def fresh_store(kind: str, pg: str | None, folder: str) -> AsyncIterator[Store]:
    if kind == "sqlite":
        store = Store.open(f"sqlite:///{folder}/{uuid.uuid4().hex}.db")
        try:
            await ensure_schema(store)
            yield store
        finally:
            await store.close()
        return
    assert pg is not None
    import psycopg

    schema = f"bench_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg, autocommit=True) as admin:
        admin.execute(f'CREATE SCHEMA "{schema}"')
        base = pg.replace("postgresql://", "postgresql+psycopg://", 1)
        store = Store.open(f"{base}?options=-csearch_path%3D{schema}")
        try:
            await ensure_schema(store)
            yield store
        finally:
            await store.close()
            admin.execute(f'DROP SCHEMA "{schema}" CASCADE')


async def bench_ingest(
    kind: str, pg: str | None, folder: str, sources: int, per: int, block: int
) -> None:
    """Both sides, each into its own fresh store, interleaved ``block`` sources at a time so
    that they share the machine's load alike (it is often shared); each side's time is the
    sum of its blocks. Also each side's process CPU time (on SQLite the database work is in
    the process; PostgreSQL's server is not counted)."""
    docs = [document(i, per) for i in range(sources)]
    rows = [
        [
            _new_row(f"s{i}", key, e, content_hash(e), canonical_link(e), T0)
            for key, e in zip(entry_keys(doc.entries), doc.entries, strict=True)
        ]
        for i, doc in enumerate(docs)
    ]
    normalize_url.cache_clear()  # feedmill meets every link for the first time, as before
    wall = {"feedmill": 0.0, "bare": 0.0}
    cpu = {"feedmill": 0.0, "bare": 0.0}
    async with (
        fresh_store(kind, pg, folder) as store,
        fresh_store(kind, pg, folder) as bare_store,
    ):
        await store.sync_sources(definitions(sources), T0)
        await bare_store.sync_sources(definitions(sources), T0)
        for first in range(0, sources, block):
            span = range(first, min(first + block, sources))
            wall0, cpu0 = time.perf_counter(), time.process_time()
            for i in span:
                await store.ingest(f"s{i}", docs[i], Validators(), T0, T0 + HOUR)
            wall1, cpu1 = time.perf_counter(), time.process_time()
            for i in span:
                async with bare_store.engine.begin() as conn:
                    await conn.execute(insert(entries_table), rows[i])
            wall2, cpu2 = time.perf_counter(), time.process_time()
            wall["feedmill"] += wall1 - wall0
            wall["bare"] += wall2 - wall1
            cpu["feedmill"] += cpu1 - cpu0
            cpu["bare"] += cpu2 - cpu1
    n = sources * per
    pipeline, bare = wall["feedmill"], wall["bare"]
    print(
        f"ingest {kind}: {n} entries; feedmill {pipeline:.2f} s ({n / pipeline:,.0f}/s), "
        f"bare executemany {bare:.2f} s ({n / bare:,.0f}/s), ratio {pipeline / bare:.2f}; "
        f"process CPU {cpu['feedmill']:.2f} s / {cpu['bare']:.2f} s = "
        f"{cpu['feedmill'] / cpu['bare']:.2f}"
    )


async def fill(store: Store, total: int, sources: int = 100) -> None:
    """``total`` entries over ``sources`` sources, written with executemany in big batches."""
    await store.sync_sources(definitions(sources), T0)
    batch: list[dict[str, Any]] = []
    for n in range(total):
        source = n % sources
        e = ParsedEntry(
            id=f"e{n}",
            link=f"https://outlet{source}.example/{n}",
            title=f"{'GPU' if (n // sources) % 2 == 0 else 'Local'} story {n}",
            summary=SUMMARY,
        )
        row = _new_row(f"s{source}", f"e{n}", e, "0" * 64, e.link, T0)
        row["sort_at"] = row["first_seen_at"] = T0 - timedelta(seconds=n)
        batch.append(row)
        if len(batch) == 20_000:
            async with store.engine.begin() as conn:
                await conn.execute(insert(entries_table), batch)
            batch = []
    if batch:
        async with store.engine.begin() as conn:
            await conn.execute(insert(entries_table), batch)
    async with store.engine.begin() as conn:
        await conn.execute(text("ANALYZE"))


FEED = FeedDefinition(
    id="gpu",
    title="GPU",
    source_ids=tuple(f"s{i}" for i in range(0, 100, 5)),
    include=("GPU",),
    limit=50,
)


def fresh_publisher(store: Store) -> Publisher:
    """A publisher with nothing cached: each render selects and renders anew."""
    return Publisher(store, [FEED], Site("https://news.example.org/", "bench"), clock=lambda: T0)


async def time_renders(stores: dict[int, Store], rounds: int = 30) -> dict[int, float]:
    """Best select + render time of each store, the stores taking turns a round each, so
    that both see the same machine (its speed drifts over minutes)."""
    best = dict.fromkeys(stores, float("inf"))
    for store in stores.values():
        await fresh_publisher(store).render_atom("gpu")  # warm the database's caches
    for _ in range(rounds):
        for size, store in stores.items():
            publisher = fresh_publisher(store)  # not the rendered-feed cache: select + render
            start = time.perf_counter()
            rendered = await publisher.render_atom("gpu")
            best[size] = min(best[size], time.perf_counter() - start)
            assert publisher.renders == 1
            assert rendered.body.count(b"<entry") == 50, "the feed must carry 50 entries"
    return best


async def explain(store: Store) -> str:
    ids = ", ".join(f"'{s}'" for s in FEED.source_ids)
    query = (
        f"SELECT id FROM entries WHERE source_id IN ({ids}) "
        "ORDER BY sort_at DESC, id DESC LIMIT 200"
    )
    prefix = "EXPLAIN QUERY PLAN " if store.engine.dialect.name == "sqlite" else "EXPLAIN "
    async with store.engine.connect() as conn:
        rows = (await conn.execute(text(prefix + query))).all()
    return "\n".join("    " + " | ".join(str(c) for c in row) for row in rows)


async def bench_render(kind: str, pg: str | None, folder: str, large: int) -> None:
    async with AsyncExitStack() as stack:
        stores: dict[int, Store] = {}
        for size in (1_000, large):
            store = stores[size] = await stack.enter_async_context(fresh_store(kind, pg, folder))
            start = time.perf_counter()
            await fill(store, size)
            print(f"render {kind}: store of {size:,} built in {time.perf_counter() - start:.1f} s")
            print(f"  plan ({size:,}):\n{await explain(store)}")
        timings = await time_renders(stores)
    for size, seconds in timings.items():
        print(
            f"render {kind}: {size:,} entries, select+render 50 entries best {seconds * 1e3:.2f} ms"
        )
    print(f"render {kind}: ratio {large:,} / 1,000 = {timings[large] / timings[1_000]:.2f}")


def postgres_available(url: str) -> bool:
    try:
        import psycopg

        with psycopg.connect(url, connect_timeout=3):
            return True
    except Exception as exc:
        print(f"PostgreSQL skipped: {exc}")
        return False


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432/test")
    parser.add_argument("--sources", type=int, default=2000)
    parser.add_argument("--per-source", type=int, default=50)
    parser.add_argument("--large", type=int, default=1_000_000)
    parser.add_argument("--only", choices=["ingest", "render"])
    parser.add_argument("--skip-large", action="store_true", help="only the ingest part")
    parser.add_argument("--rounds", type=int, default=1, help="ingest rounds")
    parser.add_argument("--block", type=int, default=50, help="ingest: sources per turn")
    args = parser.parse_args()
    if args.skip_large:
        args.only = "ingest"
    print(f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    kinds = ["sqlite"] + (["postgresql"] if postgres_available(args.postgres) else [])
    with tempfile.TemporaryDirectory() as folder:
        for kind in kinds:
            for _ in range(args.rounds if args.only != "render" else 0):
                await bench_ingest(
                    kind, args.postgres, folder, args.sources, args.per_source, args.block
                )
            if args.only != "ingest":
                await bench_render(kind, args.postgres, folder, args.large)


if __name__ == "__main__":
    asyncio.run(main())
