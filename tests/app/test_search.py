"""Search end to end through a real uvicorn: search feeds in every format with ETag/304/gzip
and paging, a real feed reader subscribed to one, the HTML page, bad and hostile queries,
`feedmill search`."""

from __future__ import annotations

import asyncio
import gzip
import json
import socket
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

import feedparser
import httpx
import pytest

from feedmill.cli import main
from feedmill.config import Settings, load_config
from feedmill.service import Service
from store import entry_uid
from tests.app.configs import outlets_config, serve_outlets, write_config
from tests.app.test_http import check_json_feed
from tests.upstream import Upstream

B_LENOVO = entry_uid("outlet-b", "tag:computeweekly.example,2026:lenovo-tianjin")


def search_config(upstream: Upstream, tmp_path: Path, port: int = 0) -> dict[str, Any]:
    sources = serve_outlets(upstream)
    sources["outlet-wire"] = upstream.add(
        "/wire.rss",
        (Path(__file__).parent.parent / "data" / "outlet-wire.rss").read_bytes(),
        content_type="application/rss+xml",
    )
    config: dict[str, Any] = outlets_config(sources, tmp_path, port=port)
    config["search"] = {"limit": 2, "max_terms": 10}
    config["feeds"].append(
        {"id": "lenovo", "title": "Lenovo", "query": 'lenovo "server hub" -title:shipping'}
    )
    return config


@pytest.fixture
def settings(tmp_path: Path, upstream: Upstream, listener: socket.socket) -> Settings:
    config = search_config(upstream, tmp_path, port=listener.getsockname()[1])
    return load_config(write_config(tmp_path / "config.yaml", config))


@pytest.fixture
async def client(settings: Settings, service: Service) -> AsyncIterator[httpx.AsyncClient]:
    base = settings.site().base_url.rstrip("/")
    async with httpx.AsyncClient(base_url=base) as http:
        yield http


async def test_a_search_is_a_feed_in_every_format(
    client: httpx.AsyncClient, validate_atom: Callable[[bytes], None]
) -> None:
    atom = await client.get("/search.atom", params={"q": "lenovo OR gpu*"})
    assert atom.status_code == 200
    assert atom.headers["content-type"] == "application/atom+xml; charset=utf-8"
    validate_atom(atom.content)
    parsed = feedparser.parse(atom.content)
    assert not parsed.bozo
    assert parsed.feed.title == "Search: lenovo OR gpu*"
    titles = [e.title for e in parsed.entries]
    assert len(titles) == 2  # search.limit
    assert all("Lenovo" in t or "deal" in t for t in titles)
    links = {link.rel: link.href for link in parsed.feed.links}
    assert links["self"].endswith("/search.atom?q=lenovo+OR+gpu%2A")
    rss = feedparser.parse(
        (await client.get("/search.rss", params={"q": "lenovo OR gpu*"})).content
    )
    assert not rss.bozo and [e.title for e in rss.entries] == titles
    document = (await client.get("/search.json", params={"q": "lenovo OR gpu*"})).json()
    check_json_feed(document)
    assert [i["title"] for i in document["items"]] == titles


async def test_search_feeds_page_and_cache_like_curated_feeds(client: httpx.AsyncClient) -> None:
    seen: list[str] = []
    url: str | None = "/search.atom?q=" + quote("lenovo OR gpu* OR deal")
    while url is not None:
        page = feedparser.parse((await client.get(url)).content)
        seen += [e.id for e in page.entries]
        url = next((link.href for link in page.feed.links if link.rel == "next"), None)
    assert len(seen) == len(set(seen)) == 4  # three Lenovo copies, the GPU campus deal
    first = await client.get("/search.atom?q=lenovo", headers={"Accept-Encoding": "gzip"})
    assert first.headers["content-encoding"] == "gzip"
    assert first.headers["cache-control"] == "public, max-age=300"
    raw = await client.get("/search.atom?q=lenovo", headers={"Accept-Encoding": "identity"})
    assert gzip.decompress(gzip.compress(raw.content)) == first.content
    again = await client.get(
        "/search.atom?q=lenovo", headers={"If-None-Match": first.headers["etag"]}
    )
    assert again.status_code == 304 and again.content == b""
    modified = first.headers["last-modified"]
    since = await client.get("/search.atom?q=lenovo", headers={"If-Modified-Since": modified})
    assert since.status_code == 304
    head = await client.head("/search.rss?q=lenovo")
    assert head.status_code == 200 and head.content == b""


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({}, "add a search query"),
        ({"q": "   "}, "add a search query"),
        ({"q": 'lenovo "server'}, "unbalanced quote"),
        ({"q": "x" * 10_000}, "10000 characters long"),
        ({"q": " ".join(["w"] * 2000)[:499]}, "250 words"),
        ({"q": "-lenovo"}, "not negated"),
        ({"q": "lenovo since:someday"}, "not a date"),
        ({"q": "lenovo", "before": "../etc"}, "id of an entry"),
    ],
)
async def test_a_bad_search_is_a_400_that_says_why(
    client: httpx.AsyncClient, params: dict[str, str], message: str
) -> None:
    response = await client.get("/search.atom", params=params)
    assert response.status_code == 400
    assert response.headers["content-type"] == "text/plain; charset=utf-8"
    assert message in response.text
    head = await client.head("/search.json", params=params)
    assert head.status_code == 400 and head.content == b""


