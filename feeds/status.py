"""What the status page and /status.json say: this process, the curated feeds, the sources.

    report = collect_status(publisher, process, now, query)
        counts:  store.source_summary(now): sources per state, due now, the latest pull
        sources: store.source_page(...): one page (PAGE_SIZE) of the active sources that
                 pass the state and text filters, failing ones first (most errors first)
        feeds:   entries on each curated feed's first page and when it last changed
    pages.render_status_page(report) / status_json(report)

A source's state (StoredSource.state) is one of ``ok``, ``backing off`` (its last pulls
failed; the next one is put off), ``gone`` (HTTP 410: never pulled again) and ``blocked``
(its address is refused).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from store.model import SOURCE_STATES, SourceSummary, StoredSource

if TYPE_CHECKING:  # `feedmill sources` uses the states and rows without the publisher
    from feeds.publish import Publisher

STATES = SOURCE_STATES
FAILING = "failing"  # a filter: every state but ok
PAGE_SIZE = 100
MAX_PAGE = 1_000_000  # a larger page number in a URL is this one (and empty)
MESSAGE_LIMIT = 300  # characters of an upstream error message shown (pages stay small)


@dataclass(frozen=True, slots=True)
class ProcessInfo:
    """The process answering: what it runs, since when, and its own heartbeat (if it pulls)."""

    version: str
    role: str  # run, worker or serve
    started_at: datetime
    last_heartbeat: datetime | None = None
    heartbeat_running_since: datetime | None = None


@dataclass(frozen=True, slots=True)
class StatusQuery:
    """Which sources to list: a state (or ``failing``), text in the id, title or URL, a page."""

    state: str = ""
    text: str = ""
    page: int = 1

    @classmethod
    def from_params(cls, params: Mapping[str, str]) -> StatusQuery:
        state = params.get("state", "")
        page = params.get("page", "1")
        return cls(
            state=state if state in (*STATES, FAILING) else "",
            text=params.get("q", "").strip()[:200],
            page=min(max(1, int(page)), MAX_PAGE) if page.isdigit() else 1,
        )


@dataclass(frozen=True, slots=True)
class SourceStatus:
    id: str
    title: str
    url: str
    state: str
    entries: int
    last_success_at: datetime | None
    last_polled_at: datetime | None
    next_poll_at: datetime | None
    error_kind: str | None
    error_message: str | None
    error_count: int
    failing_since: datetime | None = None


@dataclass(frozen=True, slots=True)
class FeedStatus:
    id: str
    title: str
    url: str
    entries: int  # on the first page, as served now
    updated: datetime | None  # when its content last changed; None while it is empty


@dataclass(frozen=True, slots=True)
class StatusReport:
    now: datetime
    process: ProcessInfo
    counts: SourceSummary
    feeds: list[FeedStatus]
    sources: list[SourceStatus]  # the page asked for
    matching: int  # sources that pass the query's filter
    query: StatusQuery = field(default_factory=StatusQuery)
    page_size: int | None = PAGE_SIZE

    @property
    def pages(self) -> int:
        if not self.page_size:
            return 1
        return max(1, -(-self.matching // self.page_size))


async def collect_status(
    publisher: Publisher,
    process: ProcessInfo,
    now: datetime,
    query: StatusQuery = StatusQuery(),
    page_size: int | None = PAGE_SIZE,
) -> StatusReport:
    """The report for one request: ``page_size`` None lists every matching source."""
    store = publisher.store
    offset = (query.page - 1) * page_size if page_size else 0
    shown, matching = await store.source_page(
        states=states_of(query.state), text=query.text, offset=offset, limit=page_size
    )
    entries = await store.count_entries([s.id for s in shown] if page_size else None)
    return StatusReport(
        now=now,
        process=process,
        counts=await store.source_summary(now),
        feeds=await feed_statuses(publisher),
        sources=[source_status(s, entries.get(s.id, 0)) for s in shown],
        matching=matching,
        query=query,
        page_size=page_size,
    )


def states_of(chosen: str) -> list[str] | None:
    """The states a filter means: one state, every one but ok (``failing``), or any (None)."""
    if chosen == FAILING:
        return [s for s in STATES if s != "ok"]
    return [chosen] if chosen else None


async def feed_statuses(publisher: Publisher) -> list[FeedStatus]:
    """Each curated feed as served now (from the render cache while nothing changed)."""
    found = []
    for definition in list(publisher.definitions.values()):
        document = await publisher.render(definition.id, "atom")
        updated = document.updated if document.entry_count else None
        found.append(
            FeedStatus(
                definition.id,
                definition.title,
                publisher.site.feed_url(definition.id),
                document.entry_count,
                updated,
            )
        )
    return found


def source_status(
    source: StoredSource, entries: int, message_limit: int | None = MESSAGE_LIMIT
) -> SourceStatus:
    """What the status page says of a source; ``message_limit`` cuts its error message."""
    return SourceStatus(
        id=source.id,
        title=source.display_title,
        url=source.url,
        state=source.state,
        entries=entries,
        last_success_at=source.last_success_at,
        last_polled_at=source.last_polled_at,
        next_poll_at=None if source.gone else source.next_poll_at,
        error_kind=source.error_kind,
        error_message=_cut(source.error_message, message_limit),
        error_count=source.error_count,
        failing_since=source.failing_since if source.error_count else None,
    )


def _cut(text: str | None, limit: int | None) -> str | None:
    if text is None or limit is None or len(text) <= limit:
        return text
    return text[: limit - 1] + "…"


def status_json(report: StatusReport) -> dict[str, Any]:
    """/status.json: the report as JSON-ready values (times in ISO 8601, UTC)."""
    process = report.process
    return {
        "now": _iso(report.now),
        "version": process.version,
        "role": process.role,
        "started_at": _iso(process.started_at),
        "uptime_seconds": int((report.now - process.started_at).total_seconds()),
        "last_heartbeat": _iso(process.last_heartbeat),
        "heartbeat_running_since": _iso(process.heartbeat_running_since),
        "last_pull": _iso(report.counts.last_polled_at),
        "sources": {"states": report.counts.states, "due": report.counts.due},
        "feeds": [
            {
                "id": f.id,
                "title": f.title,
                "url": f.url,
                "entries": f.entries,
                "updated": _iso(f.updated),
            }
            for f in report.feeds
        ],
        "page": {
            "state": report.query.state,
            "q": report.query.text,
            "page": report.query.page,
            "pages": report.pages,
            "matching": report.matching,
            "sources": [source_json(s) for s in report.sources],
        },
    }


def source_json(source: SourceStatus) -> dict[str, Any]:
    return {
        "id": source.id,
        "title": source.title,
        "url": source.url,
        "state": source.state,
        "entries": source.entries,
        "last_success": _iso(source.last_success_at),
        "last_polled": _iso(source.last_polled_at),
        "next_poll": _iso(source.next_poll_at),
        "error_kind": source.error_kind,
        "error_message": source.error_message,
        "error_count": source.error_count,
        "failing_since": _iso(source.failing_since),
    }


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None
