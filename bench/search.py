"""Full-text search on a large store, SQLite and PostgreSQL: query latency, deep paging, and
what keeping the index costs the ingest.

    python bench/search.py                           # 1,000,000 entries, both databases
    python bench/search.py --entries 100000          # a smaller store (quicker, same checks)
    python bench/search.py --databases sqlite --skip-ingest
    python bench/search.py --ingest 100000 --entries 0    # only the ingest cost
    python bench/search.py --databases postgresql --keep s16m --skip-ingest
                                                     # a kept store: fill once, query again

Entries are generated from the real corpus' vocabulary (../shared/corpus: the words of the
127 real feed documents and the 6,366 news headlines, each drawn as often as it occurs
there): titles of 6-14 words, bodies of 40-200 words, an author and two categories from
pools, 200 sources, sort times over two years in an order unlike the row order. The store is
filled with bulk INSERTs and the index built by the migration's own function
(store.search.index.create_index), timed: that is what migration 0011 costs an old store.

Queries (``--queries`` of each kind, interleaved round by round so load hits all alike):
    two words     two words drawn as often as they occur in the corpus (common pairs too)
    phrase+field  title:"w1 w2" w3: two neighbouring words of a stored title and a word of
                  the same entry's body (so each has at least one hit)
    paging        page 1 and page 20 (keyset, 50 a page) of two-word queries with >= 1,000
                  hits: the ratio of their medians
Targets: two words <= 50 ms at p95, phrase+field <= 100 ms at p95, page 20 <= 1.5x page 1.

Ingest cost (``--ingest`` entries, documents of 50): Store.ingest with the index against the
same ingest with the index hook replaced by nothing, each into its own fresh store,
interleaved a block at a time; prints the ratio (target <= 1.3).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import insert, text  # noqa: E402

import store.ingest as ingest_module  # noqa: E402
from sources.errors import SourceError  # noqa: E402
from sources.model import Author, ParsedEntry, ParsedFeed, Validators  # noqa: E402
from sources.parse import parse_document  # noqa: E402
from store import SourceDefinition, Store, ensure_schema  # noqa: E402
from store.database import create_thread_engine  # noqa: E402
from store.identity import content_hash, entry_uid  # noqa: E402
from store.search import parse_query  # noqa: E402
from store.search.index import create_index  # noqa: E402
from store.search.text import html_text, search_document, tokens  # noqa: E402
from store.stories.evaluate import read_news_dedup  # noqa: E402
from store.tables import Base  # noqa: E402

POSTGRES = "postgresql://postgres@127.0.0.1:5432/test"
NOW = datetime(2026, 11, 30, tzinfo=UTC)
SOURCES = 200
HOUR = timedelta(hours=1)
PAGE = 50
entries_table = Base.metadata.tables["entries"]


# -- the vocabulary and the entries ----------------------------------------------------------


def corpus_vocabulary(corpus: Path) -> tuple[list[str], list[int]]:
    """Every word of the corpus' feeds and headlines with how often it occurs."""
    counts: Counter[str] = Counter()
    for path in sorted((corpus / "real").glob("*")):
        if path.suffix in (".tsv",):
            continue
        try:
            feed = parse_document(path.read_bytes(), "https://corpus.example/")
        except SourceError:  # a document feedmill cannot read adds no words
            continue
        for e in feed.entries:
            counts.update(tokens(e.title or ""))
            counts.update(tokens(html_text(e.content or e.summary)))
    headlines, _ = read_news_dedup(corpus / "news-dedup" / "uci_news_aggregator_first6366.csv")
    for h in headlines:
        counts.update(tokens(" ".join(filter(None, (h.title, h.text)))))
    words = sorted(counts, key=lambda w: (-counts[w], w))
    return words, [counts[w] for w in words]


class Generator:
    def __init__(self, words: list[str], weights: list[int], seed: int = 16) -> None:
        self.rng = random.Random(seed)
        self.words = words
        total, self.cumulative = 0, []
        for w in weights:
            total += w
            self.cumulative.append(total)
        self.authors = [" ".join(self.draw(2)).title() for _ in range(2000)]
        self.categories = [w.title() for w in words[50:350]]

    def draw(self, k: int) -> list[str]:
        return self.rng.choices(self.words, cum_weights=self.cumulative, k=k)

    def entry(self, i: int) -> dict[str, Any]:
        title = " ".join(self.draw(self.rng.randint(6, 14))).capitalize()
        body = " ".join(self.draw(self.rng.randint(40, 200)))
        # Mostly in arrival order, a tenth back-dated by up to 30 days.
        when = NOW - timedelta(days=730) * (1 - i / self.count)
        if self.rng.random() < 0.1:
            when -= timedelta(days=self.rng.random() * 30)
        return {
            "title": title,
            "summary": f"<p>{body}</p>",
            "authors": [self.rng.choice(self.authors)],
            "categories": self.rng.sample(self.categories, 2),
            "published": when,
        }

    count = 1


