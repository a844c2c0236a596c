"""Content versions: one counter over all sources, so a reader asks only what changed.

    a write that changes what a curated feed shows of a source (entries added, changed or
    pruned; its title or link; a story it has a member in):
        lock_versions(conn)                      # PostgreSQL: held to the commit
        content_version = NEXT_VERSION           # max over all sources + 1
    a reader that saw up to version V:
        SELECT ... FROM sources WHERE content_version > V        (ix_sources_content_version)

Versions must become visible in the order they are given, or a reader could move past a
version still uncommitted. SQLite has one writer at a time, so they do. On PostgreSQL the
writers take a transaction-level advisory lock just before they give one out: the next
writer waits until the previous one committed, and then sees its version.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, func, select, text

from store.tables import SourceRow

# pg_advisory_xact_lock key of the version counter ("fmvers" in ASCII).
_VERSION_LOCK = 0x666D7665727300
_LOCK = text(f"SELECT pg_advisory_xact_lock({_VERSION_LOCK})")

# The next version: above every source's, so readers past the old maximum see it.
NEXT_VERSION: Any = select(
    func.coalesce(func.max(SourceRow.content_version), 0) + 1
).scalar_subquery()


def lock_versions(conn: Connection) -> None:
    """Take the version lock for the rest of the transaction (PostgreSQL; SQLite's write lock
    already orders writers). Call before a statement that uses NEXT_VERSION."""
    if conn.dialect.name == "postgresql":
        conn.execute(_LOCK)
