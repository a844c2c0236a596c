"""Full-text search: each query form gives the same answers on SQLite and on PostgreSQL, and
the ones the in-memory evaluator gives; the index follows ingest, updates and retention."""

from __future__ import annotations

import dataclasses
import logging
import random
import re
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import text

from sources import ParsedFeed, Validators
from store import Retention, Store, StoredEntry, ensure_schema
from store.database import reading
from store.migrate import alembic_config, current_revision
from store.search import QueryError, SearchTimeoutError, matches, parse_query, search_document
from store.search import match as search_match
from store.search.reader import _budget
from store.search.text import tokens
from tests.postgres import private_schema
from tests.store.search_data import FEEDS, HOUR, NOW, QUERIES, SOURCES, document


async def _filled(url: str) -> Store:
    store = Store.open(url)
    await ensure_schema(store)
    await store.sync_sources(SOURCES, NOW)
    for source_id in FEEDS:
        await store.ingest(source_id, document(source_id), Validators(), NOW, NOW + HOUR)
    return store


@pytest.fixture
async def stores(tmp_path: Path) -> AsyncIterator[dict[str, Store]]:
    with private_schema() as url:
        opened = {
            "sqlite": await _filled(f"sqlite:///{tmp_path / 'feedmill.db'}"),
            "postgresql": await _filled(url),
        }
        yield opened
        for store in opened.values():
            await store.close()


async def found(store: Store, query: str, **options: object) -> list[str]:
    pages = store.search_entries(parse_query(query), NOW, batch=3, **options)  # type: ignore[arg-type]
    return [e.entry_key async for page in pages for e in page]


async def stored(store: Store) -> list[StoredEntry]:
    ids = [s.id for s in SOURCES]
    return [e async for page in store.newest_entries(ids) for e in page]


def expected(entries: list[StoredEntry], query: str) -> list[str]:
    """The in-memory evaluator's answer, newest first (sort time, then row order)."""
    titles = {s.id: s.title or "" for s in SOURCES}
    parsed = parse_query(query)
    hits = [
        e
        for e in entries
        if matches(
            parsed,
            search_document(
                e.title,
                e.summary,
                e.content,
                e.authors,
                e.categories,
                f"{e.source_id} {titles[e.source_id]}",
            ),
            e.sort_at,
            NOW,
        )
    ]
    return [e.entry_key for e in hits]


