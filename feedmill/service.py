"""`feedmill run`: one asyncio loop with the APScheduler heartbeat and the uvicorn server.

`feedmill worker` runs only the heartbeat (``serve=False``), `feedmill serve` only the server
(``pull=False``); any number of each may share one PostgreSQL (docs/scaling.md).

store = open database; migrate if empty or older; sync configured sources
heartbeat every `scheduler.heartbeat`: Puller.pull_due()       (claims due sources)
uvicorn serves feeds.create_app(Publisher(store, feeds, site)) in the same loop
SIGINT/SIGTERM: stop the heartbeat, cancel fetches, let started writes finish, close.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import httpx
import uvicorn
from apscheduler.schedulers.asyncio import AsyncIOScheduler

from feedmill.clock import Clock, utc_now
from feedmill.config import Settings
from feedmill.pull import Puller, PullResult
from feeds import Publisher, create_app
from feeds.model import FORMATS
from feeds.websub import HubPinger
from sources import FeedmillError, make_client
from store import Store, ensure_schema

log = logging.getLogger("feedmill.service")
# Entries a backlog-clustering transaction takes: small, so pulls and serving go on between.
BACKLOG_BATCH = 100


class ServiceError(FeedmillError):
    """The service could not start."""


class _Server(uvicorn.Server):
    """uvicorn without its own signal handling: the service owns SIGINT and SIGTERM."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


@dataclass
class Heartbeats:
    """Counts finished heartbeats, so callers (and tests) can wait for one without sleeping."""

    done: int = 0
    _changed: asyncio.Condition = field(default_factory=asyncio.Condition)

    async def finished(self) -> None:
        async with self._changed:
            self.done += 1
            self._changed.notify_all()

    async def wait_for(self, count: int) -> None:
        async with self._changed:
            await self._changed.wait_for(lambda: self.done >= count)


async def open_store(settings: Settings, clock: Clock) -> Store:
    """Open the database, bring its schema to this version, and sync the sources."""
    store = Store.open(
        settings.database,
        tracking=settings.links.tracking_filter(),
        stories=settings.story_settings(),
    )
    try:
        async with store.setup_lock():
            log.info("%s", await ensure_schema(store))
            await store.sync_sources(settings.source_definitions(), clock())
    except BaseException:
        await store.close()
        raise
    return store


