"""`feedmill run`: one asyncio loop with the APScheduler heartbeat and the uvicorn server.

`feedmill worker` runs only the heartbeat (``serve=False``), `feedmill serve` only the server
(``pull=False``); any number of each may share one PostgreSQL (docs/scaling.md).

store = open database; migrate if empty or older; sync configured sources
heartbeat every `scheduler.heartbeat`: Puller.pull_due()       (claims due sources)
uvicorn serves feeds.create_app(Publisher(store, feeds, site)) (+ /metrics) in the same loop
systemd (Type=notify) hears READY=1 once the socket listens, RELOADING=1, STOPPING=1
SIGHUP: read config.yaml again; apply sources and curated feeds, or refuse a bad file
SIGINT/SIGTERM: stop the heartbeat, cancel fetches, let started writes finish, close; what
    is still running after `server.shutdown_timeout` is abandoned (each write is one
    transaction, so nothing is half-written) and the process exits.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import signal
import socket
import sys
from collections.abc import Awaitable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from apscheduler.schedulers.asyncio import AsyncIOScheduler

from feedmill import systemd
from feedmill.clock import Clock, utc_now
from feedmill.config import Settings
from feedmill.failures import FailureLog
from feedmill.metrics import Metrics, metrics_app, metrics_route
from feedmill.opening import make_publisher, open_store
from feedmill.pull import Puller, PullResult, log_heartbeat
from feedmill.reload import reload_config
from feedmill.version import feedmill_version
from feeds import Publisher, create_app
from feeds.model import FORMATS
from feeds.status import ProcessInfo
from feeds.websub import HubPinger
from sources import FeedmillError, make_client
from store import Store

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
        config_file: Path | None = None,
        metrics_address: str | None = None,
    ) -> None:
        self.settings = settings
        self.pull = pull
        self.serve = serve
        self.clock = clock
        self.sockets = sockets
        self.config_file = config_file
        self.metrics_address = metrics_address
        self.role = "run" if pull and serve else ("worker" if pull else "serve")
        self.metrics = Metrics(feedmill_version(), self.role)
        self.started_at = clock()
        self.last_heartbeat: datetime | None = None
        self.heartbeat_started: datetime | None = None
        self.heartbeats = Heartbeats()
        self.heartbeat_failures = FailureLog(log, "heartbeat")
        self.reloads = 0  # reloads applied: tests wait on it
        self.stopping = asyncio.Event()
        self.abandoned = False  # work was still running at the shutdown deadline
        self._deadline = 0.0  # loop time by which the shutdown ends, once it started
        self.server: uvicorn.Server | None = None
        self.store: Store | None = None
        self._cycles: set[asyncio.Task[object]] = set()
        self._cycle_running = asyncio.Lock()
        self._reloading = asyncio.Lock()
        self._background: set[asyncio.Task[Any]] = set()
        self.publisher: Publisher | None = None
        self.pinger: HubPinger | None = None
        self.backlog_clustered = 0  # entries given a story after the start
        self.backlog_done = asyncio.Event()

    def stop(self) -> None:
        self.stopping.set()

    def process_info(self) -> ProcessInfo:
        return ProcessInfo(
            version=feedmill_version(),
            role=self.role,
            started_at=self.started_at,
            last_heartbeat=self.last_heartbeat,
            heartbeat_running_since=self.heartbeat_started,
        )

    async def run(self) -> None:
        store = await open_store(self.settings, self.clock)
        self.store = store
        try:
            async with (
                make_client(self.settings.fetch_settings()) as client,
                self.settings.parse_pool() as pool,
            ):
                puller = Puller(
                    store,
                    client,
                    self.settings.fetch_settings(),
                    self.clock,
                    parse_pool=pool,
                    concurrency=self.settings.fetch.concurrency,
                    polling=self.settings.poll_settings(),
                    hosts=self.settings.host_limits(),
                    lease=self.settings.scheduler.lease,
                )
                puller.observe = self.metrics.observe_pull
                await self._run_with(store, puller)
        finally:
            deadline = self._deadline or self._deadline_from_now()
            if not self.abandoned and not await self._within(deadline, store.close()):
                log.warning("shutdown: closing the database did not end in time; abandoned")
            log.info("stopped")

    async def _run_with(self, store: Store, puller: Puller) -> None:
        scheduler = AsyncIOScheduler(timezone="UTC")
        if self.pull:
            self._add_heartbeat(scheduler, puller)
        publisher = make_publisher(self.settings, store, self.clock)
        publisher.observe_render = self.metrics.observe_render
        self.publisher = publisher
        # The process that pulls is the one that sees feeds change: it pings the hub.
        self.pinger = make_pinger(self.settings, puller.client) if self.pull else None
        if self.pinger is not None:
            await publisher.changed_feeds()  # what the hub's subscribers have already seen
        servers = self._servers(publisher, store)
        # What start-up made lives as long as the process (settings, feed definitions, one
        # object a source): out of the cycle collector's sight, it is not walked again on
        # every full collection, which with tens of thousands of sources stalls the loop.
        gc.freeze()
        scheduler.start()
        serving = [asyncio.create_task(self._serve(s, socks)) for s, socks in servers]
        catching_up = asyncio.create_task(self._cluster_backlog(store)) if self.pull else None
        systemd.notify("READY=1", f"STATUS=feedmill {self.role} started")
        try:
            stopper = asyncio.create_task(self.stopping.wait())
            await asyncio.wait({*serving, stopper}, return_when=asyncio.FIRST_COMPLETED)
            stopper.cancel()
        finally:
            systemd.notify("STOPPING=1")
            self._deadline = self._deadline_from_now()
            scheduler.shutdown(wait=False)
            await self._stop_work(catching_up, puller)
            for server, _ in servers:
                server.should_exit = True
            stopped = self.abandoned or await self._within(self._deadline, asyncio.gather(*serving))
            if not stopped:
                log.warning("shutdown: the HTTP server did not stop in time; abandoned")

    def _shutdown_seconds(self) -> float:
        return self.settings.server.shutdown_timeout.total_seconds()

    def _deadline_from_now(self) -> float:
        return asyncio.get_running_loop().time() + self._shutdown_seconds()

    async def _stop_work(self, catching_up: asyncio.Task[None] | None, puller: Puller) -> None:
        """Cancel the heartbeat and the backlog clustering, then wait for the store writes
        already started, until the deadline: those still running then are abandoned."""
        if catching_up is not None:
            catching_up.cancel()
        for task in list(self._cycles):
            task.cancel()
        pending = [t for t in (catching_up, *self._cycles) if t is not None]

        async def settle() -> None:
            await asyncio.gather(*pending, return_exceptions=True)
            await puller.drain()

        if not await self._within(self._deadline, settle()):
            log.warning(
                "shutdown: %d store writes still running after %.0fs are abandoned; each is one "
                "transaction, so none is half-written, and their sources are pulled again "
                "once their lease ends",
                puller.running_writes(),
                self._shutdown_seconds(),
            )
        if self.pinger is not None and not await self._within(self._deadline, self.pinger.close()):
            log.warning("shutdown: WebSub pings still running are abandoned")

    async def _within(self, deadline: float, work: Awaitable[Any]) -> bool:
        """Wait for ``work`` until ``deadline`` (loop time) without cancelling it; False (and
        the service marked as having abandoned work) if it is still running then."""
        task = asyncio.ensure_future(work)
        remaining = max(0.0, deadline - asyncio.get_running_loop().time())
        done, _ = await asyncio.wait({task}, timeout=remaining)
        if task not in done:
            self.abandoned = True
        return task in done

    async def release_threads(self) -> None:
        """Wait, until the shutdown deadline, for the threads of the loop's default executor
        (a parse of a cancelled pull may still run there); abandon them after it. Call once
        :meth:`run` returned, in a process that is about to end."""
        if self.abandoned:
            return
        deadline = self._deadline or self._deadline_from_now()
        threads = asyncio.get_running_loop().shutdown_default_executor()
        if not await self._within(deadline, threads):
            log.warning("shutdown: a parse still running is abandoned")

    def exit_now(self) -> None:
        """End the process at once, without waiting for threads still blocked in the
        database (the shutdown deadline passed); log lines are flushed first."""
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)

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

    def _servers(
        self, publisher: Publisher, store: Store
    ) -> list[tuple[uvicorn.Server, list[socket.socket]]]:
        """The HTTP server (run, serve), or a worker's /metrics server (``--metrics``)."""
        if self.serve:
            app = create_app(
                publisher,
                max_age=int(self.settings.http.max_age.total_seconds()),
                gzip=self.settings.http.gzip,
                search=self.settings.search_settings(),
                process=self.process_info,
                routes=[metrics_route(self.metrics, store, self.clock)],
            )
            app.observe = self.metrics.feed_request
            address = (self.settings.server.host, self.settings.server.port)
            sockets = list(self.sockets) if self.sockets else [self._bind(*address)]
            self.server = self._server(app, self.settings.server.access_log)
            return [(self.server, sockets)]
        if self.metrics_address:
            host, _, port = self.metrics_address.rpartition(":")
            address = (host.strip("[]"), _port(port))
            sockets = list(self.sockets) if self.sockets else [self._bind(*address)]
            metrics_only = metrics_app(self.metrics, store, self.clock)
            return [(self._server(metrics_only, False), sockets)]
        return []

    def _server(self, app: Any, access_log: bool) -> uvicorn.Server:
        config = uvicorn_config(app, access_log, self._shutdown_seconds())
        if access_log:
            logging.getLogger("uvicorn.access").setLevel(logging.INFO)
        return _Server(config)

    async def _serve(self, server: uvicorn.Server, sockets: list[socket.socket]) -> None:
        for sock in sockets:  # accepted connections inherit it: no Nagle wait on replies
            if sock.family in (socket.AF_INET, socket.AF_INET6):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        host, port = sockets[0].getsockname()[:2]
        if server is self.server:
            public = self.settings.site().base_url
            log.info("listening on http://%s:%d/ (public URL %s)", host, port, public)
        else:
            log.info("metrics on http://%s:%d/metrics", host, port)
        await server.serve(sockets=sockets)

    def _bind(self, host: str, port: int) -> socket.socket:
        """Bind and listen here rather than in uvicorn, which exits the process when it
        cannot; once this returns, connections queue, so systemd may be told READY."""
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
            sock.listen(2048)
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
        self.heartbeat_started = self.clock()
        try:
            async with self._cycle_running:
                results = await puller.pull_due()
                await self._after_pull(results)
            self.heartbeat_failures.succeeded()
            log_heartbeat(results)
            if results:
                failed = sum(r.error is not None for r in results)
                systemd.notify(
                    f"STATUS=last heartbeat: pulled {len(results)} sources, {failed} failed"
                )
        except asyncio.CancelledError:
            log.info("heartbeat cancelled: shutting down")
        except Exception as exc:
            self.heartbeat_failures.failed(exc)
        finally:
            self._cycles.discard(task)
            self.heartbeat_started = None
            self.last_heartbeat = self.clock()
            self.metrics.heartbeat_ended(self.last_heartbeat)
            await self.heartbeats.finished()

    async def _after_pull(self, results: Sequence[PullResult]) -> None:
        """New or changed entries: drop cached feeds, and ping the WebSub hub for each feed
        whose content changed (in the background: the heartbeat does not wait for the hub)."""
        if self.publisher is None or not any(_changed(r) for r in results):
            return
        self.publisher.invalidate()
        await self._ping_changed()

    async def _ping_changed(self) -> None:
        if self.pinger is None or self.publisher is None:
            return
        site = self.publisher.site
        for feed_id in await self.publisher.changed_feeds():
            self.pinger.publish(site.feed_url(feed_id, extension) for extension in FORMATS)

    # -- SIGHUP ---------------------------------------------------------------------------

    def request_reload(self) -> None:
        """SIGHUP: reload in the background (the signal handler must not wait)."""
        task = asyncio.ensure_future(self.reload())
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def reload(self) -> bool:
        """Read the config file again and apply its sources and curated feeds; a file with
        problems is refused with one error line, and the running config stays."""
        if self.config_file is None or self.store is None or self.publisher is None:
            log.warning("reload: nothing to reload yet")
            return False
        async with self._reloading:
            systemd.reloading()
            try:
                new = await reload_config(
                    self.config_file, self.settings, self.store, self.publisher, self.clock
                )
            finally:
                systemd.notify("READY=1")
            if new is None:
                return False
            self.settings = new
            self.reloads += 1
            await self._ping_changed()
            return True


