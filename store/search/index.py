"""The full-text index of entries: its tables, keeping it in step, reading it.

    SQLite      entry_search: an FTS5 table, rowid = 2^63 - 1 - the entry's sort key
                (store.search.text; newest first is FTS5's ascending order, its quicker
                one), columns title, author, category, source, body (tokens joined by
                spaces), fields (field words behind their markers, for field searches) and
                sid (the source id as one token, to restrict a search to some sources)
    PostgreSQL  entry_search (entry_id -> entries ON DELETE CASCADE, source_id, sort_key,
                document tsvector): GIN on document, B-tree on sort_key

    ingest   -> index_entries (new and changed entries, in the ingest transaction)
    prune    -> unindex_entries (SQLite; PostgreSQL's foreign key removes the rows itself)
    search   -> store.search.match: sort keys of matches, newest first, below a cursor

Both order by the sort key, so "newest first" and keyset paging are the same index walk on
both databases, and a page deep in the results costs what the first one does. The tables are
created by migration 0011 (with :func:`create_index` and :func:`build_index`), not by
store.tables: neither database's table can be described to the other.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, bindparam, func, select, text
from sqlalchemy.exc import DBAPIError

from store.errors import StoreError
from store.search.text import FIELDS, ROW_ID_MASK, search_document, sort_key
from store.tables import EntryRow, SourceRow

TABLE = "entry_search"
_CHUNK = 500

_SQLITE_TABLE = (
    f"CREATE VIRTUAL TABLE {TABLE} USING fts5("
    + ", ".join(FIELDS)
    + ", fields, sid, tokenize = 'unicode61 remove_diacritics 0', columnsize = 0)"
)
_POSTGRES_TABLE = (
    f"CREATE TABLE {TABLE} ("
    "entry_id BIGINT PRIMARY KEY REFERENCES entries (id) ON DELETE CASCADE, "
    "source_id VARCHAR(100) NOT NULL, sort_key BIGINT NOT NULL, document TSVECTOR NOT NULL)"
)
_POSTGRES_INDEXES = [
    f"CREATE INDEX ix_{TABLE}_document ON {TABLE} USING gin (document)",
    f"CREATE INDEX ix_{TABLE}_sort_key ON {TABLE} (sort_key)",
]


def is_index_table(name: str) -> bool:
    """The index's tables (FTS5 makes several), which Alembic's comparison leaves alone."""
    return name == TABLE or name.startswith(TABLE + "_")


def create_index(
    conn: Connection, batch: int = 5_000, progress: Callable[[int, int], None] | None = None
) -> int:
    """Create the index and index every stored entry (:func:`build_index`); on PostgreSQL
    the table's indexes are made after its rows, which is quicker than row by row."""
    conn.execute(text(_POSTGRES_TABLE if _postgres(conn) else _SQLITE_TABLE))
    if _postgres(conn):
        _store_documents_inline(conn)
    count = build_index(conn, batch, progress)
    if _postgres(conn):
        for statement in _POSTGRES_INDEXES:
            conn.execute(text(statement))
    return count


def _store_documents_inline(conn: Connection) -> None:
    """Keep documents in the table's rows (STORAGE MAIN) and compress them with lz4 where
    the server has it: a search reads documents one by one as it walks the newest rows, and
    an out-of-line or pglz-compressed one costs two to three times as much to read."""
    conn.execute(text(f"ALTER TABLE {TABLE} ALTER COLUMN document SET STORAGE MAIN"))
    try:
        with conn.begin_nested():
            conn.execute(text(f"ALTER TABLE {TABLE} ALTER COLUMN document SET COMPRESSION lz4"))
    except DBAPIError:
        pass  # a server without lz4 (or before PostgreSQL 14): its default compression


def drop_index(conn: Connection) -> None:
    conn.execute(text(f"DROP TABLE IF EXISTS {TABLE}"))


def _postgres(conn: Connection) -> bool:
    return conn.dialect.name == "postgresql"


# -- keeping it in step ------------------------------------------------------------------------


def index_entries(
    conn: Connection,
    source_id: str,
    new: Sequence[Mapping[str, Any]],
    changed: Sequence[Mapping[str, Any]],
) -> None:
    """Index ``new`` entries (rows just inserted, found by key) and ``changed`` ones (with
    ``row_id``; call before the UPDATE, while the old sort time is still stored)."""
    if not new and not changed:
        return
    ids = _ids_by_key(conn, source_id, [row["entry_key"] for row in new])
    rows = [(ids[row["entry_key"]], row) for row in new if row["entry_key"] in ids]
    rows += [(row["row_id"], row) for row in changed]
    if changed and not _postgres(conn):
        _delete_keys(conn, _stored_keys(conn, [row["row_id"] for row in changed]))
    _write(conn, source_id, _source_label(conn, source_id), rows)


def unindex_entries(conn: Connection, row_ids: Sequence[int]) -> None:
    """Remove entries about to be deleted (SQLite; on PostgreSQL the DELETE of the entries
    cascades to their index rows)."""
    if row_ids and not _postgres(conn):
        _delete_keys(conn, _stored_keys(conn, row_ids))


def _ids_by_key(conn: Connection, source_id: str, keys: Sequence[str]) -> dict[str, int]:
    found: dict[str, int] = {}
    query = select(EntryRow.entry_key, EntryRow.id).where(
        EntryRow.source_id == source_id,
        EntryRow.entry_key.in_(bindparam("keys", expanding=True)),
    )
    for start in range(0, len(keys), _CHUNK):
        found.update(conn.execute(query, {"keys": list(keys[start : start + _CHUNK])}).all())
    return found


