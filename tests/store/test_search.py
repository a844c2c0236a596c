"""Full-text search: each query form gives the same answers on SQLite and on PostgreSQL, and
the ones the in-memory evaluator gives; the index follows ingest, updates and retention."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest

from sources import ParsedFeed, Validators
from store import Retention, Store, StoredEntry, ensure_schema
from store.search import QueryError, matches, parse_query, search_document
from tests.postgres import private_schema
from tests.store.search_data import FEEDS, HOUR, NOW, QUERIES, SOURCES, document, entry

pytestmark = pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")


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
                e.title, e.summary, e.content, e.authors, e.categories,
                f"{e.source_id} {titles[e.source_id]}",
            ),
            e.sort_at,
            NOW,
        )
    ]
    return [e.entry_key for e in hits]


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
