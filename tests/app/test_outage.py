"""A database outage, on a PostgreSQL server of the test's own that it stops and starts:
feeds and the index page are the last good rendering (with Age), /healthz says 503 and why,
the heartbeat logs one line for the whole outage, and everything recovers afterwards."""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from feedmill.config import Settings, load_config
from feedmill.service import Service
from tests.app.configs import outlets_config, serve_outlets, write_config
from tests.app.conftest import pull_again
from tests.conftest import FakeClock, fixture_bytes
from tests.private_postgres import PrivatePostgres
from tests.upstream import Upstream

NEW_ITEM = b"""    <item>
      <title>Nvidia ships a new GPU rack</title>
      <link>https://serverdesk.example/2026/11/nvidia-rack</link>
      <guid isPermaLink="false">serverdesk-20261124-009</guid>
      <pubDate>Tue, 24 Nov 2026 11:00:00 +0000</pubDate>
    </item>
  </channel>"""
PAGES = [
    "/feeds/ai-infrastructure.atom",
    "/feeds/everything.rss",
    "/feeds/everything.json",
    "/sources.opml",
    "/",
]


@pytest.fixture
def server() -> Iterator[PrivatePostgres]:
    with PrivatePostgres() as running:
        yield running


@pytest.fixture
def settings(
    tmp_path: Path, upstream: Upstream, listener: socket.socket, server: PrivatePostgres
) -> Settings:
    port = listener.getsockname()[1]
    config = outlets_config(serve_outlets(upstream), tmp_path, port=port)
    config["database"] = server.url
    config["http"] = {"recheck": 0.01}  # read the versions on (nearly) every request
    return load_config(write_config(tmp_path / "config.yaml", config))


async def wait_until_healthy(http: httpx.AsyncClient) -> None:
    for _ in range(600):
        if (await http.get("/healthz")).status_code == 200:
            return
        await asyncio.sleep(0.05)
    raise AssertionError("/healthz did not come back")


def heartbeat_lines(caplog: pytest.LogCaptureFixture, level: int) -> list[logging.LogRecord]:
    return [
        r
        for r in caplog.records
        if r.name == "feedmill.service" and r.levelno >= level and "heartbeat" in r.getMessage()
    ]


async def test_an_outage_serves_the_last_good_rendering_and_recovers(
    settings: Settings,
    service: Service,
    server: PrivatePostgres,
    upstream: Upstream,
    clock: FakeClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    async with httpx.AsyncClient(base_url=settings.site().base_url, timeout=30) as http:
        good = {path: await http.get(path) for path in PAGES}
        assert all(r.status_code == 200 and "age" not in r.headers for r in good.values())
        assert (await http.get("/healthz")).text == "ok"

        server.stop()
        health = await http.get("/healthz")
        assert health.status_code == 503
        assert health.text.startswith("the database did not answer")
        for path, before in good.items():
            during = await http.get(path)
            assert during.status_code == 200, path
            assert during.content == before.content, path
            assert int(during.headers["age"]) >= 0, path
        # The status page renders each feed's Atom first page; an archive page it did not.
        never_rendered = await http.get(f"/feeds/everything/before/{'0' * 32}.atom")
        assert never_rendered.status_code == 503
        assert never_rendered.headers["retry-after"] == "5"

        seen = service.heartbeats.done
        await asyncio.wait_for(service.heartbeats.wait_for(seen + 3), timeout=60)
        failed = heartbeat_lines(caplog, logging.WARNING)
        assert len(failed) == 1, [r.getMessage() for r in failed]  # one line, three failures
        assert failed[0].exc_info is None and "heartbeat failed" in failed[0].getMessage()

        server.start()
        await wait_until_healthy(http)
        changed = fixture_bytes("outlet-a.rss").replace(b"  </channel>", NEW_ITEM)
        upstream.add("/a.rss", changed, content_type="application/rss+xml", etag='"a-2"')
        await pull_again(service, clock)
        after = await http.get("/feeds/ai-infrastructure.atom")
        assert after.status_code == 200 and "age" not in after.headers
        assert b"Nvidia ships a new GPU rack" in after.content
        assert (await http.get("/")).headers.get("age") is None
    recovered = [r.getMessage() for r in heartbeat_lines(caplog, logging.INFO)]
    assert any("heartbeat works again after" in m for m in recovered)
    assert not [r for r in caplog.records if r.exc_info], "no traceback during the outage"
