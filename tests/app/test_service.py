"""End to end through a real uvicorn server, in-process, on a temporary SQLite file."""

from __future__ import annotations

import re
import socket
from collections.abc import Callable
from pathlib import Path

import feedparser
import httpx
import pytest

from feedmill.config import Settings, load_config
from feedmill.service import Service
from tests.app.configs import LAST_MODIFIED, outlets_config, serve_outlets, write_config
from tests.app.conftest import pull_again
from tests.conftest import FakeClock
from tests.upstream import Upstream

LENOVO = {
    "Lenovo expands its Tianjin AI server hub, mass production by 2027",
    "Lenovo to mass-produce AI servers in Tianjin from 2027 (update)",
}


@pytest.fixture
def settings(tmp_path: Path, upstream: Upstream, listener: socket.socket) -> Settings:
    port = listener.getsockname()[1]
    config = outlets_config(serve_outlets(upstream), tmp_path, port=port)
    return load_config(write_config(tmp_path / "config.yaml", config))


async def get(settings: Settings, path: str) -> httpx.Response:
    async with httpx.AsyncClient(base_url=settings.site().base_url.rstrip("/")) as client:
        return await client.get(path)


async def test_the_curated_feed_carries_the_story_and_validates(
    service: Service, settings: Settings, validate_atom: Callable[[bytes], None]
) -> None:
    response = await get(settings, "/feeds/ai-infrastructure.atom")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/atom+xml; charset=utf-8"
    titles = {e.title for e in feedparser.parse(response.content).entries}
    # Unrelated items match no include keyword; Rack Report's data center item says "deal".
    assert titles == LENOVO
    validate_atom(response.content)
    everything = await get(settings, "/feeds/everything.atom")
    assert len(feedparser.parse(everything.content).entries) == 7
    validate_atom(everything.content)


async def test_a_second_pull_adds_nothing_and_asks_conditionally(
    service: Service, settings: Settings, clock: FakeClock, upstream: Upstream
) -> None:
    before = (await get(settings, "/feeds/everything.atom")).content
    await pull_again(service, clock)
    assert (await get(settings, "/feeds/everything.atom")).content == before
    for path, header, value in [
        ("/a.rss", "If-None-Match", '"a-1"'),
        ("/b.atom", "If-Modified-Since", LAST_MODIFIED),
        ("/c.rss", "If-None-Match", 'W/"c-1"'),
    ]:
        first, second = upstream.requests_for(path)[:2]
        assert header not in first.headers
        assert second.headers[header] == value


async def test_the_index_page_lists_feeds_with_autodiscovery(
    service: Service, settings: Settings
) -> None:
    response = await get(settings, "/")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    base = settings.site().base_url
    assert (
        '<link rel="alternate" type="application/atom+xml" title="AI infrastructure" '
        f'href="{base}feeds/ai-infrastructure.atom">'
    ) in response.text
    assert (
        '<link rel="alternate" type="application/feed+json" title="AI infrastructure (JSON Feed)" '
        f'href="{base}feeds/ai-infrastructure.json">'
    ) in response.text
    assert f'<a href="{base}feeds/everything.atom">Everything</a>' in response.text
    assert f'<a href="{base}feeds/everything.rss">RSS</a>' in response.text
    assert f'<a href="{base}feeds.opml">feeds.opml</a>' in response.text
    # a feed reader given the page finds every feed in every format
    found = re.findall(r'<link rel="alternate" type="([^"]+)"[^>]*href="([^"]+)"', response.text)
    assert len(found) == 2 * 3


async def test_unknown_feeds_are_404(service: Service, settings: Settings) -> None:
    response = await get(settings, "/feeds/nope.atom")
    assert response.status_code == 404
    assert "nope" in response.text
