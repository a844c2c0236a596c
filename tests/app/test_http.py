"""Issue 6 end to end through a real uvicorn: formats, caching headers, paging, OPML, WebSub,
and a real feed reader (lemon24/reader) subscribed to our Atom feed."""

from __future__ import annotations

import asyncio
import gzip
import socket
from collections.abc import AsyncIterator, Callable, Iterator
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

import feedparser
import httpx
import pytest
from lxml import etree

from feedmill.config import Settings, load_config
from feedmill.service import Service
from tests.app.configs import outlets_config, serve_outlets, write_config
from tests.app.conftest import pull_again
from tests.app.hub import Hub
from tests.conftest import FakeClock, fixture_bytes
from tests.upstream import Upstream

ATOM = "{http://www.w3.org/2005/Atom}"
NEW_ITEM = b"""    <item>
      <title>Nvidia ships a new GPU rack</title>
      <link>https://serverdesk.example/2026/11/nvidia-rack</link>
      <guid isPermaLink="false">serverdesk-20261124-009</guid>
      <pubDate>Tue, 24 Nov 2026 11:00:00 +0000</pubDate>
      <description>Seventy-two GPUs in one rack.</description>
    </item>
  </channel>"""


@pytest.fixture
def hub() -> Iterator[Hub]:
    with Hub(statuses=[503]) as running:  # the first ping fails and is retried
        yield running


@pytest.fixture
def settings(tmp_path: Path, upstream: Upstream, listener: socket.socket, hub: Hub) -> Settings:
    port = listener.getsockname()[1]
    config: dict[str, Any] = outlets_config(serve_outlets(upstream), tmp_path, port=port)
    config["feeds"].append({"id": "paged", "title": "Paged", "limit": 2})
    config["http"] = {"max_age": "10m"}
    config["websub"] = {"hub": hub.url, "retry_delay": 0.01}
    return load_config(write_config(tmp_path / "config.yaml", config))


@pytest.fixture
async def client(settings: Settings, service: Service) -> AsyncIterator[httpx.AsyncClient]:
    base = settings.site().base_url.rstrip("/")
    async with httpx.AsyncClient(base_url=base) as http:
        yield http


async def test_every_format_of_every_feed(
    client: httpx.AsyncClient, validate_atom: Callable[[bytes], None]
) -> None:
    for feed_id in ("ai-infrastructure", "everything", "paged"):
        atom = await client.get(f"/feeds/{feed_id}.atom")
        validate_atom(atom.content)
        rss = await client.get(f"/feeds/{feed_id}.rss")
        assert rss.headers["content-type"] == "application/rss+xml; charset=utf-8"
        parsed = feedparser.parse(rss.content)
        assert not parsed.bozo and parsed.version == "rss20"
        atom_entries = feedparser.parse(atom.content).entries
        assert [e.id for e in parsed.entries] == [e.id for e in atom_entries]
        assert [e.title for e in parsed.entries] == [e.title for e in atom_entries]
        assert all(e.guidislink is False for e in parsed.entries)
        document = (await client.get(f"/feeds/{feed_id}.json")).json()
        check_json_feed(document)
        assert [i["id"] for i in document["items"]] == [e.id for e in atom_entries]


def check_json_feed(document: dict[str, Any]) -> None:
    """The required fields and types of JSON Feed 1.1 (https://jsonfeed.org/version/1.1)."""
    assert document["version"] == "https://jsonfeed.org/version/1.1"
    assert isinstance(document["title"], str)
    assert document["feed_url"].startswith("http")
    for item in document["items"]:
        assert isinstance(item["id"], str)
        assert "content_html" in item or "content_text" in item
        for attachment in item.get("attachments", []):
            assert attachment["url"] and attachment["mime_type"]
        for key in ("date_published", "date_modified"):
            if key in item:
                assert "T" in item[key] and item[key].endswith("+00:00")