async def test_fts_syntax_is_never_a_500(client: httpx.AsyncClient) -> None:
    hostile = [
        'NEAR(lenovo server, 2) {title}: ^lenovo "a" * "',
        "lenovo AND OR NOT",
        "'; DROP TABLE entries; --",
        "title:(a OR (b OR (c OR (d OR (e OR (f OR (g OR (h OR (i))))))))))",
        'a:b & c | !d <-> e:* \\ \' "" ()',
        "\x00 \uffff \u200b",
        "(" * 400,
    ]
    for query in hostile:
        for extension in ("atom", "rss", "json"):
            response = await client.get(f"/search.{extension}", params={"q": query})
            assert response.status_code in (200, 400), (query, response.text)
        page = await client.get("/search", params={"q": query})
        assert page.status_code in (200, 400)
    # Bytes that are not UTF-8 (a lone surrogate's encoding) and a NUL, as a client may send.
    raw = await client.get("/search.atom?q=%ED%A0%80%00lenovo%FF")
    assert raw.status_code in (200, 400)
    assert (await client.get("/feeds/everything.atom")).status_code == 200  # still serving


async def test_the_search_page_highlights_matches_and_links_the_feed(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    index = (await client.get("/")).text
    assert f'action="{settings.site().base_url}search"' in index
    page = await client.get("/search", params={"q": "tianjin -<script>"})
    assert page.status_code == 200
    body = page.text
    assert "<mark>Tianjin</mark>" in body
    assert "<script>" not in body and "&lt;script&gt;" in body  # the query, escaped
    assert 'type="application/atom+xml"' in body and "search.atom?q=tianjin+-%3Cscript%3E" in body
    assert "Older results" in body  # three Lenovo copies, two a page
    bad = await client.get("/search", params={"q": '"unbalanced'})
    assert bad.status_code == 400 and "unbalanced quote" in bad.text
    assert (await client.get("/search")).status_code == 200  # the empty form


async def test_a_feed_reader_subscribed_to_a_search_sees_each_entry_once(
    client: httpx.AsyncClient, settings: Settings, tmp_path: Path
) -> None:
    from reader import make_reader

    url = settings.site().base_url + "search.atom?q=" + quote("server OR gpu OR port")
    reader = make_reader(str(tmp_path / "reader.sqlite"))
    try:
        reader.add_feed(url)
        await asyncio.to_thread(reader.update_feeds, scheduled=False)
        first = [e.id for e in reader.get_entries()]
        await asyncio.to_thread(reader.update_feeds, scheduled=False)  # a conditional request
        again = [e.id for e in reader.get_entries()]
        assert first == again and len(first) == len(set(first)) == 2
    finally:
        reader.close()


async def test_a_query_feed_carries_what_matches_and_explains_it(
    client: httpx.AsyncClient, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Entries stored before the feed was defined are in it (the service pulled them when it
    started; the feed only reads the index); the verdicts say what part matched."""
    feed = feedparser.parse((await client.get("/feeds/lenovo.atom")).content)
    assert sorted(e.source.title for e in feed.entries) == ["Meridian Wire", "Server Desk"]
    config = str(tmp_path / "config.yaml")
    assert await cli("--config", config, "preview", "lenovo", "--why") == 0
    why = capsys.readouterr().out
    assert 'query matched: "lenovo" in title/body, "server hub" in title' in why
    assert "2 entries in lenovo" in why
    assert await cli("--config", config, "explain", B_LENOVO) == 0
    explained = capsys.readouterr().out
    assert 'lenovo: out: query did not match: no "server hub"' in explained
    assert "everything: in: no include rules" in explained


async def cli(*args: str) -> int:
    """The command line in a thread: it runs its own event loop."""
    return await asyncio.to_thread(main, list(args))


async def test_search_on_the_command_line(
    settings: Settings, service: Service, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = str(tmp_path / "config.yaml")
    assert await cli("--config", config, "search", "lenovo tianjin", "--json", "--limit", "5") == 0
    found = json.loads(capsys.readouterr().out)["entries"]
    assert len(found) == 3 and all("Tianjin" in e["title"] for e in found)
    assert {e["source"] for e in found} == {"outlet-a", "outlet-b", "outlet-wire"}
    assert await cli("--config", config, "search", "port congestion") == 0
    out = capsys.readouterr().out
    assert "Shipping rates ease" in out and "1 entries match" in out
    assert await cli("--config", config, "search", '"unbalanced') == 1
    assert "unbalanced quote" in capsys.readouterr().err
