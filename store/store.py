"""The repository: every read and write feedmill makes, as short async methods.

Each method is one transaction. Values in and out are frozen dataclasses (store.model,
sources.model); the tables never leave this package.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncGenerator, AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager, nullcontext
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Row, func, insert, or_, select, text, tuple_, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from sources.model import Enclosure, ParsedFeed, Validators
from store.canonical import DEFAULT_FILTER, TrackingFilter
from store.database import create_engine, reading, writing
from store.errors import UnknownSourceError
from store.ingest import upsert_entries
from store.model import IngestCounts, Retention, SourceDefinition, StoredEntry, StoredSource
from store.retention import prune_source
from store.tables import EntryRow, SourceRow

# pg_advisory_lock key held while a process migrates and syncs sources ("feedmill" in ASCII).
_SETUP_LOCK = 0x666565646D696C6C


class Store:
    """feedmill's database. ``Store.open(url)``, use, then ``await store.close()``."""

    def __init__(self, engine: AsyncEngine, tracking: TrackingFilter = DEFAULT_FILTER) -> None:
        self.engine = engine
        self.tracking = tracking
        # SQLite has one writer at a time. Queue this process's writers here rather than
        # let them poll the database lock (busy_timeout), which wastes most of the wait.
        self._serial = engine.dialect.name == "sqlite"
        self._write_turn = asyncio.Lock()

    @asynccontextmanager
    async def _writing(self) -> AsyncIterator[AsyncConnection]:
        turn = self._write_turn if self._serial else nullcontext()
        async with turn, writing(self.engine) as conn:
            yield conn

    @classmethod
    def open(
        cls, url: str, *, tracking: TrackingFilter = DEFAULT_FILTER, **engine_options: Any
    ) -> Store:
        return cls(create_engine(url, **engine_options), tracking)

    @asynccontextmanager
    async def setup_lock(self) -> AsyncIterator[None]:
        """Held while migrating and syncing sources, so processes starting together on one
        PostgreSQL take turns (an advisory lock). SQLite's write lock does this already."""
        if self.engine.dialect.name != "postgresql":
            yield
            return
        async with self.engine.connect() as conn:
            await conn.execute(text("SELECT pg_advisory_lock(:key)"), {"key": _SETUP_LOCK})
            await conn.commit()
            try:
                yield
            finally:
                await conn.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": _SETUP_LOCK})
                await conn.commit()

    async def close(self) -> None:
        await self.engine.dispose()

    # -- sources ------------------------------------------------------------------------

    async def sync_sources(self, definitions: Iterable[SourceDefinition], now: datetime) -> None:
        """Make the stored sources match the configured ones.

        New sources are due at once; a source whose URL changed loses its validators and
        error state and is due at once; a source no longer configured is kept (with its
        entries) but deactivated.
        """
        wanted = {d.id: d for d in definitions}
        async with self._writing() as conn:
            rows = (await conn.execute(select(SourceRow.id, SourceRow.url))).all()
            stored = {source_id: url for source_id, url in rows}
            for definition in wanted.values():
                values: dict[str, Any] = {
                    "url": definition.url,
                    "title": definition.title,
                    "interval_seconds": int(definition.interval.total_seconds()),
                    "active": True,
                    **_retention_columns(definition.retention),
                }
                if definition.id not in stored:
                    await conn.execute(
                        insert(SourceRow).values(
                            id=definition.id,
                            next_poll_at=now,
                            created_at=now,
                            error_count=0,
                            **values,
                        )
                    )
                    continue
                if stored[definition.id] != definition.url:
                    values |= _RESET_FOR_NEW_URL | {"next_poll_at": now}
                await conn.execute(
                    update(SourceRow).where(SourceRow.id == definition.id).values(**values)
                )
            gone = set(stored) - set(wanted)
            if gone:
                await conn.execute(
                    update(SourceRow).where(SourceRow.id.in_(gone)).values(active=False)
                )

    async def list_sources(self, *, active_only: bool = True) -> list[StoredSource]:
        query = select(SourceRow).order_by(SourceRow.id)
        if active_only:
            query = query.where(SourceRow.active.is_(True))
        async with reading(self.engine) as conn:
            return [_source(row) for row in (await conn.execute(query)).all()]

    async def get_source(self, source_id: str) -> StoredSource:
        async with reading(self.engine) as conn:
            row = (await conn.execute(select(SourceRow).where(SourceRow.id == source_id))).first()
        if row is None:
            raise UnknownSourceError(source_id)
        return _source(row)

    async def claim_due_sources(
        self, now: datetime, lease: timedelta, limit: int | None = None, owner: str = ""
    ) -> list[StoredSource]:
        """Lease the sources due at ``now`` to ``owner`` until ``now + lease``.

        A source is due when its next poll time has come and nobody holds an unexpired lease
        on it. The rows are locked with FOR UPDATE SKIP LOCKED on PostgreSQL (SQLite's
        BEGIN IMMEDIATE serialises instead), and the lease is written in the same
        transaction, so two workers never claim the same source. Recording the outcome
        (:meth:`ingest`, :meth:`record_not_modified`, :meth:`record_failure`) releases the
        lease and sets the next poll time; a worker that dies leaves the lease to expire,
        and the source is due again for the others.
        """
        query = (
            select(SourceRow)
            .where(
                SourceRow.active.is_(True),
                SourceRow.next_poll_at <= now,
                or_(SourceRow.lease_expires_at.is_(None), SourceRow.lease_expires_at <= now),
            )
            .order_by(SourceRow.next_poll_at, SourceRow.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        async with self._writing() as conn:
            rows = (await conn.execute(query)).all()
            if rows:
                await conn.execute(
                    update(SourceRow)
                    .where(SourceRow.id.in_([row.id for row in rows]))
                    .values(lease_owner=owner, lease_expires_at=now + lease, last_polled_at=now)
                )
        return [
            dataclasses.replace(
                _source(row), lease_owner=owner, lease_expires_at=now + lease, last_polled_at=now
            )
            for row in rows
        ]

    async def record_not_modified(
        self, source_id: str, validators: Validators, now: datetime, next_poll_at: datetime
    ) -> None:
        async with self._writing() as conn:
            await conn.execute(
                update(SourceRow)
                .where(SourceRow.id == source_id)
                .values(**_success(validators, now, next_poll_at))
            )

    async def record_failure(
        self, source_id: str, kind: str, message: str, now: datetime, next_poll_at: datetime
    ) -> None:
        async with self._writing() as conn:
            await conn.execute(
                update(SourceRow)
                .where(SourceRow.id == source_id)
                .values(
                    error_kind=kind,
                    error_message=message[:2000],
                    error_count=SourceRow.error_count + 1,
                    last_polled_at=now,
                    next_poll_at=next_poll_at,
                    **_NO_LEASE,
                )
            )

    async def ingest(
        self,
        source_id: str,
        feed: ParsedFeed,
        validators: Validators,
        now: datetime,
        next_poll_at: datetime,
    ) -> IngestCounts:
        """Store a freshly parsed document and the source's new state in one transaction;
        then apply the source's retention in the same transaction."""
        async with self._writing() as conn:
            counts = await upsert_entries(conn, source_id, feed.entries, now, self.tracking)
            retention = await self._retention(conn, source_id)
            pruned = await prune_source(conn, source_id, retention, now)
            counts = dataclasses.replace(counts, pruned=pruned)
            await conn.execute(
                update(SourceRow)
                .where(SourceRow.id == source_id)
                .values(
                    feed_title=feed.title,
                    feed_link=feed.link,
                    last_new=counts.new,
                    last_updated=counts.updated,
                    last_unchanged=counts.unchanged,
                    **_success(validators, now, next_poll_at),
                )
            )
        return counts

    async def _retention(self, conn: AsyncConnection, source_id: str) -> Retention:
        row = (
            await conn.execute(
                select(SourceRow.retain_max_age_seconds, SourceRow.retain_max_entries).where(
                    SourceRow.id == source_id
                )
            )
        ).first()
        if row is None:
            raise UnknownSourceError(source_id)
        return _retention(row.retain_max_age_seconds, row.retain_max_entries)

    async def prune_entries(self, now: datetime) -> dict[str, int]:
        """Apply every source's retention now (also done after each ingest); entries removed
        per source id, sources with nothing removed left out."""
        removed: dict[str, int] = {}
        for source in await self.list_sources(active_only=False):
            async with self._writing() as conn:
                count = await prune_source(conn, source.id, source.retention, now)
            if count:
                removed[source.id] = count
        return removed

    # -- entries ------------------------------------------------------------------------

    async def newest_entries(
        self, source_ids: Sequence[str], *, batch: int = 200
    ) -> AsyncGenerator[list[StoredEntry], None]:
        """Pages of the entries of ``source_ids``, newest first (keyset paging, one short read
        transaction a page, so a reader that stops early holds nothing open)."""
        cursor: tuple[datetime, int] | None = None
        while True:
            query = (
                select(EntryRow)
                .where(EntryRow.source_id.in_(source_ids))
                .order_by(EntryRow.sort_at.desc(), EntryRow.id.desc())
                .limit(batch)
            )
            if cursor is not None:
                query = query.where(tuple_(EntryRow.sort_at, EntryRow.id) < cursor)
            async with reading(self.engine) as conn:
                rows = (await conn.execute(query)).all()
            if rows:
                yield [_entry(row) for row in rows]
            if len(rows) < batch:
                return
            cursor = (rows[-1].sort_at, rows[-1].id)

    async def count_entries(self) -> dict[str, int]:
        """Stored entries per source id."""
        query = select(EntryRow.source_id, func.count()).group_by(EntryRow.source_id)
        async with reading(self.engine) as conn:
            return {source_id: count for source_id, count in (await conn.execute(query)).all()}


_RESET_FOR_NEW_URL: dict[str, Any] = {
    "etag": None,
    "last_modified": None,
    "error_kind": None,
    "error_message": None,
    "error_count": 0,
}


_NO_LEASE: dict[str, Any] = {"lease_owner": None, "lease_expires_at": None}


def _retention_columns(retention: Retention) -> dict[str, Any]:
    age = retention.max_age
    return {
        "retain_max_age_seconds": int(age.total_seconds()) if age is not None else None,
        "retain_max_entries": retention.max_entries,
    }


def _retention(max_age_seconds: int | None, max_entries: int | None) -> Retention:
    age = timedelta(seconds=max_age_seconds) if max_age_seconds is not None else None
    return Retention(max_age=age, max_entries=max_entries)


def _success(validators: Validators, now: datetime, next_poll_at: datetime) -> dict[str, Any]:
    return {
        **_NO_LEASE,
        "etag": validators.etag,
        "last_modified": validators.last_modified,
        "last_polled_at": now,
        "last_success_at": now,
        "next_poll_at": next_poll_at,
        "error_kind": None,
        "error_message": None,
        "error_count": 0,
    }


def _source(s: Row[Any]) -> StoredSource:
    return StoredSource(
        id=s.id,
        url=s.url,
        title=s.title,
        interval=timedelta(seconds=s.interval_seconds),
        active=bool(s.active),
        validators=Validators(s.etag, s.last_modified),
        feed_title=s.feed_title,
        feed_link=s.feed_link,
        next_poll_at=s.next_poll_at,
        last_polled_at=s.last_polled_at,
        last_success_at=s.last_success_at,
        error_kind=s.error_kind,
        error_message=s.error_message,
        error_count=s.error_count,
        lease_owner=s.lease_owner,
        lease_expires_at=s.lease_expires_at,
        last_counts=(
            IngestCounts(s.last_new, s.last_updated or 0, s.last_unchanged or 0)
            if s.last_new is not None
            else None
        ),
        retention=_retention(s.retain_max_age_seconds, s.retain_max_entries),
    )


def _entry(e: Row[Any]) -> StoredEntry:
    return StoredEntry(
        uid=e.uid,
        source_id=e.source_id,
        entry_key=e.entry_key,
        link=e.link,
        title=e.title,
        summary=e.summary,
        content=e.content,
        authors=tuple(e.authors or ()),
        categories=tuple(e.categories or ()),
        enclosures=tuple(
            Enclosure(x["url"], x.get("type"), x.get("length")) for x in e.enclosures or ()
        ),
        published=e.published,
        updated=e.updated,
        sort_at=e.sort_at,
        first_seen_at=e.first_seen_at,
        changed_at=e.changed_at,
        canonical_link=e.canonical_link,
    )