async def test_atom_entries_carry_their_source(client: httpx.AsyncClient) -> None:
    root = etree.fromstring((await client.get("/feeds/everything.atom")).content)
    for entry in root.iterfind(f"{ATOM}entry"):
        source = entry.find(f"{ATOM}source")
        assert source is not None and source.findtext(f"{ATOM}title")
        assert source.find(f"{ATOM}link") is not None


async def test_etag_last_modified_304_head_and_gzip(client: httpx.AsyncClient) -> None:
    first = await client.get("/feeds/everything.atom", headers={"Accept-Encoding": "identity"})
    etag, modified = first.headers["etag"], first.headers["last-modified"]
    assert etag.startswith('"') and not etag.startswith("W/")
    assert first.headers["cache-control"] == "public, max-age=600"
    assert "content-encoding" not in first.headers
    for headers in ({"If-None-Match": etag}, {"If-Modified-Since": modified}):
        again = await client.get("/feeds/everything.atom", headers=headers)
        assert again.status_code == 304 and again.content == b""
        assert again.headers["etag"] == etag
    stale = await client.get("/feeds/everything.atom", headers={"If-None-Match": '"other"'})
    assert stale.status_code == 200
    older = "Mon, 01 Jan 2024 00:00:00 GMT"
    assert (
        await client.get("/feeds/everything.atom", headers={"If-Modified-Since": older})
    ).status_code == 200
    head = await client.head("/feeds/everything.atom", headers={"Accept-Encoding": "identity"})
    assert head.status_code == 200 and head.content == b""
    assert head.headers["content-length"] == str(len(first.content))
    raw = await client.get("/feeds/everything.atom", headers={"Accept-Encoding": "gzip"})
    assert raw.headers["content-encoding"] == "gzip"
    assert raw.content == first.content  # httpx decoded it
    assert raw.headers["etag"] == etag
    refused = await client.get("/feeds/everything.atom", headers={"Accept-Encoding": "gzip;q=0"})
    assert "content-encoding" not in refused.headers
    assert gzip.decompress(gzip.compress(first.content)) == first.content


async def test_a_cached_feed_is_not_rendered_again(
    client: httpx.AsyncClient, service: Service
) -> None:
    assert service.publisher is not None
    await client.get("/feeds/everything.rss")
    rendered = service.publisher.renders
    for _ in range(3):
        await client.get("/feeds/everything.rss")
    assert service.publisher.renders == rendered


async def test_rfc5005_paging_walks_every_entry_once(client: httpx.AsyncClient) -> None:
    everything = feedparser.parse((await client.get("/feeds/everything.atom")).content)
    seen: list[str] = []
    url: str | None = "/feeds/paged.atom"
    pages = 0
    while url:
        page = etree.fromstring((await client.get(url)).content)
        seen += [e.findtext(f"{ATOM}id") for e in page.iterfind(f"{ATOM}entry")]
        links = {link.get("rel"): link.get("href") for link in page.iterfind(f"{ATOM}link")}
        url = links.get("next")
        pages += 1
    assert pages == 4  # 7 entries, 2 a page
    assert seen == [e.id for e in everything.entries]
    json_page = (await client.get("/feeds/paged.json")).json()
    assert (await client.get(json_page["next_url"])).json()["items"][0]["id"] == seen[2]


async def test_opml_lists_sources_and_feeds(client: httpx.AsyncClient, settings: Settings) -> None:
    sources = etree.fromstring((await client.get("/sources.opml")).content)
    assert sources.get("version") == "2.0"
    assert {o.get("xmlUrl") for o in sources.iter("outline")} == {s.url for s in settings.sources}
    feeds = etree.fromstring((await client.get("/feeds.opml")).content)
    base = settings.site().base_url
    assert [o.get("xmlUrl") for o in feeds.iter("outline")] == [
        f"{base}feeds/ai-infrastructure.atom",
        f"{base}feeds/everything.atom",
        f"{base}feeds/paged.atom",
    ]
    assert (await client.get("/feeds/nope.rss")).status_code == 404


