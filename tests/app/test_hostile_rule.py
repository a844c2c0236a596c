"""A rule that backtracks catastrophically on every entry (one that slipped past check-config)
does not stall the server: selection runs off the event loop within one time budget, so
/healthz keeps answering while the feed is rendered, and the render ends when the budget is
spent, saying so in the log."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import feedparser
import httpx
import pytest
import uvicorn
from sqlalchemy import insert

from feeds import Publisher, create_app
from feeds.model import FeedDefinition, Rule, Site
from feeds.rules import SELECTION_BUDGET
from store import SourceDefinition, Store, ensure_schema
from store.identity import entry_uid
from store.tables import EntryRow

T0 = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
HOSTILE = FeedDefinition(
    id="hostile",
    title="Hostile",
    source_ids=("s",),
    include=(Rule("regex", r"^(a|aa)+$", fields=("title",)),),
    limit=50,
)


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


async def store_hostile_entries(store: Store, count: int) -> None:
    definition = SourceDefinition("s", "https://s.example/feed", None, timedelta(hours=1))
    await store.sync_sources([definition], T0)
    rows = [
        {
            "source_id": "s",
            "entry_key": f"k{i}",
            "uid": entry_uid("s", f"k{i}"),
            "link": f"https://s.example/{i}",
            "title": "a" * 40 + "!",
            "authors": [],
            "categories": [],
            "enclosures": [],
            "sort_at": T0 - timedelta(minutes=i),
            "first_seen_at": T0,
            "changed_at": T0,
            "content_hash": "0" * 64,
        }
        for i in range(count)
    ]
    async with store.engine.begin() as conn:
        await conn.execute(insert(EntryRow), rows)


@pytest.fixture
async def base_url(tmp_path: Path) -> AsyncIterator[str]:
    store = Store.open(f"sqlite:///{tmp_path / 'feedmill.db'}")
    await ensure_schema(store)
    await store_hostile_entries(store, 200)
    site = Site("http://127.0.0.1/", "Test")
    publisher = Publisher(store, [HOSTILE], site, clock=lambda: T0)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # as the service does
    sock.listen(128)  # connections wait in the backlog until uvicorn accepts them
    config = uvicorn.Config(create_app(publisher), lifespan="off", log_config=None)
    server = _Server(config)
    serving = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        await serving
        sock.close()
        await store.close()


async def test_healthz_answers_while_a_hostile_rule_is_evaluated(
    base_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="feeds.publish")
    nodelay = [(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)]  # no Nagle delay in the timings
    transport = httpx.AsyncHTTPTransport(socket_options=nodelay)
    async with httpx.AsyncClient(base_url=base_url, timeout=120, transport=transport) as http:
        idle = []
        for _ in range(20):
            asked = time.monotonic()
            await http.get("/healthz")
            idle.append(time.monotonic() - asked)
        idle.sort()
        print(f"idle /healthz: median {idle[10] * 1000:.1f} ms, slowest {idle[-1] * 1000:.1f} ms")
        started = time.monotonic()
        stalls = asyncio.create_task(longest_stall())
        feed = asyncio.create_task(http.get("/feeds/hostile.atom"))
        answered_meanwhile, times = 0, []
        while not feed.done():
            asked = time.monotonic()
            health = await http.get("/healthz")
            assert health.status_code == 200 and health.text == "ok"
            times.append(time.monotonic() - asked)
            answered_meanwhile += not feed.done()
        response = await feed
        took = time.monotonic() - started
        stalls.cancel()
        stall = await stalls
    assert response.status_code == 200
    assert feedparser.parse(response.content).entries == []  # none could be decided: left out
    # The server went on answering all along (the event loop was never held by the rule).
    assert answered_meanwhile >= 5, (answered_meanwhile, took)
    warnings = [r.getMessage() for r in caplog.records if r.name == "feeds.publish"]
    assert any("feed hostile:" in m and "ran out of time" in m for m in warnings)
    times.sort()
    print(
        f"render {took:.2f}s (budget {SELECTION_BUDGET}s), /healthz answered "
        f"{answered_meanwhile} times meanwhile: median {times[len(times) // 2] * 1000:.1f} ms, "
        f"slowest {times[-1] * 1000:.1f} ms; the event loop's longest stall {stall * 1000:.1f} ms"
    )


async def longest_stall() -> float:
    """The longest the event loop took to come back to a 1 ms sleep, until cancelled."""
    longest, last = 0.0, time.monotonic()
    try:
        while True:
            await asyncio.sleep(0.001)
            now = time.monotonic()
            longest, last = max(longest, now - last), now
    except asyncio.CancelledError:
        return longest