class Service:
    """The whole service in one loop. ``await Service(settings).run()`` until stopped."""

    def __init__(
        self,
        settings: Settings,
        clock: Clock = utc_now,
        *,
        sockets: Sequence[socket.socket] | None = None,
        pull: bool = True,
        serve: bool = True,
    ) -> None:
        self.settings = settings
        self.pull = pull
        self.serve = serve
        self.clock = clock
        self.sockets = sockets
        self.heartbeats = Heartbeats()
        self.stopping = asyncio.Event()
        self.server: uvicorn.Server | None = None
        self._cycles: set[asyncio.Task[object]] = set()
        self._cycle_running = asyncio.Lock()
        self.publisher: Publisher | None = None
        self.pinger: HubPinger | None = None
        self.backlog_clustered = 0  # entries given a story after the start (issue 5)
        self.backlog_done = asyncio.Event()

    def stop(self) -> None:
        self.stopping.set()

    async def run(self) -> None:
        store = await open_store(self.settings, self.clock)
        try:
            async with make_client(self.settings.fetch_settings()) as client:
                puller = Puller(
                    store,
                    client,
                    self.settings.fetch_settings(),
                    self.clock,
                    concurrency=self.settings.fetch.concurrency,
                    polling=self.settings.poll_settings(),
                    hosts=self.settings.host_limits(),
                    lease=self.settings.scheduler.lease,
                )
                await self._run_with(store, puller)
        finally:
            await store.close()
            log.info("stopped")

    async def _run_with(self, store: Store, puller: Puller) -> None:
        scheduler = AsyncIOScheduler(timezone="UTC")
        if self.pull:
            self._add_heartbeat(scheduler, puller)
        publisher = make_publisher(self.settings, store, self.clock)
        self.publisher = publisher
        # The process that pulls is the one that sees feeds change: it pings the hub.
        self.pinger = make_pinger(self.settings, puller.client) if self.pull else None
        if self.pinger is not None:
            await publisher.changed_feeds()  # what the hub's subscribers have already seen
        server = self._server(publisher) if self.serve else None
        sockets = (list(self.sockets) if self.sockets else [self._bind()]) if server else []
        scheduler.start()
        serving = asyncio.create_task(self._serve(server, sockets)) if server else None
        catching_up = asyncio.create_task(self._cluster_backlog(store)) if self.pull else None
        try:
            stopper = asyncio.create_task(self.stopping.wait())
            await asyncio.wait(
                {t for t in (serving, stopper) if t}, return_when=asyncio.FIRST_COMPLETED
            )
            stopper.cancel()
        finally:
            scheduler.shutdown(wait=False)
            if catching_up is not None:
                catching_up.cancel()
                await asyncio.gather(catching_up, return_exceptions=True)
            await self._cancel_cycles(puller)
            if self.pinger is not None:
                await self.pinger.close()
            if server is not None and serving is not None:
                server.should_exit = True
                await serving

    async def _cluster_backlog(self, store: Store) -> None:
        """Entries stored while clustering was off get their stories, oldest first, a small
        transaction at a time (pulls and serving go on in between), once per start."""
        total = 0
        try:
            while store.stories is not None and (
                done := await store.cluster_backlog(self.clock(), limit=BACKLOG_BATCH)
            ):
                total += done
                self.backlog_clustered = total
            if total:
                log.info("stories: clustered %d entries stored without a story", total)
                if self.publisher is not None:
                    self.publisher.invalidate()
        except Exception:
            log.exception("stories: clustering the stored entries failed after %d", total)
        finally:
            self.backlog_done.set()

    def _add_heartbeat(self, scheduler: AsyncIOScheduler, puller: Puller) -> None:
        scheduler.add_job(
            self._heartbeat,
            "interval",
            args=[puller],
            seconds=self.settings.scheduler.heartbeat.total_seconds(),
            next_run_time=utc_now(),  # the scheduler keeps real time; domain code uses self.clock
            max_instances=1,
            coalesce=True,
            id="heartbeat",
        )

    def _server(self, publisher: Publisher) -> uvicorn.Server:
        config = uvicorn.Config(
            create_app(
                publisher,
                max_age=int(self.settings.http.max_age.total_seconds()),
                gzip=self.settings.http.gzip,
                search=self.settings.search_settings(),
            ),
            host=self.settings.server.host,
            port=self.settings.server.port,
            lifespan="off",
            log_config=None,
            access_log=False,
        )
        self.server = _Server(config)
        return self.server

    async def _serve(self, server: uvicorn.Server, sockets: list[socket.socket]) -> None:
        host, port = sockets[0].getsockname()[:2]
        public = self.settings.site().base_url
        log.info("listening on http://%s:%d/ (public URL %s)", host, port, public)
        await server.serve(sockets=sockets)

    def _bind(self) -> socket.socket:
        """Bind here rather than in uvicorn, which exits the process when it cannot."""
        host, port = self.settings.server.host, self.settings.server.port
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            sock.close()
            raise ServiceError(f"cannot listen on {host}:{port}: {exc.strerror}") from exc
        return sock

    async def _heartbeat(self, puller: Puller) -> None:
        if self._cycle_running.locked():
            return  # the previous heartbeat is still pulling; the next one will catch up
        task = asyncio.current_task()
        assert task is not None
        self._cycles.add(task)
        try:
            async with self._cycle_running:
                results = await puller.pull_due()
                await self._after_pull(results)
            if results:
                failed = sum(r.error is not None for r in results)
                log.info("heartbeat: pulled %d sources, %d failed", len(results), failed)
        except asyncio.CancelledError:
            log.info("heartbeat cancelled: shutting down")
        except Exception:
            log.exception("heartbeat failed")
        finally:
            self._cycles.discard(task)
            await self.heartbeats.finished()

    async def _after_pull(self, results: Sequence[PullResult]) -> None:
        """New or changed entries: drop cached feeds, and ping the WebSub hub for each feed
        whose content changed (in the background: the heartbeat does not wait for the hub)."""
        if self.publisher is None or not any(_changed(r) for r in results):
            return
        self.publisher.invalidate()
        if self.pinger is None:
            return
        site = self.publisher.site
        for feed_id in await self.publisher.changed_feeds():
            self.pinger.publish(site.feed_url(feed_id, extension) for extension in FORMATS)

    async def _cancel_cycles(self, puller: Puller) -> None:
        for task in list(self._cycles):
            task.cancel()
        await asyncio.gather(*self._cycles, return_exceptions=True)
        await puller.drain()


def make_publisher(settings: Settings, store: Store, clock: Clock) -> Publisher:
    return Publisher(
        store,
        settings.feed_definitions(),
        settings.site(),
        clock=clock,
        hub=settings.websub.hub,
        recheck=settings.http.recheck.total_seconds(),
    )


def make_pinger(settings: Settings, client: httpx.AsyncClient) -> HubPinger | None:
    if settings.websub.hub is None:
        return None
    return HubPinger(
        client,
        settings.websub.hub,
        max_attempts=settings.websub.max_attempts,
        retry_delay=settings.websub.retry_delay.total_seconds(),
    )


def _changed(result: PullResult) -> bool:
    return result.counts is not None and bool(result.counts.new or result.counts.updated)


def install_signal_handlers(service: Service) -> None:
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, service.stop)
