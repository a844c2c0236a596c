"""Write one parsed document's entries for one source: insert new, update changed, skip the rest.

    keys   = entry_keys(document)                       # store.identity
    known  = stored (key -> row id, content hash); buried = tombstoned keys (retention)
    new    -> INSERT ... ON CONFLICT (source_id, entry_key) DO NOTHING RETURNING entry_key
    changed content hash -> UPDATE in place (same uid, new `changed_at`)
    tombstoned and not stored -> ignored
    new (really inserted) -> each assigned a story (store.story_index), same transaction

ON CONFLICT makes two writers of the same entry (two workers, a re-claimed lease) safe: the
second insert does nothing and counts the entry as unchanged instead of failing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import CursorResult, bindparam, null, select, union_all, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from sources.model import ParsedEntry
from store.canonical import DEFAULT_FILTER, TrackingFilter, canonical_link
from store.identity import content_hash, entry_keys, entry_uid
from store.model import IngestCounts
from store.stories import StoryEntry, StorySettings
from store.story_index import cluster_entries
from store.tables import Base, EntryRow, TombstoneRow

STORY_TEXT_LIMIT = 4000  # characters of summary/content clustering looks at
_CHUNK = 500  # keys per IN (...) lookup: well under every database's parameter limit
entries_table = Base.metadata.tables["entries"]


@dataclass(frozen=True, slots=True)
class _Known:
    row_id: int
    content_hash: str
    first_seen_at: datetime


async def upsert_entries(
    conn: AsyncConnection,
    source_id: str,
    entries: Sequence[ParsedEntry],
    now: datetime,
    tracking: TrackingFilter = DEFAULT_FILTER,
    stories: StorySettings | None = None,
) -> IngestCounts:
    """Store ``entries`` of ``source_id`` inside the caller's transaction; with ``stories``,
    cluster the new ones (changed entries keep their story)."""
    links = [canonical_link(entry, tracking) for entry in entries]
    keys = entry_keys(entries, tracking, links)
    known, buried = await _known_and_buried(conn, source_id, keys)
    inserts: list[dict[str, Any]] = []
    updates: list[dict[str, Any]] = []
    for key, entry, link in zip(keys, entries, links, strict=True):
        digest = content_hash(entry)
        old = known.get(key)
        if old is None and key not in buried:
            inserts.append(_new_row(source_id, key, entry, digest, link, now))
        elif old is not None and old.content_hash != digest:
            updates.append(_changed_row(old, entry, digest, link, now))
    inserted_keys = await _insert_new(conn, inserts)
    inserted = len(inserted_keys)
    if stories is not None and inserted_keys:
        new = [_story_entry(row) for row in inserts if row["entry_key"] in inserted_keys]
        await conn.run_sync(cluster_entries, new, stories, now)
    if updates:
        await conn.execute(
            update(entries_table).where(entries_table.c.id == bindparam("row_id")), updates
        )
    ignored = sum(1 for key in keys if key in buried)
    unchanged = len(entries) - inserted - len(updates) - ignored
    return IngestCounts(new=inserted, updated=len(updates), unchanged=unchanged, ignored=ignored)


async def _insert_new(conn: AsyncConnection, rows: list[dict[str, Any]]) -> set[str]:
    """Insert ``rows``; a row another writer inserted meanwhile is skipped, not an error.
    Returns the keys really inserted."""
    if not rows:
        return set()
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    statement = (
        dialect.insert(entries_table)
        .on_conflict_do_nothing(index_elements=["source_id", "entry_key"])
        .returning(entries_table.c.entry_key)
    )
    inserted: set[str] = set()
    for start in range(0, len(rows), _CHUNK):
        result = await conn.execute(statement, rows[start : start + _CHUNK])
        inserted.update(result.scalars().all())
    return inserted


def _story_entry(row: dict[str, Any]) -> StoryEntry:
    """What clustering sees of a new entry: title and summary (else content), its date
    (else when first seen) and canonical link."""
    text = row["summary"] or row["content"] or ""
    return StoryEntry(
        uid=row["uid"],
        source_id=row["source_id"],
        published=row["published"] or row["sort_at"],
        title=row["title"] or "",
        text=text[:STORY_TEXT_LIMIT],
        link=row["canonical_link"],
    )


async def _known_and_buried(
    conn: AsyncConnection, source_id: str, keys: Sequence[str]
) -> tuple[dict[str, _Known], set[str]]:
    """The stored entries among ``keys``, and the tombstoned ones: one query a chunk."""
    known: dict[str, _Known] = {}
    buried: set[str] = set()
    for start in range(0, len(keys), _CHUNK):
        chunk = keys[start : start + _CHUNK]
        stored = select(
            EntryRow.entry_key, EntryRow.id, EntryRow.content_hash, EntryRow.first_seen_at
        ).where(EntryRow.source_id == source_id, EntryRow.entry_key.in_(chunk))
        pruned = select(
            TombstoneRow.entry_key,
            null().label("id"),
            null().label("content_hash"),
            null().label("first_seen_at"),
        ).where(TombstoneRow.source_id == source_id, TombstoneRow.entry_key.in_(chunk))
        result: CursorResult[Any] = await conn.execute(union_all(stored, pruned))
        for row in result:
            key: str = row.entry_key
            if row.id is None:
                buried.add(key)
            else:
                known[key] = _Known(row.id, row.content_hash, row.first_seen_at)
    return known, buried - known.keys()


def sort_time(entry: ParsedEntry, first_seen: datetime) -> datetime:
    """Newest-first order: the entry's own date, never later than when we first saw it."""
    own = entry.published or entry.updated
    return min(own, first_seen) if own else first_seen


def _fields(entry: ParsedEntry, digest: str, link: str | None) -> dict[str, Any]:
    return {
        "link": entry.link,
        "canonical_link": link,
        "title": entry.title,
        "summary": entry.summary,
        "content": entry.content,
        "authors": list(entry.authors),
        "categories": list(entry.categories),
        "enclosures": [
            {"url": e.url, "type": e.type, "length": e.length} for e in entry.enclosures
        ],
        "published": entry.published,
        "updated": entry.updated,
        "content_hash": digest,
        "language": entry.language,
    }


def _new_row(
    source_id: str, key: str, entry: ParsedEntry, digest: str, link: str | None, now: datetime
) -> dict[str, Any]:
    return {
        "source_id": source_id,
        "entry_key": key,
        "uid": entry_uid(source_id, key),
        "sort_at": sort_time(entry, now),
        "first_seen_at": now,
        "changed_at": now,
        **_fields(entry, digest, link),
    }


def _changed_row(
    old: _Known, entry: ParsedEntry, digest: str, link: str | None, now: datetime
) -> dict[str, Any]:
    return {
        "row_id": old.row_id,
        "sort_at": sort_time(entry, old.first_seen_at),
        "changed_at": now,
        **_fields(entry, digest, link),
    }