async def test_websub_hub_is_linked_and_pinged_on_change(
    client: httpx.AsyncClient,
    service: Service,
    clock: FakeClock,
    upstream: Upstream,
    hub: Hub,
    settings: Settings,
) -> None:
    atom = etree.fromstring((await client.get("/feeds/everything.atom")).content)
    assert hub.url in [link.get("href") for link in atom.iterfind(f"{ATOM}link[@rel='hub']")]
    assert (await client.get("/feeds/everything.json")).json()["hubs"][0]["url"] == hub.url
    # The first pull filled every feed (the baseline was the empty database): 3 feeds x 3.
    assert await asyncio.to_thread(hub.wait_for_accepted, 9)
    assert hub.pings[0]["status"] == "503"  # failed once, retried
    first_round = len(hub.accepted())
    changed = fixture_bytes("outlet-a.rss").replace(b"  </channel>", NEW_ITEM)
    upstream.add("/a.rss", changed, content_type="application/rss+xml", etag='"a-2"')
    await pull_again(service, clock)
    base = settings.site().base_url
    # everything, ai-infrastructure (a GPU story) and paged changed; 3 formats each.
    assert await asyncio.to_thread(hub.wait_for_accepted, first_round + 9)
    assert all(p["hub.mode"] == "publish" for p in hub.pings)
    assert sorted(hub.accepted()[first_round:]) == sorted(
        f"{base}feeds/{f}.{x}"
        for f in ("ai-infrastructure", "everything", "paged")
        for x in ("atom", "json", "rss")
    )
    titles = [
        e.title
        for e in feedparser.parse((await client.get("/feeds/everything.atom")).content).entries
    ]
    assert titles[0] == "Nvidia ships a new GPU rack"


async def test_the_reader_library_sees_each_entry_exactly_once(
    service: Service, settings: Settings, clock: FakeClock, upstream: Upstream, tmp_path: Path
) -> None:
    from reader import make_reader

    url = settings.site().feed_url("everything")
    reader = make_reader(str(tmp_path / "reader.sqlite"))
    try:
        reader.add_feed(url)
        await asyncio.to_thread(reader.update_feeds, scheduled=False)
        assert len(list(reader.get_entries())) == 7
        await asyncio.to_thread(
            reader.update_feeds, scheduled=False
        )  # nothing new: a conditional request
        changed = fixture_bytes("outlet-a.rss").replace(b"  </channel>", NEW_ITEM)
        upstream.add("/a.rss", changed, content_type="application/rss+xml", etag='"a-2"')
        await pull_again(service, clock)
        await asyncio.to_thread(reader.update_feeds, scheduled=False)
        entries = list(reader.get_entries())
        ids = [e.id for e in entries]
        assert len(ids) == len(set(ids)) == 8
        new = reader.get_entry(
            (url, next(i for i in ids if e_title(reader, url, i) == "Nvidia ships a new GPU rack"))
        )
        assert new.link == "https://serverdesk.example/2026/11/nvidia-rack"
        assert new.published is not None and new.published.isoformat().startswith(
            "2026-11-24T11:00"
        )
        lenovo = [e for e in entries if e.title and e.title.startswith("Lenovo expands")]
        assert len(lenovo) == 1
        assert lenovo[0].link.startswith("https://serverdesk.example/2026/11/lenovo-tianjin")
    finally:
        reader.close()


def e_title(reader: Any, url: str, entry_id: str) -> str | None:
    return reader.get_entry((url, entry_id)).title


BACK_FILLED_ITEM = NEW_ITEM.replace(b"Nvidia ships a new GPU rack", b"From the archive").replace(
    b"Tue, 24 Nov 2026 11:00:00", b"Thu, 31 Jan 2019 16:58:12"
)


