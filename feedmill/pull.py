"""Pulling sources: the upstream half of the pipeline.

    for source in store.claim_due_sources(now, lease, owner):   # a lease per source, in the db
        if its host is held (shared Retry-After): store.postpone(source, until)
        if its host is congested (in a heartbeat): store.postpone(source, now + deadline)
        with a per-host slot: result = fetch_feed(client, source.fetch_url, validators)
        redirect count / discovery -> the effective URL          (sources.policy)
        if 304 or same body hash:  store.record_not_modified(source, next poll, state)
        else:
            feed = parse_document(result.content)          # off the event loop
            store.ingest(source, feed, validators, next poll, state)   # one transaction
        on SourceError:  store.record_failure(source, kind, message, backed-off next poll)
        on any other exception (a bug):  logged with its traceback, recorded as `internal`

A failing source is a value (:class:`PullResult` with ``error``); it never stops the others.
Parsing runs in a ParsePool (worker processes, a deadline per document) when one is given,
else in ``parse_executor`` (threads: no deadline can stop a parse there).
Writes run to completion even when the pull is cancelled (shutdown): see :meth:`Puller.drain`.
Each pull is one log event (INFO when it failed, DEBUG otherwise) and is handed to
``Puller.observe`` (metrics, a progress bar) when that is set.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import os
import socket
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any, TypeVar

import httpx

from feedmill.clock import Clock
from feedmill.terminal import terminal_text
from sources import (
    ErrorKind,
    FetchError,
    FetchSettings,
    ParsedFeed,
    PollSettings,
    PollState,
    RedirectState,
    SourceError,
    fetch_feed,
    next_poll_after_failure,
    next_poll_after_success,
    parse_document,
)
from sources.hosts import HostLimits, host_of
from sources.model import FetchResult
from sources.parsing import ParsePool
from sources.policy import (
    estimate_interval,
    feed_hint,
    header_hint,
    retry_after_delay,
    track_redirect,
)
from sources.text import clean_text, shorten
from store import IngestCounts, PollingUpdate, Store, StoredSource

log = logging.getLogger("feedmill.pull")
T = TypeVar("T")

# How long a claimed source stays claimed if the process dies before recording an outcome.
CLAIM_LEASE = timedelta(minutes=10)
# Whether a pull may be postponed when its host is congested: in a heartbeat's flow, yes; in
# `feedmill fetch` (Puller.pull_many: these sources, now), no.
_POSTPONE_CONGESTED: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "postpone_congested", default=False
)


class _Congested(Exception):
    """A pull gives its place up: its host is slow and others wait for it already."""


def default_owner() -> str:
    """A lease owner name unique to this process: host, pid and a random part."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