def _stored_keys(conn: Connection, row_ids: Sequence[int]) -> list[int]:
    keys: list[int] = []
    query = select(EntryRow.id, EntryRow.sort_at).where(
        EntryRow.id.in_(bindparam("ids", expanding=True))
    )
    for start in range(0, len(row_ids), _CHUNK):
        rows = conn.execute(query, {"ids": list(row_ids[start : start + _CHUNK])})
        keys += [sort_key(sort_at, row_id) for row_id, sort_at in rows]
    return keys


def _delete_keys(conn: Connection, keys: Sequence[int]) -> None:
    statement = text(f"DELETE FROM {TABLE} WHERE rowid = :rowid")
    if keys:
        conn.execute(statement, [{"rowid": fts_rowid(key)} for key in keys])


def _source_label(conn: Connection, source_id: str) -> str:
    """What the ``source`` field holds: the source's id and its title."""
    row = conn.execute(
        select(SourceRow.title, SourceRow.feed_title).where(SourceRow.id == source_id)
    ).first()
    title = (row.title or row.feed_title or "") if row is not None else ""
    return f"{source_id} {title}"


def _write(
    conn: Connection, source_id: str, label: str, rows: Iterable[tuple[int, Mapping[str, Any]]]
) -> None:
    make = _postgres_row if _postgres(conn) else _sqlite_row
    _insert(conn, [make(row_id, source_id, label, row) for row_id, row in rows])


def _insert(conn: Connection, values: list[dict[str, Any]]) -> None:
    if not _postgres(conn):
        # FTS5 writes out what it holds whenever a rowid is not above the last one written
        # in the transaction: in ascending order, a batch is one segment, not one a row.
        values.sort(key=lambda value: int(value["rowid"]))
    statement = _UPSERT_POSTGRES if _postgres(conn) else _UPSERT_SQLITE
    for start in range(0, len(values), _CHUNK):
        conn.execute(statement, values[start : start + _CHUNK])


def _document(label: str, row: Mapping[str, Any]) -> Any:
    return search_document(
        row["title"], row["summary"], row["content"], row["authors"], row["categories"], label
    )


def _checked_key(row: Mapping[str, Any], row_id: int) -> int:
    if row_id > ROW_ID_MASK:
        raise StoreError(f"entry row id {row_id} is too large for the search index")
    return sort_key(row["sort_at"], row_id)


def _sqlite_row(row_id: int, source_id: str, label: str, row: Mapping[str, Any]) -> dict[str, Any]:
    values = _document(label, row).fts_row()
    return {"rowid": fts_rowid(_checked_key(row, row_id)), "sid": source_token(source_id), **values}


def _postgres_row(
    row_id: int, source_id: str, label: str, row: Mapping[str, Any]
) -> dict[str, Any]:
    return {
        "entry_id": row_id,
        "source_id": source_id,
        "sort_key": _checked_key(row, row_id),
        "document": _document(label, row).tsvector(),
    }


def source_token(source_id: str) -> str:
    """A source id as one FTS5 token (ids hold '-' and '_', which would split them)."""
    return "x" + source_id.encode().hex()


_UPSERT_SQLITE = text(
    f"INSERT OR REPLACE INTO {TABLE} (rowid, {', '.join(FIELDS)}, fields, sid) "
    f"VALUES (:rowid, {', '.join(':' + f for f in FIELDS)}, :fields, :sid)"
)
_UPSERT_POSTGRES = text(
    f"INSERT INTO {TABLE} (entry_id, source_id, sort_key, document) "
    "VALUES (:entry_id, :source_id, :sort_key, CAST(:document AS tsvector)) "
    "ON CONFLICT (entry_id) DO UPDATE SET sort_key = excluded.sort_key, "
    "document = excluded.document"
)


# -- building it for a store that has entries ---------------------------------------------------


def build_index(
    conn: Connection, batch: int = 5_000, progress: Callable[[int, int], None] | None = None
) -> int:
    """Index every stored entry, ``batch`` at a time in row-id order; ``progress(done,
    total)`` after each batch (the migration logs it). Returns how many."""
    total = conn.execute(select(func.count(EntryRow.id))).scalar_one()
    labels = _all_source_labels(conn)
    done, after = 0, 0
    columns = (EntryRow.id, EntryRow.source_id, EntryRow.sort_at, EntryRow.title)
    extra = (EntryRow.summary, EntryRow.content, EntryRow.authors, EntryRow.categories)
    while True:
        page = conn.execute(
            select(*columns, *extra).where(EntryRow.id > after).order_by(EntryRow.id).limit(batch)
        ).all()
        if not page:
            return done
        make = _postgres_row if _postgres(conn) else _sqlite_row
        values = [
            make(int(r.id), r.source_id, labels.get(r.source_id, r.source_id), dict(r._mapping))
            for r in page
        ]
        _insert(conn, values)
        done += len(page)
        after = page[-1].id
        if progress is not None:
            progress(done, total)


def _all_source_labels(conn: Connection) -> dict[str, str]:
    rows = conn.execute(select(SourceRow.id, SourceRow.title, SourceRow.feed_title)).all()
    return {r.id: f"{r.id} {r.title or r.feed_title or ''}" for r in rows}


def fts_rowid(key: int) -> int:
    """An FTS5 rowid from a sort key, and back: newer entries have smaller rowids."""
    return _FLIP - key


_FLIP = (1 << 63) - 1
