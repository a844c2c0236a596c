"""Write one parsed document's entries for one source: insert new, update changed, skip the rest."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from sources.model import ParsedEntry
from store.identity import content_hash, entry_keys, entry_uid
from store.model import IngestCounts
from store.tables import Base, EntryRow

_CHUNK = 500  # keys per IN (...) lookup: well under every database's parameter limit
entries_table = Base.metadata.tables["entries"]


@dataclass(frozen=True, slots=True)
class _Known:
    row_id: int
    content_hash: str
    first_seen_at: datetime


async def upsert_entries(
    conn: AsyncConnection, source_id: str, entries: Sequence[ParsedEntry], now: datetime
) -> IngestCounts:
    """Store ``entries`` of ``source_id`` inside the caller's transaction."""
    keys = entry_keys(entries)
    known = await _known_entries(conn, source_id, keys)
    inserts: list[dict[str, Any]] = []
    updates: list[dict[str, Any]] = []
    for key, entry in zip(keys, entries, strict=True):
        digest = content_hash(entry)
        old = known.get(key)
        if old is None:
            inserts.append(_new_row(source_id, key, entry, digest, now))
        elif old.content_hash != digest:
            updates.append(_changed_row(old, entry, digest, now))
    if inserts:
        await conn.execute(insert(entries_table), inserts)
    if updates:
        await conn.execute(
            update(entries_table).where(entries_table.c.id == bindparam("row_id")), updates
        )
    unchanged = len(entries) - len(inserts) - len(updates)
    return IngestCounts(new=len(inserts), updated=len(updates), unchanged=unchanged)


async def _known_entries(
    conn: AsyncConnection, source_id: str, keys: Sequence[str]
) -> dict[str, _Known]:
    known: dict[str, _Known] = {}
    for start in range(0, len(keys), _CHUNK):
        chunk = keys[start : start + _CHUNK]
        rows = await conn.execute(
            select(
                EntryRow.entry_key, EntryRow.id, EntryRow.content_hash, EntryRow.first_seen_at
            ).where(EntryRow.source_id == source_id, EntryRow.entry_key.in_(chunk))
        )
        for key, row_id, digest, first_seen in rows:
            known[key] = _Known(row_id, digest, first_seen)
    return known


def sort_time(entry: ParsedEntry, first_seen: datetime) -> datetime:
    """Newest-first order: the entry's own date, never later than when we first saw it."""
    own = entry.published or entry.updated
    return min(own, first_seen) if own else first_seen


def _fields(entry: ParsedEntry, digest: str) -> dict[str, Any]:
    return {
        "link": entry.link,
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
    source_id: str, key: str, entry: ParsedEntry, digest: str, now: datetime
) -> dict[str, Any]:
    return {
        "source_id": source_id,
        "entry_key": key,
        "uid": entry_uid(source_id, key),
        "sort_at": sort_time(entry, now),
        "first_seen_at": now,
        "changed_at": now,
        **_fields(entry, digest),
    }


def _changed_row(old: _Known, entry: ParsedEntry, digest: str, now: datetime) -> dict[str, Any]:
    return {
        "row_id": old.row_id,
        "sort_at": sort_time(entry, old.first_seen_at),
        "changed_at": now,
        **_fields(entry, digest),
    }
