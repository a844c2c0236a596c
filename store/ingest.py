"""Write one parsed document's entries for one source: insert new, update changed, skip the rest.

    keys   = entry_keys(document)                       # store.identity
    known  = stored (key -> row id, content hash); buried = tombstoned keys (retention)
    new    -> INSERT ... ON CONFLICT DO NOTHING (executemany, row count)
              sort time: its date, never after now; the undated in document order (sort_times)
    changed content hash -> UPDATE in place (same uid, new `changed_at`)
    tombstoned and not stored -> ignored
    new (really inserted) -> each assigned a story (store.story_store), same transaction
    new and changed -> the full-text index (store.search.index), same transaction

ON CONFLICT makes two writers of the same entry (two workers, a re-claimed lease) safe: the
second insert does nothing instead of failing. It names no conflict target, so it covers
every unique constraint of the table: with a target, PostgreSQL checks only that index before
inserting, and two writers that pass the check at the same moment collide on another one
(``uq_entries_uid``) with an error instead of a skipped row. The insert is a plain
executemany (the drivers' fast path: sqlite3's executemany, psycopg's pipeline); its row count
tells whether every row went in. When it falls short, another writer stored some of these
keys between our look-up and our insert: :class:`LostInsertRace` is raised, the caller rolls
back and runs the transaction again with ``exact=True``, which inserts with RETURNING to learn
which rows are ours (the race loser counts the others as unchanged).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    ColumnElement,
    CompoundSelect,
    Connection,
    Text,
    any_,
    bindparam,
    null,
    select,
    union_all,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite

from sources.model import ParsedEntry
from sources.text import clean_entry
from store.canonical import DEFAULT_FILTER, TrackingFilter, canonical_link
from store.identity import authors_data, content_hash, entry_keys, entry_uid
from store.model import IngestCounts
from store.search.index import index_entries
from store.stories import StoryEntry
from store.story_store import StoryClusterer, story_entry
from store.tables import Base, EntryRow, TombstoneRow

_CHUNK = 500  # keys per IN (...) lookup: well under every database's parameter limit
_TICK = timedelta(microseconds=1)  # between undated entries of one document (sort_times)
entries_table = Base.metadata.tables["entries"]


class LostInsertRace(Exception):
    """Another writer inserted some of the entries between the look-up and the insert of this
    transaction: roll it back and run it again with ``exact=True``. Never leaves store/."""


@dataclass(frozen=True, slots=True)
class _Known:
    row_id: int
    content_hash: str
    first_seen_at: datetime
    sort_at: datetime


def upsert_entries(
    conn: Connection,
    source_id: str,
    entries: Sequence[ParsedEntry],
    now: datetime,
    tracking: TrackingFilter = DEFAULT_FILTER,
    stories: StoryClusterer | None = None,
    *,
    exact: bool = False,
) -> IngestCounts:
    """Store ``entries`` of ``source_id`` inside the caller's transaction; with ``stories``,
    cluster the new ones (changed entries keep their story). Raises :class:`LostInsertRace`
    unless ``exact`` (see the module docstring)."""
    entries = [clean_entry(entry) for entry in entries]
    links = [canonical_link(entry, tracking) for entry in entries]
    keys = entry_keys(entries, tracking, links)
    known, buried = _known_and_buried(conn, source_id, keys)
    inserts: list[dict[str, Any]] = []
    updates: list[dict[str, Any]] = []
    for key, entry, link in zip(keys, entries, links, strict=True):
        digest = content_hash(entry)
        old = known.get(key)
        if old is None and key not in buried:
            inserts.append(_new_row(source_id, key, entry, digest, link, now))
        elif old is not None and old.content_hash != digest:
            updates.append(_changed_row(old, entry, digest, link, now))
    for row, sort_at in zip(inserts, sort_times([r["sort_at"] for r in inserts], now), strict=True):
        row["sort_at"] = sort_at
    inserted_keys = (_insert_returning if exact else _insert_all)(conn, inserts)
    inserted = len(inserted_keys)
    formed = merged = 0
    if stories is not None and inserted_keys:
        new = [_story_entry(row) for row in inserts if row["entry_key"] in inserted_keys]
        formed, merged = stories.cluster(conn, new, now)
    index_entries(conn, source_id, [r for r in inserts if r["entry_key"] in inserted_keys], updates)
    if updates:
        conn.execute(
            update(entries_table).where(entries_table.c.id == bindparam("row_id")), updates
        )
    ignored = sum(1 for key in keys if key in buried)
    unchanged = len(entries) - inserted - len(updates) - ignored
    return IngestCounts(
        new=inserted,
        updated=len(updates),
        unchanged=unchanged,
        ignored=ignored,
        stories_formed=formed,
        stories_merged=merged,
    )


def _insert_or_skip(conn: Connection) -> Any:
    """INSERT ... ON CONFLICT DO NOTHING (any unique constraint), in the connection's dialect."""
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    return dialect.insert(entries_table).on_conflict_do_nothing()