async def test_both_validators_see_a_back_filled_entry(
    client: httpx.AsyncClient, service: Service, clock: FakeClock, upstream: Upstream
) -> None:
    """An entry dated before the others moves Last-Modified with the ETag, on the pages it
    changes (the first page of `everything`, the last archive page of `paged`) and only
    there; If-None-Match decides over If-Modified-Since (RFC 9110 13.2.2); HEAD alike."""
    last_archive = await last_page(client, "/feeds/paged.rss")
    paths = ["/feeds/everything.atom", last_archive, "/feeds/paged.rss"]
    old = {path: (await client.get(path)).headers for path in paths}
    changed = fixture_bytes("outlet-a.rss").replace(b"  </channel>", BACK_FILLED_ITEM)
    upstream.add("/a.rss", changed, content_type="application/rss+xml", etag='"a-2"')
    await pull_again(service, clock)
    for path in paths:
        now = (await client.get(path)).headers
        unchanged = path == "/feeds/paged.rss"
        assert (now["etag"] == old[path]["etag"]) is unchanged
        assert (now["last-modified"] == old[path]["last-modified"]) is unchanged
        for method in ("GET", "HEAD"):

            async def status(etag: str, since: str, method: str = method, path: str = path) -> int:
                headers = {"If-None-Match": etag, "If-Modified-Since": since}
                return (await client.request(method, path, headers=headers)).status_code

            both_old = await status(old[path]["etag"], old[path]["last-modified"])
            assert both_old == (304 if unchanged else 200)
            assert await status(now["etag"], "Mon, 01 Jan 2018 00:00:00 GMT") == 304
            assert await status('"stale"', now["last-modified"]) == 200
    new_dates = {path: (await client.get(path)).headers["last-modified"] for path in paths}
    assert all(
        parsedate_to_datetime(new_dates[p]) > parsedate_to_datetime(old[p]["last-modified"])
        for p in paths[:2]
    )


async def last_page(client: httpx.AsyncClient, path: str) -> str:
    while True:
        document = etree.fromstring((await client.get(path)).content)
        following = document.find(f".//{ATOM}link[@rel='next']")
        if following is None:
            return path
        path = httpx.URL(following.get("href")).path


async def test_the_quick_path_answers_with_the_apps_own_bytes(
    client: httpx.AsyncClient, service: Service
) -> None:
    """A cached feed document known current is answered by feedmill.quick without the ASGI
    round; every answer it gives is the one the app gives (the Date header aside)."""
    assert service.server is not None and service.publisher is not None
    app = service.server.config.app
    quick: list[int] = []
    answer = app.quick_answer

    def counted(*args: Any) -> Any:
        found = answer(*args)
        quick.append(found is not None)
        return found

    app.quick_answer = counted
    first = await client.get("/feeds/everything.atom")
    etag, modified = first.headers["etag"], first.headers["last-modified"]
    variants: list[tuple[str, dict[str, str]]] = [
        ("GET", {"accept-encoding": "identity"}),
        ("GET", {"accept-encoding": "gzip"}),
        ("HEAD", {}),
        ("GET", {"if-none-match": etag}),
        ("GET", {"if-modified-since": modified}),
        ("GET", {"if-none-match": '"other"', "if-modified-since": modified}),
    ]
    for method, headers in variants:
        service.publisher.invalidate()  # the next answer comes from the app (a versions read)
        quick.clear()
        by_app = await client.request(method, "/feeds/everything.atom", headers=headers)
        by_quick = await client.request(method, "/feeds/everything.atom", headers=headers)
        assert quick == [False, True], (method, headers)
        assert by_quick.status_code == by_app.status_code
        assert by_quick.content == by_app.content
        assert _without_date(by_quick.headers) == _without_date(by_app.headers)
    # HTTP/1.0 without keep-alive: answered, then the connection closed.
    host, port = str(client.base_url.host), client.base_url.port
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(b"GET /feeds/everything.atom HTTP/1.0\r\nHost: x\r\n\r\n")
    raw = await asyncio.wait_for(reader.read(), timeout=10)  # read() ends when it closes
    writer.close()
    assert raw.startswith(b"HTTP/1.1 200 OK\r\n") and raw.endswith(first.content)
    assert b"\r\nconnection: close\r\n" in raw


def _without_date(headers: httpx.Headers) -> list[tuple[str, str]]:
    return sorted((k, v) for k, v in headers.items() if k != "date")
