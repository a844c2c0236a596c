"""When each served document last changed: one row per (curated feed, format, page).

    digest = hash of the document rendered with a placeholder date       (feeds.publish)
    stored row has this digest          -> its changed_at
    no row, or another digest            -> changed_at = now (whole seconds), but at least
                                            one second after the stored one; written

The date is the first time any process rendered these bytes, so every web node sharing the
database sends the same ``Last-Modified`` (and Atom ``updated``) for the same ``ETag``, and a
new document always has a later date than the one before it, even within one second: a
client that sends both validators (libcurl) takes a 200 whose Last-Modified is not later than
its If-Modified-Since for "not modified" and drops it. An empty feed is dated by the first
time it was served.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from store.model import DocumentKey
from store.tables import FeedDocumentRow

_STEP = timedelta(seconds=1)  # HTTP dates have whole seconds


_KEY = (  # one row, by the parameters of _params(key)
    FeedDocumentRow.feed_id == bindparam("doc_feed"),
    FeedDocumentRow.format == bindparam("doc_format"),
    FeedDocumentRow.page == bindparam("doc_page"),
)
_ROW = select(FeedDocumentRow.digest, FeedDocumentRow.changed_at).where(*_KEY)
_CHANGE = update(FeedDocumentRow).where(*_KEY)


async def stored_change(conn: AsyncConnection, key: DocumentKey) -> tuple[str, datetime] | None:
    """The stored (digest, changed_at) of ``key``, if any."""
    row = (await conn.execute(_ROW, _params(key))).first()
    return None if row is None else (row.digest, row.changed_at)


async def record_change(
    conn: AsyncConnection, key: DocumentKey, digest: str, now: datetime
) -> datetime:
    """``key``'s change time for ``digest``, written if it is new, inside the caller's write
    transaction. Two processes that render the same new document at once agree: the second
    waits on the first's row lock (PostgreSQL) or write lock (SQLite) and reads its date."""
    for _ in range(2):
        row = (await conn.execute(_ROW.with_for_update(), _params(key))).first()
        if row is not None:
            if row.digest == digest:
                return row.changed_at  # type: ignore[no-any-return]
            changed = next_change(row.changed_at, now)
            values = {"digest": digest, "changed_at": changed}
            await conn.execute(_CHANGE, {**_params(key), **values})
            return changed
        changed = next_change(None, now)
        insert = _dialect(conn).insert(FeedDocumentRow).on_conflict_do_nothing()
        row_key = {"feed_id": key.feed_id, "format": key.format, "page": key.page}
        result = await conn.execute(insert.values(digest=digest, changed_at=changed, **row_key))
        if result.rowcount:
            return changed
    raise AssertionError("feed_documents row neither inserted nor found")


def next_change(previous: datetime | None, now: datetime) -> datetime:
    """``now`` in whole seconds, but at least a second after ``previous``."""
    moment = now.replace(microsecond=0)
    if previous is not None and moment < previous + _STEP:
        return previous + _STEP
    return moment


def _params(key: DocumentKey) -> dict[str, str]:
    return {"doc_feed": key.feed_id, "doc_format": key.format, "doc_page": key.page}


def _dialect(conn: AsyncConnection) -> Any:
    return postgresql if conn.dialect.name == "postgresql" else sqlite