def parsed(values: dict[str, Any], key: str) -> ParsedEntry:
    return ParsedEntry(
        id=key,
        link=f"https://example.org/{key}",
        title=values["title"],
        summary=values["summary"],
        authors=tuple(Author(name) for name in values["authors"]),
        categories=tuple(values["categories"]),
        published=values["published"],
    )


def definitions() -> list[SourceDefinition]:
    return [
        SourceDefinition(f"s{i:03d}", f"https://s{i}.example/feed", f"Source {i}", HOUR)
        for i in range(SOURCES)
    ]


@asynccontextmanager
async def fresh_store(kind: str, folder: str) -> AsyncIterator[Store]:
    if kind == "sqlite":
        store = Store.open(f"sqlite:///{folder}/{uuid.uuid4().hex}.db")
        try:
            await ensure_schema(store)
            yield store
        finally:
            await store.close()
        return
    import psycopg

    schema = f"bench_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(POSTGRES, autocommit=True) as admin:
        admin.execute(f'CREATE SCHEMA "{schema}"')
        base = POSTGRES.replace("postgresql://", "postgresql+psycopg://", 1)
        store = Store.open(f"{base}?options=-csearch_path%3D{schema}")
        try:
            await ensure_schema(store)
            yield store
        finally:
            await store.close()
            admin.execute(f'DROP SCHEMA "{schema}" CASCADE')


# -- filling a large store -------------------------------------------------------------------


def fill(store: Store, generator: Generator, count: int) -> list[dict[str, Any]]:
    """Bulk-insert ``count`` entries, then build the index as migration 0011 does; returns
    the titles and dates (for phrase queries), prints the times."""
    engine = create_thread_engine(store.engine)
    assert engine is not None
    generator.count = count
    kept: list[dict[str, Any]] = []
    started = time.perf_counter()
    with engine.begin() as conn:
        conn.execute(text("DROP TABLE IF EXISTS entry_search"))  # built below, after the rows
    for first in range(0, count, 10_000):
        rows = []
        for i in range(first, min(first + 10_000, count)):
            values = generator.entry(i)
            source = f"s{generator.rng.randrange(SOURCES):03d}"
            key = f"e{i}"
            rows.append(
                {
                    "source_id": source,
                    "entry_key": key,
                    "uid": entry_uid(source, key),
                    "link": f"https://example.org/{key}",
                    "content": None,
                    "enclosures": [],
                    "updated": None,
                    "sort_at": values["published"],
                    "first_seen_at": values["published"],
                    "changed_at": values["published"],
                    "content_hash": content_hash(parsed(values, key)),
                    **values,
                }
            )
            if i % 97 == 0:
                kept.append(values)
        with engine.begin() as conn:
            conn.execute(insert(entries_table), rows)
    inserted = time.perf_counter()

    with engine.begin() as conn:
        last = [0.0]

        def progress(done: int, total: int) -> None:
            if time.perf_counter() - last[0] > 30:
                last[0] = time.perf_counter()
                print(f"    indexed {done:,} of {total:,}", flush=True)

        create_index(conn, batch=10_000, progress=progress)
    if store.engine.dialect.name == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM ANALYZE entry_search"))
            conn.execute(text("VACUUM ANALYZE entries"))
    built = time.perf_counter()
    engine.dispose()
    print(
        f"  filled {count:,} entries in {inserted - started:.0f} s; index built in "
        f"{built - inserted:.0f} s ({(built - inserted) / count * 1e6:.0f} us an entry)",
        flush=True,
    )
    return kept


# -- queries ---------------------------------------------------------------------------------


async def run_query(store: Store, query: str, pages: int = 1) -> tuple[float, int]:
    """Seconds to read ``pages`` pages of PAGE entries (the last page's time alone when
    pages > 1, keyset paging from the previous page's last entry), and the hits read."""
    parsed_query = parse_query(query)
    before: str | None = None
    seconds, hits = 0.0, 0
    for _ in range(pages):
        started = time.perf_counter()
        found = []
        stream = store.search_entries(parsed_query, NOW, before=before, batch=PAGE + 1)
        async for page in stream:
            found += page
            break
        await stream.aclose()
        seconds = time.perf_counter() - started
        hits += min(len(found), PAGE)
        if len(found) <= PAGE:
            break
        before = found[PAGE - 1].uid
    return seconds, hits