def _insert_all(conn: Connection, rows: list[dict[str, Any]]) -> set[str]:
    """Insert ``rows`` in one executemany; the keys of all of them, or :class:`LostInsertRace`
    when the row count shows another writer got some in first."""
    if not rows:
        return set()
    result = conn.execute(
        _insert_or_skip(conn), rows, execution_options={"preserve_rowcount": True}
    )
    if result.rowcount != len(rows):
        raise LostInsertRace
    return {row["entry_key"] for row in rows}


def _insert_returning(conn: Connection, rows: list[dict[str, Any]]) -> set[str]:
    """Insert ``rows``; a row another writer inserted meanwhile is skipped, not an error.
    Returns the keys really inserted (RETURNING, so slower than :func:`_insert_all`)."""
    statement = _insert_or_skip(conn).returning(entries_table.c.entry_key)
    inserted: set[str] = set()
    for start in range(0, len(rows), _CHUNK):
        result = conn.execute(statement, rows[start : start + _CHUNK])
        inserted.update(result.scalars().all())
    return inserted


def _story_entry(row: dict[str, Any]) -> StoryEntry:
    """What clustering sees of a new entry (store.story_store.story_entry)."""
    return story_entry(
        row["uid"],
        row["source_id"],
        row["sort_at"],
        row["title"],
        row["summary"],
        row["content"],
        row["canonical_link"],
    )


def _known_and_buried(
    conn: Connection, source_id: str, keys: Sequence[str]
) -> tuple[dict[str, _Known], set[str]]:
    """The stored entries among ``keys``, and the tombstoned ones: one query a chunk."""
    known: dict[str, _Known] = {}
    buried: set[str] = set()
    lookup = _LOOKUP[conn.dialect.name]
    for start in range(0, len(keys), _CHUNK):
        chunk = keys[start : start + _CHUNK]
        result = conn.execute(lookup, {"source_id": source_id, "keys": chunk})
        for row in result:
            key: str = row.entry_key
            if row.id is None:
                buried.add(key)
            else:
                known[key] = _Known(row.id, row.content_hash, row.first_seen_at, row.sort_at)
    return known, buried - known.keys()


def _stored_or_buried(among: Callable[[Any], ColumnElement[bool]]) -> CompoundSelect[Any]:
    """The stored and the tombstoned entries of a source whose key is ``among`` the keys."""
    return union_all(
        select(
            EntryRow.entry_key,
            EntryRow.id,
            EntryRow.content_hash,
            EntryRow.first_seen_at,
            EntryRow.sort_at,
        ).where(EntryRow.source_id == bindparam("source_id"), among(EntryRow.entry_key)),
        select(
            TombstoneRow.entry_key,
            null().label("id"),
            null().label("content_hash"),
            null().label("first_seen_at"),
            null().label("sort_at"),
        ).where(TombstoneRow.source_id == bindparam("source_id"), among(TombstoneRow.entry_key)),
    )


# Built once per dialect. PostgreSQL: the keys as one array (= ANY), so the statement's text
# never changes and psycopg prepares it; SQLite: an expanding IN (...) list.
_LOOKUP = {
    "postgresql": _stored_or_buried(
        lambda key: key == any_(bindparam("keys", type_=postgresql.ARRAY(Text)))
    ),
    "sqlite": _stored_or_buried(lambda key: key.in_(bindparam("keys", expanding=True))),
}


def sort_time(entry: ParsedEntry, first_seen: datetime) -> datetime:
    """Newest-first order: the entry's own date, never later than when we first saw it."""
    own = entry.published or entry.updated
    return min(own, first_seen) if own else first_seen


def sort_times(times: Sequence[datetime], now: datetime) -> list[datetime]:
    """The sort times of a document's new entries, in document order (from :func:`sort_time`).

    Those that would all sort at ``now`` (undated, or dated later) keep the document's order,
    the first newest as publishers write them: each next one is a microsecond older. Ties
    broken by row id would put the last first, and a feed's ``limit`` would cut the newest.
    A later poll's new ones sort above these, as its ``now`` is later.
    """
    placed, rank = [], 0
    for moment in times:
        if moment == now:
            moment, rank = now - rank * _TICK, rank + 1
        placed.append(moment)
    return placed


def _fields(entry: ParsedEntry, digest: str, link: str | None) -> dict[str, Any]:
    return {
        "link": entry.link,
        "canonical_link": link,
        "title": entry.title,
        "summary": entry.summary,
        "content": entry.content,
        "authors": authors_data(entry.authors),
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
    sort_at = sort_time(entry, old.first_seen_at)
    if sort_at == old.first_seen_at:  # undated (or dated later): it keeps its place
        sort_at = old.sort_at
    return {
        "row_id": old.row_id,
        "sort_at": sort_at,
        "changed_at": now,
        **_fields(entry, digest, link),
    }