@pytest.fixture(params=["recent rows", "walk", "gin index"])
def window(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """PostgreSQL's ways to answer (store.search.match._postgres_keys): the tests' few
    entries all fit in the first window of recent rows; windows of one row make it walk on
    window by window; a walk limit of 3 rows sends most searches on to the GIN index."""
    if request.param == "walk":
        monkeypatch.setattr(search_match, "RECENT_WINDOW", 1)
    if request.param == "gin index":
        monkeypatch.setattr(search_match, "RECENT_WINDOW", 2)
        monkeypatch.setattr(search_match, "WALK_LIMIT", 3)


@pytest.mark.usefixtures("window")
async def test_every_query_form_answers_alike_on_both_databases(stores: dict[str, Store]) -> None:
    entries = await stored(stores["sqlite"])
    answers = {}
    for query in QUERIES:
        want = expected(entries, query)
        on_sqlite = await found(stores["sqlite"], query)
        on_postgres = await found(stores["postgresql"], query)
        assert on_sqlite == on_postgres == want, query
        answers[query] = want
    # The forms really select: not everything, not nothing (except the one that must not).
    assert answers["nothingmatchesthis"] == []
    assert all(0 < len(v) < len(entries) for k, v in answers.items() if k != "nothingmatchesthis")
    assert answers["lenovo"] == ["r4", "a2", "r1", "s1"]
    assert answers['"server plant"'] == ["s5", "r1"]
    assert answers["cafe"] == ["s4"] and answers["ZURICH"] == ["s4"]
    assert answers["联想"] == ["a1"]
    assert answers["source:register"] == ["r4", "r3", "r2", "r1"]
    assert answers["register"] == ["s5", "r4", "r3", "r2", "r1"]


def random_queries(count: int, seed: int) -> list[str]:
    """Queries built at random from the entries' words, fields, phrases, OR, NOT, groups."""
    rng = random.Random(seed)
    words = sorted(
        {t for e in (x for f in FEEDS.values() for x in f) for t in tokens(e.title or "")}
    )
    words += ["server", "plant", "tianjin", "lenovo", "ai", "jane", "hardware", "register"]

    def term() -> str:
        roll = rng.random()
        if roll < 0.15:
            return f'"{rng.choice(words)} {rng.choice(words)}"'
        if roll < 0.3:
            field = rng.choice(["title", "author", "category", "tag", "source"])
            return f"{field}:{rng.choice(words)}"
        if roll < 0.38:
            word = rng.choice([w for w in words if len(w) >= 3])
            return word[: rng.randint(3, len(word))] + "*"
        return rng.choice(words)

    def group(depth: int) -> str:
        items = [
            term() if depth > 1 or rng.random() < 0.7 else f"({group(depth + 1)})"
            for _ in range(rng.randint(1, 3))
        ]
        if rng.random() < 0.3:
            return " OR ".join(items)
        negated = f" -{term()}" if rng.random() < 0.3 else ""
        return " ".join(items) + negated

    return [group(0) for _ in range(count)]


@pytest.mark.usefixtures("window")
async def test_random_queries_answer_alike_on_both_databases(stores: dict[str, Store]) -> None:
    entries = await stored(stores["sqlite"])
    hits = 0
    for query in random_queries(150, seed=16):
        want = expected(entries, query)
        assert await found(stores["sqlite"], query) == want, query
        assert await found(stores["postgresql"], query) == want, query
        hits += bool(want)
    assert hits > 30  # the queries are not all empty


@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
async def test_paging_restricting_and_keeping_up_with_changes(
    stores: dict[str, Store], database: str
) -> None:
    store = stores[database]
    assert await found(store, "server", before=(await _uid(store, "s5"))) == await found(
        store, "server before:2026-11-10"
    )
    assert await found(store, "lenovo", source_ids=["serverdesk", "asia-wire"]) == ["a2", "s1"]
    assert await found(store, "lenovo", source_ids=[]) == []
    assert await found(store, "lenovo", before="0" * 32) == []
    # An entry changes: its old words leave the index, its new ones (and new date) arrive.
    changed = dataclasses.replace(
        FEEDS["serverdesk"][1], title="Dell opens a Tianjin plant", published=NOW - HOUR
    )
    feed = ParsedFeed(url="https://x.example/", version="rss20", entries=(changed,))
    counts = await store.ingest("serverdesk", feed, Validators(), NOW, NOW + HOUR)
    assert counts.updated == 1
    assert await found(store, "prices") == []
    assert (await found(store, "tianjin plant"))[0] == "s2"


@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
async def test_retention_removes_entries_from_the_index(
    stores: dict[str, Store], database: str
) -> None:
    store = stores[database]
    await store.sync_sources(
        [dataclasses.replace(s, retention=Retention(max_entries=1)) for s in SOURCES], NOW
    )
    removed = await store.prune_entries(NOW)
    assert sum(removed.values()) == 10
    assert await found(store, "lenovo") == ["r4"]
    assert await index_rows(store) == 3  # the index holds the kept entries only


async def index_rows(store: Store) -> int:
    async with store.engine.connect() as conn:
        return int((await conn.execute(text("SELECT count(*) FROM entry_search"))).scalar_one())


async def _uid(store: Store, key: str) -> str:
    return next(e.uid for e in await stored(store) if e.entry_key == key)


@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
async def test_the_migration_indexes_entries_stored_before_it(
    stores: dict[str, Store], database: str, caplog: pytest.LogCaptureFixture
) -> None:
    store = stores[database]
    before = await found(store, "server")
    async with store.engine.begin() as conn:
        await conn.run_sync(lambda c: command.downgrade(alembic_config(c), "0010"))
    assert await current_revision(store) == "0010"
    with caplog.at_level(logging.INFO, logger="feedmill.migrations"):
        await ensure_schema(store)
    assert await found(store, "server") == before != []
    assert "search index: 13 of 13 entries indexed" in caplog.text


@pytest.mark.parametrize(
    "query, message",
    [
        ('lenovo "server plant', "unbalanced quote"),
        ("(lenovo OR dell", "never closed"),
        ("lenovo)", "has no '('"),
        ("x " * 300, "characters long"),
        (" ".join(f"w{i}" for i in range(40)), "40 words"),
        ("-lenovo", "not negated"),
        ("lenovo OR -dell", "each side of an OR"),
        ("--lenovo", "negated again"),
        ("lenovo since:yesterday", "not a date"),
        ("lenovo within:3 days", "not a duration"),
        ("(lenovo since:2026-11-01)", "top level"),
        ("lenovo OR since:2026-11-01", "OR"),
        ("lenovo since:2026-11-05 before:2026-11-01", "later than"),
        ("se*", "prefix needs"),
        ("title:", "needs a value"),
        ("title:(author:x)", "cannot be used inside"),
        ("*** --- ;;;", "no words"),
        ("x" * 101, "longer than"),
        ("(" * 20 + "a" + ")" * 20, "nested"),
    ],
)
def test_bad_queries_say_what_is_wrong(query: str, message: str) -> None:
    with pytest.raises(QueryError, match=re.escape(message)):
        parse_query(query)


@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
async def test_fts_syntax_in_a_query_is_only_words(stores: dict[str, Store], database: str) -> None:
    store = stores[database]
    for query in ["NEAR(a b) {title}: ^x", "a:b & c | !d <-> e", "'in' OR \\x", 'in" "titles']:
        try:
            parse_query(query)
        except QueryError:
            continue
        await found(store, query)  # answers, with no error from the database
    assert await found(store, "NEAR AND") == ["a4"]


@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
async def test_a_search_past_its_time_budget_stops(stores: dict[str, Store], database: str) -> None:
    store = stores[database]
    slow = text(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 100000000) "
        "SELECT count(*) FROM n"
    )
    async with reading(store.engine) as conn:
        with pytest.raises(SearchTimeoutError, match="took too long"):
            async with _budget(conn, time.monotonic() + 0.2, "slow"):
                await conn.execute(slow)
    with pytest.raises(SearchTimeoutError):
        await found(store, "lenovo", timeout=0.0)
    assert await found(store, "lenovo", timeout=5.0) == ["r4", "a2", "r1", "s1"]