@dataclass(frozen=True, slots=True)
class PullResult:
    """What one pull did. ``moved_to``: the source's new effective URL (a permanent redirect
    seen on enough consecutive polls, or a feed discovered from an HTML page)."""

    source_id: str
    counts: IngestCounts | None = None
    not_modified: bool = False
    error: SourceError | None = None
    moved_to: str | None = None
    postponed: bool = False
    fetched_bytes: int = 0  # the body's size (0 for a 304 or a failure)
    seconds: float = 0.0  # the whole pull: fetch, parse and store
    fetch_seconds: float | None = None  # the HTTP exchange alone (None: no fetch was made)

    @property
    def status(self) -> str:
        if self.error is not None:
            return "error"
        if self.postponed:
            return "postponed"
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
        parse_pool: ParsePool | None = None,
        polling: PollSettings | None = None,
        hosts: HostLimits | None = None,
        lease: timedelta = CLAIM_LEASE,
        owner: str | None = None,
        recheck: float = 1.0,
    ) -> None:
        self.store = store
        self.lease = lease
        self.recheck = recheck
        self.owner = owner or default_owner()
        self._batch = concurrency
        self.client = client
        self.settings = settings
        self.clock = clock
        self.parse_executor = parse_executor
        self.parse_pool = parse_pool
        self.polling = polling or PollSettings()
        self.hosts = hosts or HostLimits()
        self._limit = asyncio.Semaphore(concurrency)
        # A host is congested when its slots are taken, this many pulls wait for one, and
        # none of its fetches ended for `_host_stall` seconds (a slow host, not merely one
        # with many feeds due): its next sources are postponed rather than hold more of the
        # pulls in flight.
        self._host_queue = max(self.hosts.concurrency, concurrency // 4)
        self._host_stall = max(1.0, settings.deadline / 6)
        self._waiting: dict[str, int] = {}  # host -> pulls waiting for one of its slots
        self._moved: dict[str, float] = {}  # host -> loop time a fetch last took or left a slot
        self._writes: set[asyncio.Future[Any]] = set()
        self.observe: Callable[[PullResult], None] | None = None

    async def pull_due(self) -> list[PullResult]:
        """One heartbeat: lease due sources, no more than ``concurrency`` pulls at a time,
        and lease again as pulls end (and every ``recheck`` seconds while none ends), until
        none is due and none is running. Small claims let several workers share the work;
        a slow pull (a document parsing up to its deadline) does not hold back the sources
        that fall due meanwhile."""
        results: list[PullResult] = []
        running: set[asyncio.Task[PullResult]] = set()
        flowing = _POSTPONE_CONGESTED.set(True)  # the pulls started here (tasks copy it)
        try:
            while True:
                if free := self._batch - len(running):
                    due = await self.store.claim_due_sources(
                        self.clock(), self.lease, limit=free, owner=self.owner
                    )
                    running |= {asyncio.ensure_future(self._pull_limited(s)) for s in due}
                if not running:
                    return results
                done, running = await asyncio.wait(
                    running, timeout=self.recheck, return_when=asyncio.FIRST_COMPLETED
                )
                results += [task.result() for task in done]
        except asyncio.CancelledError:
            for task in running:
                task.cancel()
            await asyncio.gather(*running, return_exceptions=True)
            raise
        finally:
            _POSTPONE_CONGESTED.reset(flowing)

    async def pull_many(self, sources: Iterable[StoredSource]) -> list[PullResult]:
        return list(await asyncio.gather(*(self._pull_limited(s) for s in sources)))

    async def _pull_limited(self, source: StoredSource) -> PullResult:
        async with self._limit:
            return await self.pull_source(source)

    async def pull_source(self, source: StoredSource) -> PullResult:
        """Pull one source; whatever goes wrong is recorded on it and returned, never raised
        (but cancellation)."""
        loop = asyncio.get_running_loop()
        started = loop.time()
        result = await self._guarded_pull(source)
        result = replace(result, seconds=loop.time() - started)
        log_pull(result)
        if self.observe is not None:
            self.observe(result)
        return result

    async def _guarded_pull(self, source: StoredSource) -> PullResult:
        try:
            return await self._pull_source(source)
        except Exception as exc:  # a bug, or a failure nobody classified: this source only
            log.exception("source %s: unexpected error while pulling", source.id)
            message = f"{type(exc).__name__}: {exc}"
            error = SourceError(ErrorKind.INTERNAL, message, url=source.fetch_url)
            try:
                return await self._record_failure(source, host_of(source.fetch_url), error)
            except Exception as again:  # the database is away too: nothing more to do here
                log.error("source %s: the failure could not be recorded: %s", source.id, again)
                return PullResult(source.id, error=error)

    async def _pull_source(self, source: StoredSource) -> PullResult:
        host = host_of(source.fetch_url)
        held = self.hosts.held_until(host, self.clock())
        if held is not None:  # the host asked every one of its sources to wait (Retry-After)
            await self._write(self.store.postpone(source.id, held))
            return PullResult(source.id, postponed=True)
        slot = self.hosts.slot(host)
        loop = asyncio.get_running_loop()
        started: float | None = None
        took: float | None = None
        try:
            async with self._host_slot(host, slot):
                started = loop.time()
                fetched = await fetch_feed(
                    self.client, source.fetch_url, source.validators, self.settings
                )
            took = loop.time() - started
            return replace(await self._record_success(source, fetched), fetch_seconds=took)
        except _Congested:
            # Its host is slow and as many pulls as may already wait for it: come back
            # later rather than hold a place among the pulls in flight, which the sources
            # of other hosts need.
            later = self.clock() + timedelta(seconds=self.settings.deadline)
            await self._write(self.store.postpone(source.id, later))
            return PullResult(source.id, postponed=True)
        except SourceError as error:
            if took is None and started is not None:
                took = loop.time() - started
            return replace(await self._record_failure(source, host, error), fetch_seconds=took)

    def _congested(self, host: str, slot: asyncio.Semaphore) -> bool:
        if not slot.locked() or self._waiting.get(host, 0) < self._host_queue:
            return False
        stalled = asyncio.get_running_loop().time() - self._moved.get(host, 0.0)
        return stalled >= self._host_stall

    @contextlib.asynccontextmanager
    async def _host_slot(self, host: str, slot: asyncio.Semaphore) -> AsyncIterator[None]:
        """One of the host's slots, counting the pulls waiting for one and noting when a
        fetch takes or leaves one. In a heartbeat's flow, _Congested instead when the host
        is congested now, or stays stalled while this pull waits."""
        loop = asyncio.get_running_loop()
        flowing = _POSTPONE_CONGESTED.get()
        if flowing and self._congested(host, slot):
            raise _Congested
        self._waiting[host] = self._waiting.get(host, 0) + 1
        try:
            while True:
                try:
                    await asyncio.wait_for(slot.acquire(), self._host_stall)
                    break
                except TimeoutError:
                    stalled = loop.time() - self._moved.get(host, 0.0) >= self._host_stall
                    if flowing and stalled:
                        raise _Congested from None
        finally:
            self._waiting[host] -= 1
            if not self._waiting[host]:
                del self._waiting[host]
        self._moved[host] = loop.time()
        try:
            yield
        finally:
            self._moved[host] = loop.time()
            slot.release()

    async def _record_success(self, source: StoredSource, fetched: FetchResult) -> PullResult:
        now = self.clock()
        moved_to, redirect = self._effective_url(source, fetched)
        hint = header_hint(fetched.cache_control, fetched.expires, fetched.date, now)
        body_hash = source.body_hash if fetched.not_modified else fetched.body_hash
        if fetched.not_modified or body_hash == source.body_hash:
            # unchanged: a 304, or a 200 with the very body we parsed last time
            polling = self._polling(
                source, moved_to, redirect, body_hash, source.estimated_interval
            )
            next_poll = next_poll_after_success(now, self._state(source), self.polling, [hint])
            await self._write(
                self.store.record_not_modified(
                    source.id, fetched.validators, now, next_poll, polling
                )
            )
            size = 0 if fetched.not_modified else len(fetched.content)
            return PullResult(source.id, not_modified=True, moved_to=moved_to, fetched_bytes=size)
        feed = await self._parse(fetched)
        estimate = (
            estimate_interval((e.published or e.updated for e in feed.entries), now)
            or source.estimated_interval
        )
        hints = feed_hint(feed.ttl, feed.update_period, feed.update_frequency)
        polling = replace(
            self._polling(source, moved_to, redirect, body_hash, estimate), feed_hint=hints
        )
        state = replace(self._state(source), estimated_interval=estimate, feed_hint=hints)
        next_poll = next_poll_after_success(now, state, self.polling, [hint])
        log.debug("pull %s: storing %d entries", source.id, len(feed.entries))
        counts = await self._write(
            self.store.ingest(source.id, feed, fetched.validators, now, next_poll, polling)
        )
        return PullResult(
            source.id, counts=counts, moved_to=moved_to, fetched_bytes=len(fetched.content)
        )

    def _effective_url(
        self, source: StoredSource, fetched: FetchResult
    ) -> tuple[str | None, RedirectState]:
        """The new effective URL, if it changes now, and the permanent-redirect count."""
        seen = RedirectState(source.redirect_target, source.redirect_count)
        redirect = track_redirect(seen, fetched.permanent_redirect, self.polling)
        if fetched.discovered_from is not None:
            log.warning("source %s: feed discovered at %s", source.id, fetched.url)
            return fetched.url, RedirectState()
        if redirect.adopt and redirect.target:
            log.warning("source %s: moved permanently to %s", source.id, redirect.target)
            return redirect.target, RedirectState()
        return None, redirect

    def _polling(
        self,
        source: StoredSource,
        moved_to: str | None,
        redirect: RedirectState,
        body_hash: str | None,
        estimate: timedelta | None,
    ) -> PollingUpdate:
        return PollingUpdate(
            effective_url=moved_to or source.effective_url,
            redirect_target=redirect.target,
            redirect_count=redirect.count,
            body_hash=body_hash,
            estimated_interval=estimate,
            feed_hint=source.feed_hint,
        )

    def _state(self, source: StoredSource) -> PollState:
        return PollState(
            source_id=source.id,
            interval=source.interval,
            estimated_interval=source.estimated_interval,
            failures=source.error_count,
            feed_hint=source.feed_hint,
        )

    async def _record_failure(
        self, source: StoredSource, host: str, error: SourceError
    ) -> PullResult:
        now = self.clock()
        wait = None
        if isinstance(error, FetchError) and error.kind in (ErrorKind.HTTP_429, ErrorKind.HTTP_5XX):
            wait = retry_after_delay(error.retry_after, now)
        retry = next_poll_after_failure(now, self._state(source), self.polling, wait)
        if wait is not None:
            self.hosts.hold(host, now + min(wait, self.polling.hint_ceiling))
        await self._write(
            self.store.record_failure(
                source.id,
                error.kind.value,
                shorten(clean_text(error.message), 2_000),
                now,
                retry,
                gone=error.kind is ErrorKind.GONE,
            )
        )
        return PullResult(source.id, error=error)

    async def _parse(self, fetched: FetchResult) -> ParsedFeed:
        if self.parse_pool is not None:
            return await self.parse_pool.parse(fetched.content, fetched.url, fetched.content_type)
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(
            self.parse_executor, parse_document, fetched.content, fetched.url, fetched.content_type
        )

    async def _write(self, write: Awaitable[T]) -> T:
        """Run a store write so that cancelling the pull does not cut it short."""
        task = asyncio.ensure_future(write)
        self._writes.add(task)
        task.add_done_callback(self._writes.discard)
        return await asyncio.shield(task)

    def running_writes(self) -> int:
        return len(self._writes)

    async def drain(self) -> None:
        """Wait for every write that was started; call after cancelling pulls."""
        while self._writes:
            await asyncio.gather(*list(self._writes), return_exceptions=True)


def log_pull(result: PullResult) -> None:
    """One event per pull: INFO when it failed, DEBUG for the routine ones. The fields go to
    ``--log-format json`` as keys."""
    counts = result.counts or IngestCounts()
    error = result.error
    fields = {
        "source": result.source_id,
        "status": result.status,
        "new": counts.new,
        "updated": counts.updated,
        "unchanged": counts.unchanged,
        "bytes": result.fetched_bytes,
        "duration": round(result.seconds, 3),
        "error_kind": error.kind.value if error else None,
    }
    took = f"{result.fetched_bytes} bytes in {result.seconds:.2f}s"
    if error is not None:
        problem = terminal_text(error)  # upstream text (a reason phrase): no escape codes
        log.info("pull %s failed: %s (%s)", result.source_id, problem, took, extra=fields)
        return
    log.debug(
        "pull %s: %s, %d new, %d updated, %d unchanged (%s)",
        result.source_id,
        result.status,
        counts.new,
        counts.updated,
        counts.unchanged,
        took,
        extra=fields,
    )


def log_heartbeat(results: Sequence[PullResult]) -> None:
    """The heartbeat's summary at INFO when it pulled anything (each pull has its own event)."""
    if not results:
        log.debug("heartbeat: nothing due")
        return
    by_status = {s: sum(r.status == s for r in results) for s in ("new", "updated", "unchanged")}
    failed = sum(r.error is not None for r in results)
    postponed = sum(r.postponed for r in results)
    fetched = sum(r.fetched_bytes for r in results)
    log.info(
        "heartbeat: pulled %d sources, %d failed (%d with new entries, %d updated, "
        "%d unchanged, %d postponed; %d bytes)",
        len(results),
        failed,
        by_status["new"],
        by_status["updated"],
        by_status["unchanged"],
        postponed,
        fetched,
        extra={"pulled": len(results), "failed": failed, "bytes": fetched, **by_status},
    )
