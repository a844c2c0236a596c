"""Retention: remove a source's old entries and leave a tombstone for each.

    victims = entries older than now - max_age (by sort time)
            + entries past the newest max_entries (by sort time, then row id)
    for each victim: tombstone (source, entry key), leave its story, leave the full-text
                     index, then delete the entry and the change times of the archive pages
                     it named (store.documents)

An upstream that still lists a pruned entry does not bring it back as new: store.ingest skips
keys that have a tombstone. Tombstones are a source id and a key each; they go when their
source is deleted.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, delete, or_, select
from sqlalchemy.dialects import postgresql, sqlite

from store.model import Retention
from store.search.index import unindex_entries
from store.story_store import forget_entries
from store.tables import EntryRow, FeedDocumentRow, TombstoneRow

_CHUNK = 500


def prune_source(
    conn: Connection,
    source_id: str,
    retention: Retention,
    now: datetime,
    pruned: Callable[[list[str]], None] | None = None,
) -> int:
    """Apply ``retention`` to ``source_id`` inside the caller's transaction; return how many.
    No statement at all when the source has no retention limits. ``pruned`` is told the
    uids removed (the story index forgets them once the transaction commits)."""
    victims = _victims(conn, source_id, retention, now)
    if not victims:
        return 0
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    rows = [{"source_id": source_id, "entry_key": key, "pruned_at": now} for _, key, _ in victims]
    bury = dialect.insert(TombstoneRow).on_conflict_do_nothing(
        index_elements=["source_id", "entry_key"]
    )
    for start in range(0, len(rows), _CHUNK):
        conn.execute(bury, rows[start : start + _CHUNK])
    uids = [uid for _, _, uid in victims]
    forget_entries(conn, uids, now)  # out of their stories
    if pruned is not None:
        pruned(uids)
    ids = [row_id for row_id, _, _ in victims]
    uids = [uid for _, _, uid in victims]
    unindex_entries(conn, ids)
    for start in range(0, len(ids), _CHUNK):
        conn.execute(delete(EntryRow).where(EntryRow.id.in_(ids[start : start + _CHUNK])))
        pages = uids[start : start + _CHUNK]  # the archive pages they named are gone too
        conn.execute(delete(FeedDocumentRow).where(FeedDocumentRow.page.in_(pages)))
    return len(victims)


def _victims(
    conn: Connection, source_id: str, retention: Retention, now: datetime
) -> Sequence[tuple[int, str, str]]:
    """(row id, entry key, uid) of the entries ``retention`` removes."""
    conditions: list[Any] = []
    if retention.max_age is not None:
        conditions.append(EntryRow.sort_at < now - retention.max_age)
    if retention.max_entries is not None:
        keep = (
            select(EntryRow.id)
            .where(EntryRow.source_id == source_id)
            .order_by(EntryRow.sort_at.desc(), EntryRow.id.desc())
            .limit(retention.max_entries)
        )
        conditions.append(EntryRow.id.not_in(keep))
    if not conditions:
        return []
    query = select(EntryRow.id, EntryRow.entry_key, EntryRow.uid).where(
        EntryRow.source_id == source_id, or_(*conditions)
    )
    return [(row_id, key, uid) for row_id, key, uid in conn.execute(query).all()]
