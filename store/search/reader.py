"""Searching the index from the async engine: pages of stored entries, with a time budget.

    cursor = the key of the entry ``before`` (or none), window = since/before of the query
    repeat: keys = index.matching_keys(query, window, below the cursor, a page)
            entries = those rows of entries (an index row whose entry moved or went is skipped)
            yield them; the cursor moves to the last key

The budget covers the whole walk: PostgreSQL's ``statement_timeout`` for the transaction, a
progress handler on SQLite; running out raises :class:`SearchTimeoutError`.
"""

from __future__ import annotations

import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from store.database import reading
from store.search.compile import to_fts5, to_tsquery
from store.search.match import entry_id_of, matching_keys
from store.search.query import QueryError, SearchQuery
from store.search.text import key_of_time, sort_key
from store.tables import EntryRow

_CANCELLED = "57014"  # PostgreSQL's query_canceled (statement_timeout)


class SearchTimeoutError(QueryError):
    """The search ran out of its time budget."""


async def search_pages(
    engine: AsyncEngine,
    query: SearchQuery,
    now: datetime,
    to_entry: Callable[[Any], Any],
    *,
    source_ids: Sequence[str] | None = None,
    before: str | None = None,
    batch: int = 200,
    budget: float | None = None,
) -> AsyncGenerator[list[Any], None]:
    """Pages of the entries matching ``query``, newest first (see the module docstring);
    ``budget``: seconds for the whole walk."""
    deadline = None if budget is None else time.monotonic() + budget
    postgres = engine.dialect.name == "postgresql"
    compiled = to_tsquery(query.root) if postgres else to_fts5(query.root)
    since, until = query.window(now)
    lower = None if since is None else key_of_time(since)
    upper = None if until is None else key_of_time(until)
    if before is not None:
        cursor = await _key_of(engine, before)
        if cursor is None:
            return
        upper = cursor if upper is None else min(upper, cursor)
    while True:
        async with reading(engine) as conn, _budget(conn, deadline, query.text):
            keys = await conn.run_sync(
                matching_keys,
                compiled,
                source_ids=source_ids,
                lower=lower,
                upper=upper,
                limit=batch,
            )
            rows = await _entries(conn, keys)
        page = [to_entry(rows[key]) for key in keys if key in rows]
        if page:
            yield page
        if len(keys) < batch:
            return
        upper = keys[-1]


async def _key_of(engine: AsyncEngine, uid: str) -> int | None:
    async with reading(engine) as conn:
        row = (
            await conn.execute(select(EntryRow.sort_at, EntryRow.id).where(EntryRow.uid == uid))
        ).first()
    return None if row is None else sort_key(row.sort_at, row.id)


async def _entries(conn: AsyncConnection, keys: Sequence[int]) -> dict[int, Any]:
    """The entry rows of ``keys`` whose key is still the same, by key."""
    if not keys:
        return {}
    ids = [entry_id_of(key) for key in keys]
    rows = (await conn.execute(select(EntryRow).where(EntryRow.id.in_(ids)))).all()
    found = {sort_key(row.sort_at, row.id): row for row in rows}
    return {key: found[key] for key in keys if key in found}


@asynccontextmanager
async def _budget(conn: AsyncConnection, deadline: float | None, text: str) -> AsyncIterator[None]:
    if deadline is None:
        yield
        return
    left = deadline - time.monotonic()
    if left <= 0:
        raise _timed_out(text)
    if conn.dialect.name == "postgresql":
        await conn.exec_driver_sql(f"SET LOCAL statement_timeout = {max(1, int(left * 1000))}")
        try:
            yield
        except DBAPIError as exc:
            if getattr(exc.orig, "sqlstate", None) == _CANCELLED:
                raise _timed_out(text) from exc
            raise
        return
    driver = (await conn.get_raw_connection()).driver_connection
    assert driver is not None
    await driver.set_progress_handler(lambda: time.monotonic() > deadline, 1000)
    try:
        yield
    except OperationalError as exc:
        if "interrupted" in str(exc.orig):
            raise _timed_out(text) from exc
        raise
    finally:
        await driver.set_progress_handler(None, 0)


def _timed_out(text: str) -> SearchTimeoutError:
    return SearchTimeoutError(
        f"the search for {text[:80]!r} took too long; use rarer words or a narrower time"
    )
