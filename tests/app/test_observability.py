"""/metrics (parsed with prometheus-client's own parser), /status.json and the status page,
through the real service; the status page with 10,000 sources."""

from __future__ import annotations

import socket
import sqlite3
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from feedmill.config import Settings, load_config
from feedmill.service import Service
from feeds import Publisher, create_app
from feeds.model import FeedDefinition, Site
from store import SourceDefinition, Store
from tests.app.configs import outlets_config, serve_outlets, write_config
from tests.conftest import FakeClock, fixture_bytes
from tests.upstream import Upstream

FIXTURES = ("outlet-a.rss", "outlet-b.atom", "outlet-c.rss")


@pytest.fixture
def settings(tmp_path: Path, upstream: Upstream, listener: socket.socket) -> Settings:
    port = listener.getsockname()[1]
    sources = serve_outlets(upstream)
    sources["missing"] = upstream.url("/missing.rss")
    config = outlets_config(sources, tmp_path, port=port)
    config["feeds"].append({"id": "stories", "title": "Stories", "dedupe": "story"})
    return load_config(write_config(tmp_path / "config.yaml", config))


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[sample.name, tuple(sorted(sample.labels.items()))] = sample.value
    return found


async def test_metrics_count_pulls_entries_stories_and_feed_requests(
    service: Service, settings: Settings, tmp_path: Path
) -> None:
    base = settings.site().base_url.rstrip("/")
    async with httpx.AsyncClient(base_url=base) as client:
        first = await client.get("/feeds/ai-infrastructure.atom")
        again = await client.get(
            "/feeds/ai-infrastructure.atom", headers={"If-None-Match": first.headers["etag"]}
        )
        missing = await client.get("/feeds/nope.atom")
        response = await client.get("/metrics")
    assert (first.status_code, again.status_code, missing.status_code) == (200, 304, 404)
    assert response.headers["content-type"].startswith("text/plain; version=")
    got = samples(response.text)
    with sqlite3.connect(tmp_path / "feedmill.db") as db:
        (stories,) = db.execute("SELECT count(*) FROM stories").fetchone()
    assert got["feedmill_pulls_total", (("error_kind", ""), ("result", "new"))] == 3
    assert got["feedmill_pulls_total", (("error_kind", "http_4xx"), ("result", "error"))] == 1
    assert got["feedmill_fetch_duration_seconds_count", ()] == 4
    assert got["feedmill_fetched_bytes_total", ()] == sum(len(fixture_bytes(f)) for f in FIXTURES)
    assert got["feedmill_entries_ingested_total", (("change", "new"),)] == 7
    assert got["feedmill_stories_formed_total", ()] == stories > 0
    assert got["feedmill_stories_merged_total", ()] == 0
    assert got["feedmill_sources", (("state", "ok"),)] == 3
    assert got["feedmill_sources", (("state", "backing off"),)] == 1
    assert got["feedmill_sources_due", ()] == 0
    assert got["feedmill_last_heartbeat_timestamp_seconds", ()] > 0
    for status in ("200", "304", "404"):
        assert got["feedmill_feed_requests_total", (("status", status),)] == 1
    assert got["feedmill_feed_request_duration_seconds_count", ()] == 3
    assert got["feedmill_render_duration_seconds_count", (("format", "atom"),)] >= 1
    assert ("feedmill_build_info", (("role", "run"), ("version", "0.1.0"))) in got


async def test_a_worker_serves_only_its_metrics(
    settings: Settings, clock: FakeClock, listener: socket.socket
) -> None:
    worker = Service(settings, clock, sockets=[listener], serve=False, metrics_address=":0")
    async with running(worker):
        base = settings.site().base_url.rstrip("/")
        async with httpx.AsyncClient(base_url=base) as client:
            metrics = await client.get("/metrics")
            feed = await client.get("/feeds/everything.atom")
    got = samples(metrics.text)
    assert got["feedmill_pulls_total", (("error_kind", ""), ("result", "new"))] == 3
    assert ("feedmill_build_info", (("role", "worker"), ("version", "0.1.0"))) in got
    assert feed.status_code == 404


