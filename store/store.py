"""The repository: every read and write feedmill makes, as short async methods.

Each method is one transaction. Values in and out are frozen dataclasses (store.model,
sources.model); the tables never leave this package.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, aclosing, asynccontextmanager, nullcontext
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import (
    Connection,
    Integer,
    Row,
    String,
    bindparam,
    case,
    func,
    insert,
    or_,
    select,
    text,
    tuple_,
    update,
)
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from sources.model import Author, Enclosure, ParsedFeed, Validators
from store import documents, source_queries, story_store
from store.canonical import DEFAULT_FILTER, TrackingFilter, normalize_url
from store.database import (
    WRITER_THREADS,
    create_engine,
    create_thread_engine,
    reading,
    write_with,
    writing,
)
from store.errors import UnknownSourceError
from store.ingest import LostInsertRace, upsert_entries
from store.model import (
    DocumentKey,
    IngestCounts,
    PollingUpdate,
    Retention,
    SourceChange,
    SourceDefinition,
    SourceSummary,
    StoredEntry,
    StoredSource,
    StoredStory,
    StorySummary,
)
from store.retention import prune_source
from store.search import SearchQuery
from store.search.reader import search_pages
from store.stories import StorySettings
from store.story_store import StoryClusterer
from store.tables import Base, EntryRow, SourceRow
from store.types import UTCDateTime
from store.versions import NEXT_VERSION, lock_versions

T = TypeVar("T")

# PostgreSQL's deadlock_detected and serialization_failure: the ingest is tried again.
_RETRYABLE = frozenset({"40P01", "40001"})
_DEADLOCK_RETRIES = 3

# pg_advisory_lock key held while a process migrates and syncs sources ("feedmill" in ASCII).
_SETUP_LOCK = 0x666565646D696C6C


class Store:
    """feedmill's database. ``Store.open(url)``, use, then ``await store.close()``."""

    def __init__(
        self,
        engine: AsyncEngine,
        tracking: TrackingFilter = DEFAULT_FILTER,
        stories: StorySettings | None = None,
    ) -> None:
        self.engine = engine
        self.tracking = tracking
        self.stories = stories  # how new entries are clustered; None: not at all
        self.clusterer = StoryClusterer(stories) if stories is not None else None
        # SQLite has one writer at a time. Queue this process's writers here rather than
        # let them poll the database lock (busy_timeout), which wastes most of the wait.
        self._serial = engine.dialect.name == "sqlite"
        self._write_turn = asyncio.Lock()
        # Source updates waiting to be written together (group commit), and their writer.
        self._queued: list[_QueuedUpdate] = []
        self._group_writer: asyncio.Future[None] | None = None
        # Each source's retention as this process configured it (sync_sources), so ingest
        # need not read it back; a process that did not sync reads the row.
        self._retention_of: dict[str, Retention] = {}
        # Where cluster_backlog goes on from: (sort time, row id) of the last entry it took.
        self._backlog_from: tuple[datetime, int] | None = None
        # SQLite file: ingests run their whole transaction in one call on this engine in a
        # writer thread of their own (one hop instead of several per statement through
        # aiosqlite's thread); None: on self.engine.
        self._thread_engine = create_thread_engine(engine)
        threads = 1 if self._serial else WRITER_THREADS
        self._writer = ThreadPoolExecutor(threads, "feedmill-writer")

    @asynccontextmanager
    async def _writing(self) -> AsyncIterator[AsyncConnection]:
        turn = self._write_turn if self._serial else nullcontext()
        async with turn, writing(self.engine) as conn:
            yield conn

    @classmethod
    def open(
        cls,
        url: str,
        *,
        tracking: TrackingFilter = DEFAULT_FILTER,
        stories: StorySettings | None = None,
        **engine_options: Any,
    ) -> Store:
        return cls(create_engine(url, **engine_options), tracking, stories)

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

    async def ping(self) -> None:
        """Ask the database one trivial question; DatabaseUnavailable when it does not answer."""
        async with reading(self.engine) as conn:
            await conn.execute(text("SELECT 1"))

    async def close(self) -> None:
        await self.engine.dispose()
        self._writer.shutdown()  # idle: the writes went through the write turn
        if self._thread_engine is not None:
            self._thread_engine.dispose()

    # -- sources ------------------------------------------------------------------------

    async def sync_sources(self, definitions: Iterable[SourceDefinition], now: datetime) -> None:
        """Make the stored sources match the configured ones.

        New sources are due at once; a source whose URL changed loses its validators and
        error state and is due at once; a source no longer configured is kept (with its
        entries) but deactivated.
        """
        wanted = {d.id: d for d in definitions}
        self._retention_of = {d.id: d.retention for d in wanted.values()}
        configured = [getattr(SourceRow, name) for name in _CONFIGURED]
        async with self._writing() as conn:
            rows = (await conn.execute(select(SourceRow.id, *configured))).all()
            stored = {row[0]: tuple(row[1:]) for row in rows}  # the _CONFIGURED columns
            # One statement each, however many sources; rows already as configured (the
            # usual start: nothing changed) are not written at all.
            new, kept, moved = [], [], []
            for definition in wanted.values():
                configured_now = _configured(definition)
                before = stored.get(definition.id)
                if before == configured_now:
                    continue
                values: dict[str, Any] = dict(zip(_CONFIGURED, configured_now, strict=True))
                if before is None:
                    first = {"id": definition.id, "next_poll_at": now, "created_at": now}
                    new.append({**first, "error_count": 0, **values})
                elif before[_URL] != definition.url:
                    moved.append({"_id": definition.id, "next_poll_at": now, **values})
                else:
                    kept.append({"_id": definition.id, **values})
            if new:
                await conn.execute(insert(SourceRow), new)
            for changes, extra in ((kept, {}), (moved, _RESET_FOR_NEW_URL)):
                if changes:
                    columns: dict[str, Any] = {n: bindparam(n) for n in changes[0] if n != "_id"}
                    statement = update(SourceRow).where(SourceRow.id == bindparam("_id"))
                    await conn.execute(statement.values(**columns, **extra), changes)
            gone = {i for i, row in stored.items() if row[_ACTIVE] and i not in wanted}
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

    async def source_summary(self, now: datetime) -> SourceSummary:
        """The active sources per state, how many are due and held by nobody, the last poll."""
        async with reading(self.engine) as conn:
            return await source_queries.source_summary(conn, now)

    async def source_page(
        self,
        *,
        states: Sequence[str] | None = None,
        text: str = "",
        offset: int = 0,
        limit: int | None = 100,
    ) -> tuple[list[StoredSource], int]:
        """A page of the active sources, failing first, filtered by state and text; and how
        many match (store.source_queries)."""
        async with reading(self.engine) as conn:
            rows, matching = await source_queries.source_page(conn, states, text, offset, limit)
        return [_source(row) for row in rows], matching

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
        params: dict[str, Any] = {"claim_now": now, "claim_expires": now + lease}
        params["claim_owner"] = owner
        claim = _CLAIM
        if limit is not None:
            claim, params["claim_limit"] = _CLAIM_AT_MOST, limit
        async with self._writing() as conn:
            rows = (await conn.execute(claim, params)).all()
        # RETURNING gives no order: the earliest due first, as the subquery picked them.
        return sorted(map(_source, rows), key=lambda s: (s.next_poll_at, s.id))

    async def record_not_modified(
        self,
        source_id: str,
        validators: Validators,
        now: datetime,
        next_poll_at: datetime,
        polling: PollingUpdate | None = None,
    ) -> None:
        await self._update_source(
            source_id, _success(validators, now, next_poll_at) | _polling(polling)
        )

    async def _update_source(self, source_id: str, values: dict[str, Any]) -> None:
        """UPDATE one source row, in a transaction shared with the updates queued meanwhile.

        Group commit: updates queue up, and one writer task (started by the first update that
        finds none running) takes the write turn and writes every queued update in one
        transaction (one executemany per set of columns), then the ones queued meanwhile, until
        the queue is empty. Callers wait for their own update only, not in line for the write
        turn. A poll cycle of mostly 304s then costs a handful of transactions instead of one
        each, on PostgreSQL too. If a transaction fails, every caller in it gets the exception
        and none of its updates is kept. A caller that is cancelled does not take its update
        back: it is written with the others, and nobody looks at the outcome.
        """
        queued = _QueuedUpdate(source_id, values, asyncio.get_running_loop().create_future())
        self._queued.append(queued)
        if self._group_writer is None:
            self._group_writer = asyncio.ensure_future(self._write_all_queued())
        try:
            await asyncio.shield(queued.done)  # raises the error of the transaction that carried it
        except asyncio.CancelledError:
            queued.done.add_done_callback(_ignore_outcome)
            raise

    async def _write_all_queued(self) -> None:
        try:
            while self._queued:
                async with self._write_turn if self._serial else nullcontext():
                    await self._write_queued()
        except BaseException:  # cancelled (the loop is closing): nobody will write these
            for queued in self._queued:
                queued.done.cancel()
            self._queued = []
            raise
        finally:
            self._group_writer = None

    async def _write_queued(self) -> None:
        batch, self._queued = self._queued, []
        try:
            by_columns: dict[tuple[str, ...], list[dict[str, Any]]] = {}
            for queued in batch:
                columns = tuple(sorted(queued.values))
                row = {"_source_id": queued.source_id, **queued.values}
                by_columns.setdefault(columns, []).append(row)
            async with writing(self.engine) as conn:
                for rows in by_columns.values():
                    await conn.execute(_UPDATE_SOURCE, rows)
        except Exception as exc:
            for queued in batch:
                queued.done.set_exception(exc)
            return
        except BaseException:  # cancelled mid-transaction: rolled back, none of them written
            for queued in batch:
                queued.done.cancel()
            raise
        for queued in batch:
            queued.done.set_result(None)

    async def record_failure(
        self,
        source_id: str,
        kind: str,
        message: str,
        now: datetime,
        next_poll_at: datetime,
        *,
        gone: bool = False,
    ) -> None:
        """A failed poll; ``gone`` (410) stops polling the source until its URL changes."""
        async with self._writing() as conn:
            await conn.execute(
                update(SourceRow)
                .where(SourceRow.id == source_id)
                .values(
                    error_kind=kind,
                    error_message=message[:2000],
                    error_count=SourceRow.error_count + 1,
                    failing_since=case(
                        (SourceRow.error_count == 0, now), else_=SourceRow.failing_since
                    ),
                    last_polled_at=now,
                    next_poll_at=next_poll_at,
                    **({"gone": True} if gone else {}),
                    **_NO_LEASE,
                )
            )

    async def postpone(self, source_id: str, next_poll_at: datetime) -> None:
        """Move a claimed source's next poll without polling it (its host is holding us off)."""
        async with self._writing() as conn:
            await conn.execute(
                update(SourceRow)
                .where(SourceRow.id == source_id)
                .values(next_poll_at=next_poll_at, **_NO_LEASE)
            )

    async def ingest(
        self,
        source_id: str,
        feed: ParsedFeed,
        validators: Validators,
        now: datetime,
        next_poll_at: datetime,
        polling: PollingUpdate | None = None,
    ) -> IngestCounts:
        """Store a freshly parsed document and the source's new state in one transaction;
        then apply the source's retention in the same transaction. A transaction PostgreSQL
        aborts for a deadlock (two workers clustering into the same stories) is run again;
        so is one that lost an insert race to another writer of the same entries, then with
        exact (RETURNING) inserts (store.ingest)."""
        exact = False
        deadlocks = 0
        while True:
            try:
                return await self._ingest_once(
                    source_id, feed, validators, now, next_poll_at, polling, exact
                )
            except LostInsertRace:
                exact = True  # exact inserts never raise it: this happens once at most
            except DBAPIError as exc:
                deadlocks += 1
                code = getattr(exc.orig, "sqlstate", None)
                if code not in _RETRYABLE or deadlocks == _DEADLOCK_RETRIES:
                    raise

    async def _ingest_once(
        self,
        source_id: str,
        feed: ParsedFeed,
        validators: Validators,
        now: datetime,
        next_poll_at: datetime,
        polling: PollingUpdate | None,
        exact: bool = False,
    ) -> IngestCounts:
        """One try of :meth:`ingest`: the whole transaction in one call in a writer thread
        (:meth:`_write_sync`; the event loop stays free)."""
        work = functools.partial(
            self._write_document, source_id, feed, validators, now, next_poll_at, polling, exact
        )
        return await self._write_sync(work)

    async def _write_sync(self, work: Callable[[Connection], T]) -> T:
        """``work(conn)`` in one write transaction on a sync connection, in a writer thread
        (the event loop stays free: ingest parses nothing, but clusters); SQLite's writers
        take turns. A SQLite ``:memory:`` database has only its async connection:
        ``run_sync`` there."""
        if self._thread_engine is None:
            async with self._writing() as conn:  # the write turn first: then no one waits
                with self._clustering():
                    return await conn.run_sync(work)
        async with self._write_turn if self._serial else nullcontext():
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(self._writer, self._write_in_thread, work)

    def _write_in_thread(self, work: Callable[[Connection], T]) -> T:
        assert self._thread_engine is not None
        with self._clustering():
            return write_with(self._thread_engine, work)

    def _clustering(self) -> AbstractContextManager[None]:
        """The story index's turn, held through a write transaction and its commit."""
        return nullcontext() if self.clusterer is None else self.clusterer.transaction()

    def _write_document(
        self,
        source_id: str,
        feed: ParsedFeed,
        validators: Validators,
        now: datetime,
        next_poll_at: datetime,
        polling: PollingUpdate | None,
        exact: bool,
        conn: Connection,
    ) -> IngestCounts:
        """The ingest transaction's statements, on the caller's sync connection."""
        counts = upsert_entries(
            conn, source_id, feed.entries, now, self.tracking, self.clusterer, exact=exact
        )
        pruned = prune_source(
            conn, source_id, self._retention(conn, source_id), now, self._pruned_callback()
        )
        counts = dataclasses.replace(counts, pruned=pruned)
        changed = bool(counts.new or counts.updated or counts.pruned)
        lock_versions(conn)
        conn.execute(
            _INGESTED_SOURCE[changed],
            {
                "_source_id": source_id,
                "_feed_title": feed.title,
                "_feed_link": feed.link,
                "feed_title": feed.title,
                "feed_link": feed.link,
                "last_new": counts.new,
                "last_updated": counts.updated,
                "last_unchanged": counts.unchanged,
                **_success(validators, now, next_poll_at),
                **_polling(polling),
            },
        )
        return counts

    def _retention(self, conn: Connection, source_id: str) -> Retention:
        """A source's retention: from :meth:`sync_sources` in this process, else the row."""
        if source_id in self._retention_of:
            return self._retention_of[source_id]
        row = conn.execute(
            select(SourceRow.retain_max_age_seconds, SourceRow.retain_max_entries).where(
                SourceRow.id == source_id
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
            work = functools.partial(self._prune_one, source.id, source.retention, now)
            count = await self._write_sync(work)
            if count:
                removed[source.id] = count
        return removed

    # -- entries ------------------------------------------------------------------------

    async def newest_entries(
        self,
        source_ids: Sequence[str] | None,
        *,
        batch: int = 200,
        cursor: tuple[datetime, int] | None = None,
    ) -> AsyncGenerator[list[StoredEntry], None]:
        """Pages of the entries of ``source_ids`` (of every source with None), newest first
        (keyset paging, one short read transaction a page, so a reader that stops early holds
        nothing open)."""
        while True:
            query = (
                select(EntryRow).order_by(EntryRow.sort_at.desc(), EntryRow.id.desc()).limit(batch)
            )
            if source_ids is not None:
                query = query.where(EntryRow.source_id.in_(source_ids))
            if cursor is not None:
                query = query.where(tuple_(EntryRow.sort_at, EntryRow.id) < cursor)
            async with reading(self.engine) as conn:
                rows = (await conn.execute(query)).all()
            if rows:
                yield [_entry(row) for row in rows]
            if len(rows) < batch:
                return
            cursor = (rows[-1].sort_at, rows[-1].id)

    async def source_changes(self, since: int | None = None) -> list[SourceChange]:
        """The sources whose content version is above ``since`` (all of them with None), with
        what a rendered feed says of them. Versions come from one counter over all sources
        and grow whenever an entry of a source is added, changed or pruned, or its title or
        link changes (store.versions): a reader that keeps the highest version it saw reads
        only what changed since, by index."""
        query = select(
            SourceRow.id,
            SourceRow.content_version,
            SourceRow.url,
            SourceRow.title,
            SourceRow.feed_title,
            SourceRow.feed_link,
        )
        if since is not None:
            query = query.where(SourceRow.content_version > since)
        async with reading(self.engine) as conn:
            rows = (await conn.execute(query)).all()
        return [SourceChange(*row) for row in rows]

    async def source_versions(self) -> dict[str, int]:
        """Every source's content version (see :meth:`source_changes`)."""
        return {change.id: change.content_version for change in await self.source_changes()}

    async def entries_before(
        self, source_ids: Sequence[str] | None, uid: str, *, batch: int = 200
    ) -> AsyncGenerator[list[StoredEntry], None]:
        """Like :meth:`newest_entries`, starting after the entry ``uid`` (its place in the
        newest-first order): the keyset cursor of a curated feed's archive pages. Nothing when
        ``uid`` is unknown."""
        async with reading(self.engine) as conn:
            row = (
                await conn.execute(select(EntryRow.sort_at, EntryRow.id).where(EntryRow.uid == uid))
            ).first()
        if row is None:
            return
        pages = self.newest_entries(source_ids, batch=batch, cursor=(row.sort_at, row.id))
        async with aclosing(pages):
            async for page in pages:
                yield page

    def search_entries(
        self,
        query: SearchQuery,
        now: datetime,
        *,
        source_ids: Sequence[str] | None = None,
        before: str | None = None,
        batch: int = 200,
        timeout: float | None = None,
    ) -> AsyncGenerator[list[StoredEntry], None]:
        """Pages of the entries matching ``query`` (of ``source_ids``, else of every source),
        newest first like :meth:`newest_entries`; with ``before``, those after the entry
        ``before``. Beyond ``timeout`` seconds: SearchTimeoutError (store.search.reader)."""
        return search_pages(
            self.engine,
            query,
            now,
            _entry,
            source_ids=source_ids,
            before=before,
            batch=batch,
            budget=timeout,
        )

    async def count_entries(self, source_ids: Sequence[str] | None = None) -> dict[str, int]:
        """Stored entries per source id (of ``source_ids`` only, when given)."""
        query = select(EntryRow.source_id, func.count()).group_by(EntryRow.source_id)
        if source_ids is not None:
            query = query.where(EntryRow.source_id.in_(source_ids))
        async with reading(self.engine) as conn:
            return {source_id: count for source_id, count in (await conn.execute(query)).all()}

    def _prune_one(
        self, source_id: str, retention: Retention, now: datetime, conn: Connection
    ) -> int:
        count = prune_source(conn, source_id, retention, now, self._pruned_callback())
        if count:  # cached renderings of this source's feeds are stale now
            lock_versions(conn)
            conn.execute(
                update(SourceRow)
                .where(SourceRow.id == source_id)
                .values(content_version=NEXT_VERSION)
            )
        return count

    def _pruned_callback(self) -> Callable[[list[str]], None] | None:
        return None if self.clusterer is None else self.clusterer.pruned

    # -- served documents -----------------------------------------------------------------

    async def document_changed_at(self, key: DocumentKey, digest: str, now: datetime) -> datetime:
        """When the document ``key`` last changed, ``digest`` being its current content: a
        read while it is unchanged, else one short write (store.documents)."""
        async with reading(self.engine) as conn:
            stored = await documents.stored_change(conn, key)
        if stored is not None and stored[0] == digest:
            return stored[1]
        async with self._writing() as conn:
            return await documents.record_change(conn, key, digest, now)

    async def has_entry(self, uid: str) -> bool:
        async with reading(self.engine) as conn:
            found = await conn.execute(select(EntryRow.id).where(EntryRow.uid == uid))
            return found.first() is not None

    # -- stories ----------------------------------------------------------------------------

    async def story_groups(
        self, uids: Sequence[str]
    ) -> dict[str, tuple[str, tuple[StoredEntry, ...]]]:
        """For each of ``uids`` in a story: (story id, all its stored members)."""
        async with reading(self.engine) as conn:
            return await story_store.story_groups(conn, uids, _entry)

    async def link_groups(self, links: Sequence[str]) -> dict[str, tuple[StoredEntry, ...]]:
        """The stored entries with each canonical link."""
        async with reading(self.engine) as conn:
            return await story_store.link_groups(conn, links, _entry)

    async def story_of(self, uid: str) -> StoredStory | None:
        """The entry's story, its members and the decisions that put them there."""
        async with reading(self.engine) as conn:
            return await story_store.load_story(conn, uid)

    async def recent_stories(self, limit: int = 10) -> list[StorySummary]:
        """The latest stories carried by two or more sources (the status page's list)."""
        async with reading(self.engine) as conn:
            return await story_store.recent_stories(conn, limit)

    def story_counts(self) -> dict[str, int]:
        """What this process's story engine did since it built its index: stories founded,
        entries that joined one, stories merged into another, entries held (for /metrics)."""
        index = self.clusterer.index if self.clusterer is not None else None
        if index is None:
            return {"founded": 0, "joined": 0, "merged": 0, "held": 0}
        return {
            "founded": index.founded,
            "joined": index.joined,
            "merged": index.merged,
            "held": len(index),
        }

    async def cluster_backlog(self, now: datetime, *, limit: int = 100) -> int:
        """Give a story to up to ``limit`` stored entries that have none (stored while
        clustering was off, or before migration 0005), oldest first, in one transaction.
        Returns how many; 0 once none is left, or when clustering is off. Call it again until
        it returns 0: it goes on where it stopped (a process keeps the place)."""
        if self.clusterer is None:
            return 0
        work = functools.partial(
            story_store.cluster_backlog,
            clusterer=self.clusterer,
            now=now,
            limit=limit,
            after=self._backlog_from,
        )
        done, self._backlog_from = await self._write_sync(work)
        return done

    async def find_entry(self, target: str) -> StoredEntry | None:
        """An entry by any id a reader sees: its uid, our feeds' id (``urn:uuid:...``: the
        Atom id, the RSS guid, the JSON Feed id), a story's id (its representative), or
        its link (compared as a canonical link, else as given)."""
        uid = _uid_of(target)
        link = normalize_url(target, self.tracking) if "/" in target else None
        async with reading(self.engine) as conn:
            row = None
            if uid is not None:
                row = (await conn.execute(select(EntryRow).where(EntryRow.uid == uid))).first()
                shown = None if row else await story_store.find_story_entry(conn, uid)
                if shown is not None:
                    query = select(EntryRow).where(EntryRow.uid == shown)
                    row = (await conn.execute(query)).first()
            if row is None and link is not None:
                by_link = (
                    select(EntryRow)
                    .where(EntryRow.canonical_link == link)
                    .order_by(EntryRow.first_seen_at, EntryRow.id)
                    .limit(1)
                )
                row = (await conn.execute(by_link)).first()
                if row is None:
                    by_raw = select(EntryRow).where(EntryRow.link == target).limit(1)
                    row = (await conn.execute(by_raw)).first()
        return None if row is None else _entry(row)


# The columns sync_sources sets from the config.
_CONFIGURED = (
    "url",
    "title",
    "interval_seconds",
    "active",
    "retain_max_age_seconds",
    "retain_max_entries",
)
_URL, _ACTIVE = _CONFIGURED.index("url"), _CONFIGURED.index("active")


def _configured(definition: SourceDefinition) -> tuple[Any, ...]:
    """The _CONFIGURED columns of a configured source, in that order."""
    age = definition.retention.max_age
    return (
        definition.url,
        definition.title,
        int(definition.interval.total_seconds()),
        True,
        int(age.total_seconds()) if age is not None else None,
        definition.retention.max_entries,
    )


def _uid_of(target: str) -> str | None:
    """The entry uid (32 hex digits) a ``urn:uuid:`` id or a uid spells, else None."""
    text = target.strip().lower().removeprefix("urn:uuid:")
    try:
        return uuid.UUID(text).hex
    except ValueError:
        return None


_RESET_FOR_NEW_URL: dict[str, Any] = {
    "etag": None,
    "last_modified": None,
    "error_kind": None,
    "error_message": None,
    "error_count": 0,
    "failing_since": None,
    "effective_url": None,
    "redirect_target": None,
    "redirect_count": 0,
    "gone": False,
    "body_hash": None,
}


@dataclass(eq=False, slots=True)
class _QueuedUpdate:
    source_id: str
    values: dict[str, Any]
    done: asyncio.Future[None]


_sources_table = Base.metadata.tables["sources"]
# One source row by id; the SET clause comes from the keys of each parameter set.
_UPDATE_SOURCE = update(_sources_table).where(_sources_table.c.id == bindparam("_source_id"))


def _claim_statement(limited: bool) -> Any:
    """Pick the due sources, lease them and read them back, in one statement (UPDATE ...
    RETURNING). Built once: building and keying a statement this size costs about 1 ms."""
    c = _sources_table.c
    now = bindparam("claim_now", type_=UTCDateTime())
    due = (
        select(c.id)
        .where(
            c.active.is_(True),
            c.gone.is_(False),
            c.next_poll_at <= now,
            or_(c.lease_expires_at.is_(None), c.lease_expires_at <= now),
        )
        .order_by(c.next_poll_at, c.id)
        .with_for_update(skip_locked=True)
    )
    if limited:
        due = due.limit(bindparam("claim_limit", type_=Integer()))
    return (
        update(_sources_table)
        .where(c.id.in_(due.scalar_subquery()))
        .values(
            lease_owner=bindparam("claim_owner", type_=String()),
            lease_expires_at=bindparam("claim_expires", type_=UTCDateTime()),
            last_polled_at=now,
        )
        .returning(*c)
    )


_CLAIM = _claim_statement(limited=False)
_CLAIM_AT_MOST = _claim_statement(limited=True)


def _ignore_outcome(done: asyncio.Future[None]) -> None:
    if not done.cancelled():
        done.exception()  # retrieved, so asyncio does not log it as never retrieved


def _polling(polling: PollingUpdate | None) -> dict[str, Any]:
    if polling is None:
        return {}
    return {
        "effective_url": polling.effective_url,
        "redirect_target": polling.redirect_target,
        "redirect_count": polling.redirect_count,
        "body_hash": polling.body_hash,
        "estimated_interval_seconds": _seconds(polling.estimated_interval),
        "feed_hint_seconds": _seconds(polling.feed_hint),
    }


def _seconds(value: timedelta | None) -> int | None:
    return None if value is None else int(value.total_seconds())


def _timedelta(seconds: int | None) -> timedelta | None:
    return None if seconds is None else timedelta(seconds=seconds)


# The source row after an ingest, built once: the SET clause is the parameters' columns plus
# ``content_version``: the next version (store.versions) when entries were added, changed or
# pruned (True), else only when the title or link changed (False, evaluated by the database
# in the same UPDATE).
_INGESTED_SOURCE = {
    True: update(SourceRow)
    .where(SourceRow.id == bindparam("_source_id"))
    .values(content_version=NEXT_VERSION),
    False: update(SourceRow)
    .where(SourceRow.id == bindparam("_source_id"))
    .values(
        content_version=case(
            (
                or_(
                    SourceRow.feed_title.is_distinct_from(bindparam("_feed_title")),
                    SourceRow.feed_link.is_distinct_from(bindparam("_feed_link")),
                ),
                NEXT_VERSION,
            ),
            else_=SourceRow.content_version,
        )
    ),
}


_NO_LEASE: dict[str, Any] = {"lease_owner": None, "lease_expires_at": None}


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
        "failing_since": None,
    }


def _source(row: Row[Any]) -> StoredSource:
    # By key through the mapping: a Row's attribute access costs about 1 us a column.
    s = row._mapping
    return StoredSource(
        id=s["id"],
        url=s["url"],
        title=s["title"],
        interval=timedelta(seconds=s["interval_seconds"]),
        active=bool(s["active"]),
        validators=Validators(s["etag"], s["last_modified"]),
        feed_title=s["feed_title"],
        feed_link=s["feed_link"],
        next_poll_at=s["next_poll_at"],
        last_polled_at=s["last_polled_at"],
        last_success_at=s["last_success_at"],
        error_kind=s["error_kind"],
        error_message=s["error_message"],
        error_count=s["error_count"],
        failing_since=s["failing_since"],
        effective_url=s["effective_url"],
        redirect_target=s["redirect_target"],
        redirect_count=s["redirect_count"],
        gone=bool(s["gone"]),
        body_hash=s["body_hash"],
        estimated_interval=_timedelta(s["estimated_interval_seconds"]),
        feed_hint=_timedelta(s["feed_hint_seconds"]),
        lease_owner=s["lease_owner"],
        lease_expires_at=s["lease_expires_at"],
        last_counts=(
            IngestCounts(s["last_new"], s["last_updated"] or 0, s["last_unchanged"] or 0)
            if s["last_new"] is not None
            else None
        ),
        retention=_retention(s["retain_max_age_seconds"], s["retain_max_entries"]),
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
        authors=tuple(
            Author(a) if isinstance(a, str) else Author(a["name"], a.get("url"))
            for a in e.authors or ()
        ),
        categories=tuple(e.categories or ()),
        enclosures=tuple(
            Enclosure(x["url"], x.get("type"), x.get("length")) for x in e.enclosures or ()
        ),
        published=e.published,
        updated=e.updated,
        sort_at=e.sort_at,
        first_seen_at=e.first_seen_at,
        changed_at=e.changed_at,
        language=e.language,
        canonical_link=e.canonical_link,
    )