def _port(text: str) -> int:
    if not text.isdigit() or not 0 <= int(text) <= 65535:
        raise ServiceError(f"--metrics wants HOST:PORT, not a port of {text!r}")
    return int(text)


def uvicorn_config(app: Any, access_log: bool, shutdown_seconds: float) -> uvicorn.Config:
    """How uvicorn serves the app (bench/serve.py measures this very configuration): httptools
    with feedmill's quick path for cached feed documents; X-Forwarded-* read only when the
    access log, the one reader of the client's address, is on (uvicorn checks the trusted
    proxies on every request, a cost on the order of a cached answer's)."""
    return uvicorn.Config(
        app,
        http=_http_protocol(access_log),
        lifespan="off",
        log_config=None,
        access_log=access_log,
        proxy_headers=access_log,
        timeout_graceful_shutdown=max(1, int(shutdown_seconds)),
    )


def _http_protocol(access_log: bool) -> Any:
    """feedmill.quick's protocol, which answers cached feed documents without the ASGI round;
    uvicorn's own with the access log on (it logs each request) or without httptools."""
    if access_log:
        return "auto"
    try:
        from feedmill.quick import QuickProtocol
    except ImportError:
        return "auto"
    return QuickProtocol


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
    loop.add_signal_handler(signal.SIGHUP, service.request_reload)