class running:
    """The service running in this loop until the block ends (its first heartbeat done)."""

    def __init__(self, service: Service) -> None:
        self.service = service

    async def __aenter__(self) -> Service:
        import asyncio

        self.task = asyncio.create_task(self.service.run())
        await asyncio.wait_for(self.service.heartbeats.wait_for(1), 30)
        return self.service

    async def __aexit__(self, *exc: object) -> None:
        import asyncio

        self.service.stop()
        await asyncio.wait_for(self.task, 30)


async def test_status_json_and_page_put_failing_sources_first(
    service: Service, settings: Settings
) -> None:
    base = settings.site().base_url.rstrip("/")
    async with httpx.AsyncClient(base_url=base) as client:
        status = (await client.get("/status.json")).json()
        page = (await client.get("/")).text
        only_ok = (await client.get("/status.json", params={"state": "ok", "q": "outlet-b"})).json()
    assert status["version"] == "0.1.0" and status["role"] == "run"
    assert status["last_heartbeat"] is not None and status["uptime_seconds"] >= 0
    assert status["sources"]["states"] == {"ok": 3, "backing off": 1, "gone": 0, "blocked": 0}
    assert [s["id"] for s in status["page"]["sources"]] == [
        "missing",
        "outlet-a",
        "outlet-b",
        "outlet-c",
    ]
    failing = status["page"]["sources"][0]
    assert (failing["state"], failing["error_kind"], failing["error_count"]) == (
        "backing off",
        "http_4xx",
        1,
    )
    assert failing["failing_since"] == "2026-11-24T12:00:00+00:00"
    feeds = {f["id"]: f for f in status["feeds"]}
    assert feeds["ai-infrastructure"]["entries"] == 2 and feeds["everything"]["entries"] == 7
    assert feeds["everything"]["updated"] is not None
    assert [s["id"] for s in only_ok["page"]["sources"]] == ["outlet-b"]
    assert page.index("missing") < page.index("outlet-a")
    assert "1 failed, failing since 2026-11-24 12:00 UTC, never succeeded" in page
    assert "4 sources: 3 ok, 1 backing off, 0 gone, 0 blocked" in page


@pytest.fixture
async def many_sources(store: Store, clock: FakeClock) -> AsyncIterator[Publisher]:
    """10,000 sources, every 100th failing with a long message; one curated feed."""
    ids = [f"source-{i:05d}" for i in range(10_000)]
    hourly = timedelta(hours=1)
    definitions = [SourceDefinition(i, f"https://{i}.example/f.xml", None, hourly) for i in ids]
    await store.sync_sources(definitions, clock())
    for number, source_id in enumerate(ids[::100]):
        message = f"HTTP 503 Service Unavailable {'x' * 2000}"
        for _ in range(1 + number % 2):
            await store.record_failure(
                source_id, "http_5xx", message, clock(), clock() + timedelta(hours=1)
            )
    yield Publisher(
        store,
        [FeedDefinition("some", "Some", source_ids=tuple(ids[:3]))],
        Site("http://feeds.example/"),
        clock=clock,
    )


async def test_the_status_page_of_10000_sources_is_paged_and_small(
    many_sources: Publisher,
) -> None:
    app = create_app(many_sources)
    transport = httpx.ASGITransport(app=app)
    pages: dict[str, Any] = {}
    async with httpx.AsyncClient(transport=transport, base_url="http://feeds.example") as client:
        for name, params in {
            "first": {},
            "failing": {"state": "failing", "page": "2"},
            "found": {"q": "SOURCE-0999"},
            "last": {"page": "100"},
            "beyond": {"page": "9" * 30},
        }.items():
            pages[name] = (await client.get("/", params=params)).text
        status = (await client.get("/status.json")).content
    assert max(len(p.encode()) for p in pages.values()) < 200_000
    assert len(status) < 200_000
    first = pages["first"]
    assert "10000 sources: 9900 ok, 100 backing off" in first
    assert "page 1 of 100" in first
    assert first.count('class="state backing-off"') == 100  # the failing ones come first
    assert "source-09900" in first and "source-00001" not in first
    assert "2 failed" in first and "x" * 300 not in first  # long messages are cut
    assert "100 sources, failing first" in pages["failing"]  # page 2 of 1: empty
    assert "No source matches" in pages["failing"]
    assert "10 sources, failing first" in pages["found"]
    assert "source-09999" in pages["last"] and "next →" not in pages["last"]
    assert "No source matches" in pages["beyond"]
