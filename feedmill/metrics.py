"""/metrics: Prometheus metrics of this process (each process of a deployment has its own;
scrape them all, see docs/deploy.md).

    pulls       feedmill_pulls_total{result, error_kind}, feedmill_fetch_duration_seconds,
                feedmill_fetched_bytes_total, feedmill_entries_ingested_total{change},
                feedmill_stories_formed_total, feedmill_stories_merged_total
    heartbeat   feedmill_last_heartbeat_timestamp_seconds
    sources     feedmill_sources{state}, feedmill_sources_due  (read from the database at scrape)
    serving     feedmill_feed_requests_total{status}, feedmill_feed_request_duration_seconds,
                feedmill_render_duration_seconds{format}
    process     feedmill_build_info{version, role}, process_* and python_* (prometheus-client)

Counters and histograms live in a registry of this :class:`Metrics`, never the global one,
so two services in one test process do not mix their numbers.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    Info,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from feedmill.pull import PullResult
from store import Store

_FETCH_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
_SERVE_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5)
# No *_created series: they double the output and nobody reads them.
disable_created_metrics()  # type: ignore[no-untyped-call]


class Metrics:
    def __init__(self, version: str, role: str) -> None:
        self.registry = registry = CollectorRegistry()
        for collector in (ProcessCollector, PlatformCollector, GCCollector):
            collector(registry=registry)
        Info("feedmill_build", "The running feedmill", registry=registry).info(
            {"version": version, "role": role}
        )
        self.pulls = Counter(
            "feedmill_pulls",
            "Pulls of sources, by result (new, updated, unchanged, error, postponed) and "
            "error kind",
            ["result", "error_kind"],
            registry=registry,
        )
        self.fetch_seconds = Histogram(
            "feedmill_fetch_duration_seconds",
            "Time to fetch one upstream document (the HTTP exchange, redirects included)",
            buckets=_FETCH_BUCKETS,
            registry=registry,
        )
        self.fetched_bytes = Counter(
            "feedmill_fetched_bytes", "Bytes of upstream documents received", registry=registry
        )
        self.entries = Counter(
            "feedmill_entries_ingested",
            "Entries stored by pulls: new ones and changed ones",
            ["change"],
            registry=registry,
        )
        self.stories_formed = Counter(
            "feedmill_stories_formed", "Stories founded by new entries", registry=registry
        )
        self.stories_merged = Counter(
            "feedmill_stories_merged", "Stories merged into another", registry=registry
        )
        self.last_heartbeat = Gauge(
            "feedmill_last_heartbeat_timestamp_seconds",
            "When this process's last heartbeat ended (Unix time; 0 before the first)",
            registry=registry,
        )
        self.sources = Gauge(
            "feedmill_sources",
            "Active sources by state (read from the database at each scrape)",
            ["state"],
            registry=registry,
        )
        self.due = Gauge(
            "feedmill_sources_due",
            "Active sources due for a pull and held by no worker: the backlog",
            registry=registry,
        )
        self.feed_requests = Counter(
            "feedmill_feed_requests",
            "Requests for feed and OPML documents, by HTTP status",
            ["status"],
            registry=registry,
        )
        self.feed_seconds = Histogram(
            "feedmill_feed_request_duration_seconds",
            "Time to answer a feed or OPML request",
            buckets=_SERVE_BUCKETS,
            registry=registry,
        )
        self.render_seconds = Histogram(
            "feedmill_render_duration_seconds",
            "Time to select and render one feed document (a render-cache miss)",
            ["format"],
            buckets=_SERVE_BUCKETS,
            registry=registry,
        )
        self._by_status: dict[int, Counter] = {}

    def observe_pull(self, result: PullResult) -> None:
        error = result.error
        self.pulls.labels(result.status, error.kind.value if error else "").inc()
        if result.fetch_seconds is not None:
            self.fetch_seconds.observe(result.fetch_seconds)
        self.fetched_bytes.inc(result.fetched_bytes)
        counts = result.counts
        if counts is not None:
            self.entries.labels("new").inc(counts.new)
            self.entries.labels("updated").inc(counts.updated)
            self.stories_formed.inc(counts.stories_formed)
            self.stories_merged.inc(counts.stories_merged)

    def feed_request(self, status: int, seconds: float) -> None:
        counter = self._by_status.get(status)
        if counter is None:  # labels() takes a lock and builds a key: once per status
            counter = self._by_status[status] = self.feed_requests.labels(str(status))
        counter.inc()
        self.feed_seconds.observe(seconds)

    def observe_render(self, extension: str, seconds: float) -> None:
        self.render_seconds.labels(extension).observe(seconds)

    def heartbeat_ended(self, moment: datetime) -> None:
        self.last_heartbeat.set(moment.timestamp())

    async def read_sources(self, store: Store, now: datetime) -> None:
        counts = await store.source_summary(now)
        for state, number in counts.states.items():
            self.sources.labels(state).set(number)
        self.due.set(counts.due)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


def metrics_route(metrics: Metrics, store: Store, clock: Callable[[], datetime]) -> Route:
    """``GET /metrics``: this process's metrics, the sources by state read from the database
    first. The feed app times and counts its own answers (``FeedApp.observe``)."""

    async def expose(request: Request) -> Response:
        await metrics.read_sources(store, clock())
        return Response(metrics.exposition(), media_type=CONTENT_TYPE_LATEST)

    return Route("/metrics", expose, methods=["GET", "HEAD"])


def metrics_app(metrics: Metrics, store: Store, clock: Callable[[], datetime]) -> Starlette:
    """A worker's HTTP server (``--metrics``): /metrics and nothing else."""
    return Starlette(routes=[metrics_route(metrics, store, clock)])
