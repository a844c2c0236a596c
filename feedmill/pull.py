"""Pulling sources: the upstream half of the pipeline.

    for source in store.claim_due_sources(now, lease, owner):   # a lease per source, in the db
        result = fetch_document(client, source.url, source.validators)
        if result is 304:   store.record_not_modified(source, next poll)
        else:
            feed = parse_document(result.content)          # off the event loop
            store.ingest(source, feed, validators, next poll)   # one transaction
        on SourceError:     store.record_failure(source, kind, message, backed-off next poll)

A failing source is a value (:class:`PullResult` with ``error``); it never stops the others.
Writes run to completion even when the pull is cancelled (shutdown): see :meth:`Puller.drain`.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import uuid
from collections.abc import Awaitable, Iterable
from concurrent.futures import Executor
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar

import httpx

from feedmill.clock import Clock
from sources import (
    FetchSettings,
    SourceError,
    fetch_document,
    next_poll_after_failure,
    next_poll_after_success,
    parse_document,
)
from sources.model import FetchResult
from store import IngestCounts, Store, StoredSource

log = logging.getLogger("feedmill.pull")
T = TypeVar("T")

# How long a claimed source stays claimed if the process dies before recording an outcome.
CLAIM_LEASE = timedelta(minutes=10)


def default_owner() -> str:
    """A lease owner name unique to this process: host, pid and a random part."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


@dataclass(frozen=True, slots=True)
class PullResult:
    source_id: str
    counts: IngestCounts | None = None
    not_modified: bool = False
    error: SourceError | None = None

    @property
    def status(self) -> str:
        if self.error is not None:
            return "error"
        if self.not_modified or self.counts is None:
            return "unchanged"
        if self.counts.new:
            return "new"
        return "updated" if self.counts.updated else "unchanged"


class Puller:
    def __init__(
        self,
        store: Store,
        client: httpx.AsyncClient,
        settings: FetchSettings,
        clock: Clock,
        *,
        concurrency: int = 10,
        parse_executor: Executor | None = None,
        lease: timedelta = CLAIM_LEASE,
        owner: str | None = None,
    ) -> None:
        self.store = store
        self.lease = lease
        self.owner = owner or default_owner()
        self._batch = concurrency
        self.client = client
        self.settings = settings
        self.clock = clock
        self.parse_executor = parse_executor
        self._limit = asyncio.Semaphore(concurrency)
        self._writes: set[asyncio.Future[Any]] = set()

    async def pull_due(self) -> list[PullResult]:
        """One heartbeat: lease due sources a batch at a time (``concurrency`` of them) and
        pull them, until none is due. Small batches let several workers share the work."""
        results: list[PullResult] = []
        while due := await self.store.claim_due_sources(
            self.clock(), self.lease, limit=self._batch, owner=self.owner
        ):
            results += await self.pull_many(due)
        return results

    async def pull_many(self, sources: Iterable[StoredSource]) -> list[PullResult]:
        return list(await asyncio.gather(*(self._pull_limited(s) for s in sources)))

    async def _pull_limited(self, source: StoredSource) -> PullResult:
        async with self._limit:
            return await self.pull_source(source)

    async def pull_source(self, source: StoredSource) -> PullResult:
        try:
            fetched = await fetch_document(
                self.client, source.url, source.validators, self.settings
            )
            if fetched.not_modified:
                await self._write(
                    self.store.record_not_modified(
                        source.id, fetched.validators, self.clock(), self._next_poll(source)
                    )
                )
                return PullResult(source.id, not_modified=True)
            return PullResult(source.id, counts=await self._store_document(source, fetched))
        except SourceError as error:
            now = self.clock()
            retry = next_poll_after_failure(now, source.interval, source.error_count + 1)
            log.info("source %s failed: %s", source.id, error)
            await self._write(
                self.store.record_failure(source.id, error.kind.value, error.message, now, retry)
            )
            return PullResult(source.id, error=error)

    async def _store_document(self, source: StoredSource, fetched: FetchResult) -> IngestCounts:
        loop = asyncio.get_running_loop()
        feed = await loop.run_in_executor(
            self.parse_executor, parse_document, fetched.content, fetched.url, fetched.content_type
        )
        counts = await self._write(
            self.store.ingest(
                source.id, feed, fetched.validators, self.clock(), self._next_poll(source)
            )
        )
        log.info(
            "source %s: %d new, %d updated, %d unchanged",
            source.id,
            counts.new,
            counts.updated,
            counts.unchanged,
        )
        return counts

    def _next_poll(self, source: StoredSource) -> datetime:
        return next_poll_after_success(self.clock(), source.interval)

    async def _write(self, write: Awaitable[T]) -> T:
        """Run a store write so that cancelling the pull does not cut it short."""
        task = asyncio.ensure_future(write)
        self._writes.add(task)
        task.add_done_callback(self._writes.discard)
        return await asyncio.shield(task)

    async def drain(self) -> None:
        """Wait for every write that was started; call after cancelling pulls."""
        while self._writes:
            await asyncio.gather(*list(self._writes), return_exceptions=True)