def p95(values: Sequence[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))]


async def bench_queries(
    store: Store, generator: Generator, kept: list[dict[str, Any]], count: int
) -> dict[str, float]:
    rng = random.Random(7)
    two = [" ".join(generator.draw(2)) for _ in range(count)]
    phrases = []
    for values in rng.sample(kept, min(count, len(kept))):
        words = tokens(values["title"])
        at = rng.randrange(len(words) - 1)
        also = rng.choice(tokens(html_text(values["summary"])))  # a word of the same entry
        phrases.append(f'title:"{words[at]} {words[at + 1]}" {also}')
    deep: list[str] = []
    while len(deep) < max(10, count // 10):
        query = " ".join(generator.draw(2))
        _, hits = await run_query(store, query, pages=1)
        if hits == PAGE and (await run_query(store, query, pages=20))[1] == 20 * PAGE:
            deep.append(query)
    times: dict[str, list[float]] = {"two": [], "phrase": [], "page1": [], "page20": []}
    hit_counts: dict[str, list[int]] = {"two": [], "phrase": []}
    for round_ in range(count):  # interleaved: each round one query of each kind
        seconds, hits = await run_query(store, two[round_])
        times["two"].append(seconds)
        hit_counts["two"].append(hits)
        seconds, hits = await run_query(store, phrases[round_ % len(phrases)])
        times["phrase"].append(seconds)
        hit_counts["phrase"].append(hits)
        query = deep[round_ % len(deep)]
        times["page1"].append((await run_query(store, query, pages=1))[0])
        times["page20"].append((await run_query(store, query, pages=20))[0])
    for kind in ("two", "phrase"):
        full = sum(1 for h in hit_counts[kind] if h == PAGE)
        print(
            f"  {kind:7} p50 {statistics.median(times[kind]) * 1000:6.1f} ms  "
            f"p95 {p95(times[kind]) * 1000:6.1f} ms  max {max(times[kind]) * 1000:6.1f} ms  "
            f"({full} of {len(hit_counts[kind])} with a full page, "
            f"median {statistics.median(hit_counts[kind]):.0f} hits)"
        )
    ratio = statistics.median(times["page20"]) / statistics.median(times["page1"])
    print(
        f"  paging  page 1 p50 {statistics.median(times['page1']) * 1000:.1f} ms, page 20 p50 "
        f"{statistics.median(times['page20']) * 1000:.1f} ms: ratio {ratio:.2f} (target <= 1.5)"
    )
    return {
        "two_p95": p95(times["two"]),
        "phrase_p95": p95(times["phrase"]),
        "paging_ratio": ratio,
    }


# -- ingest cost -----------------------------------------------------------------------------


async def bench_ingest(kind: str, generator: Generator, count: int, folder: str) -> float:
    generator.count = count
    docs = []
    for first in range(0, count, 50):
        source = f"s{(first // 50) % SOURCES:03d}"
        entries = tuple(parsed(generator.entry(i), f"i{i}") for i in range(first, first + 50))
        docs.append(
            (source, ParsedFeed(url="https://x.example/", version="rss20", entries=entries))
        )
    real = ingest_module.index_entries
    seconds = {"with": 0.0, "without": 0.0}

    def nothing(*_: Any) -> None:
        return None

    async with fresh_store(kind, folder) as indexed, fresh_store(kind, folder) as bare:
        for s in (indexed, bare):
            await s.sync_sources(definitions(), NOW)
        for block in range(0, len(docs), 20):
            for side, store, hook in (("with", indexed, real), ("without", bare, nothing)):
                ingest_module.index_entries = hook  # type: ignore[assignment]
                started = time.perf_counter()
                for source, doc in docs[block : block + 20]:
                    await store.ingest(source, doc, Validators(), NOW, NOW + HOUR)
                seconds[side] += time.perf_counter() - started
        ingest_module.index_entries = real
    ratio = seconds["with"] / seconds["without"]
    print(
        f"  ingest of {count:,}: {seconds['without']:.1f} s without the index, "
        f"{seconds['with']:.1f} s with it: ratio {ratio:.2f} (target <= 1.3)"
    )
    tokenising = time.perf_counter()
    for _, doc in docs:
        for e in doc.entries:
            search_document(
                e.title, e.summary, e.content, e.authors, e.categories, "s000 S"
            ).fts_row()
    tokenising = time.perf_counter() - tokenising
    floor = await database_floor(kind, docs, folder)
    floor_ratio = (seconds["without"] + floor) / seconds["without"]
    print(
        f"    of which tokenising (feedmill's, Python) {tokenising:.1f} s; the database's own "
        f"full-text insert of the same text alone (its parser, bare driver) {floor:.1f} s: "
        f"floor of any index kept in the transaction {floor_ratio:.2f}"
    )
    return ratio


async def database_floor(kind: str, docs: list[tuple[str, ParsedFeed]], folder: str) -> float:
    """Seconds to insert the documents' text into a bare full-text table, a transaction a
    document, through the bare driver: the database's own share of keeping an index (FTS5
    with its tokenizer; PostgreSQL's to_tsvector('simple') into a GIN-indexed table)."""
    texts = [
        [
            (e.title or "", html_text(e.summary), " ".join(a.name for a in e.authors))
            for e in d.entries
        ]
        for _, d in docs
    ]
    if kind == "sqlite":
        import sqlite3

        db = sqlite3.connect(f"{folder}/{uuid.uuid4().hex}-floor.db", isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        db.execute("CREATE VIRTUAL TABLE f USING fts5(title, body, author, columnsize = 0)")
        started = time.perf_counter()
        for rows in texts:
            db.execute("BEGIN")
            db.executemany("INSERT INTO f (title, body, author) VALUES (?, ?, ?)", rows)
            db.execute("COMMIT")
        seconds = time.perf_counter() - started
        db.close()
        return seconds
    import psycopg

    with psycopg.connect(POSTGRES) as pg:
        pg.execute("CREATE TEMP TABLE f (id serial primary key, d tsvector)")
        pg.execute("CREATE INDEX ON f USING gin (d)")
        pg.commit()
        started = time.perf_counter()
        for rows in texts:
            with pg.cursor() as cur:
                cur.executemany(
                    "INSERT INTO f (d) "
                    "VALUES (to_tsvector('simple', %s || ' ' || %s || ' ' || %s))",
                    rows,
                )
            pg.commit()
        return time.perf_counter() - started


async def main_async(args: argparse.Namespace) -> None:
    corpus = Path(os.environ.get("FEEDMILL_CORPUS") or ROOT.parent / "shared" / "corpus")
    words, weights = corpus_vocabulary(corpus)
    print(f"vocabulary: {len(words):,} words from {corpus}")
    print(f"load average at start: {os.getloadavg()}", flush=True)
    kinds = [k for k in ("sqlite", "postgresql") if k in args.databases.split(",")]
    with tempfile.TemporaryDirectory() as folder:
        for kind in kinds:
            print(f"{kind}:")
            if args.entries and args.keep and kind == "postgresql":
                await queries_on_kept_schema(args, Generator(words, weights))
            elif args.entries:
                async with fresh_store(kind, folder) as store:
                    await store.sync_sources(definitions(), NOW)
                    generator = Generator(words, weights)
                    kept = fill(store, generator, args.entries)
                    await bench_queries(store, generator, kept, args.queries)
            if args.ingest:
                await bench_ingest(kind, Generator(words, weights, seed=5), args.ingest, folder)
            print(f"  load average: {os.getloadavg()}", flush=True)


async def queries_on_kept_schema(args: argparse.Namespace, generator: Generator) -> None:
    """``--keep SCHEMA``: fill that PostgreSQL schema once (it is kept), then query it."""
    import psycopg

    with psycopg.connect(POSTGRES, autocommit=True) as admin:
        admin.execute(f'CREATE SCHEMA IF NOT EXISTS "{args.keep}"')
    base = POSTGRES.replace("postgresql://", "postgresql+psycopg://", 1)
    store = Store.open(f"{base}?options=-csearch_path%3D{args.keep}")
    try:
        await ensure_schema(store)
        await store.sync_sources(definitions(), NOW)
        async with store.engine.connect() as conn:
            stored = (await conn.execute(text("SELECT count(*) FROM entries"))).scalar_one()
            if stored:
                rows = await conn.execute(
                    text("SELECT title, summary FROM entries WHERE id % 97 = 1")
                )
                kept = [{"title": t, "summary": s} for t, s in rows]
                print(f"  {stored:,} entries already in schema {args.keep}")
        if not stored:
            kept = fill(store, generator, args.entries)
        await bench_queries(store, generator, kept, args.queries)
    finally:
        await store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--ingest", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--databases", default="sqlite,postgresql", help="sqlite,postgresql")
    parser.add_argument(
        "--keep", metavar="SCHEMA", help="PostgreSQL: fill this schema once and keep it"
    )
    parser.add_argument("--skip-ingest", action="store_true")
    args = parser.parse_args()
    if args.skip_ingest:
        args.ingest = 0
    asyncio.run(main_async(args))


if __name__ == "__main__":
    main()
