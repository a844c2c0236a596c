"""Issue 5 end to end: a curated feed with `dedupe: story` through the real HTTP server, the
story's stable id as a copy arrives, the credits in every format, `feedmill explain`."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from lxml import etree

from feedmill.cli import main
from feedmill.config import Settings, load_config
from feedmill.service import Service
from store import Store, entry_uid
from tests.app.configs import outlets_config, serve_outlets, write_config
from tests.app.conftest import pull_again
from tests.conftest import FakeClock, fixture_bytes
from tests.upstream import Upstream

ATOM = "{http://www.w3.org/2005/Atom}"
A_LENOVO = entry_uid("outlet-a", "serverdesk-20261124-001")
WIRE_LENOVO = entry_uid("outlet-wire", "meridian-20261124-lenovo")
B_LENOVO = entry_uid("outlet-b", "tag:computeweekly.example,2026:lenovo-tianjin")
# Only the wire's other item: its copy of the Lenovo story arrives on the second pull.
WIRE_BEFORE = (
    fixture_bytes("outlet-wire.rss")
    .split(b"<item>")[0]
    .replace(b"</channel>", b"")
    .replace(b"</rss>", b"")
    + b"<item>"
    + fixture_bytes("outlet-wire.rss").split(b"<item>")[2]
)


def urn(uid: str) -> str:
    return f"urn:uuid:{uid[:8]}-{uid[8:12]}-{uid[12:16]}-{uid[16:20]}-{uid[20:]}"


def serve_wire(upstream: Upstream, body: bytes, etag: str) -> str:
    return upstream.add("/wire.rss", body, content_type="application/rss+xml", etag=etag)


def stories_config(upstream: Upstream, tmp_path: Path, port: int = 0) -> dict[str, Any]:
    sources = serve_outlets(upstream)
    sources["outlet-wire"] = serve_wire(upstream, WIRE_BEFORE, '"w-1"')
    config = outlets_config(sources, tmp_path, port=port)
    config["feeds"] += [
        {"id": "stories", "title": "One entry per story", "tags": ["news"], "dedupe": "story"},
        {
            "id": "wire-first",
            "title": "Wire first",
            "tags": ["news"],
            "dedupe": "story",
            "prefer": ["outlet-wire"],
        },
    ]
    return config


@pytest.fixture
def settings(tmp_path: Path, upstream: Upstream, listener: socket.socket) -> Settings:
    config = stories_config(upstream, tmp_path, port=listener.getsockname()[1])
    return load_config(write_config(tmp_path / "config.yaml", config))


def atom_entries(body: bytes) -> dict[str, etree._Element]:
    root = etree.fromstring(body)
    return {e.findtext(f"{ATOM}id"): e for e in root.iter(f"{ATOM}entry")}


async def test_a_story_feed_shows_one_entry_per_story_with_a_stable_id_and_credits(
    settings: Settings,
    service: Service,
    clock: FakeClock,
    upstream: Upstream,
    validate_atom: Callable[[bytes], None],
) -> None:
    base = settings.site().base_url.rstrip("/")
    async with httpx.AsyncClient(base_url=base) as http:
        first = await http.get("/feeds/stories.atom")
        validate_atom(first.content)
        before = atom_entries(first.content)
        story_id = await lenovo_story(settings)  # founded by whichever was stored first
        story = before[urn(story_id)]
        other = B_LENOVO if story_id == A_LENOVO else A_LENOVO
        assert urn(other) not in before  # outlet-b's rewrite joined outlet-a's story
        assert "Also reported by" in etree.tostring(story).decode()  # outlet-b

        serve_wire(upstream, fixture_bytes("outlet-wire.rss"), '"w-2"')
        await pull_again(service, clock)

        second = await http.get("/feeds/stories.atom")
        validate_atom(second.content)
        after = atom_entries(second.content)
        assert urn(WIRE_LENOVO) not in after  # the copy joined the story: not a second entry
        shown = after[urn(story_id)]  # same id, updated in place
        assert shown.findtext(f"{ATOM}title") == story.findtext(f"{ATOM}title")
        assert shown.findtext(f"{ATOM}updated") > story.findtext(f"{ATOM}updated")
        related = [
            link.get("href") for link in shown.iter(f"{ATOM}link") if link.get("rel") == "related"
        ]
        assert related == [  # oldest first
            "https://meridianwire.example/2026/11/24/lenovo-tianjin",
            "https://computeweekly.example/news/lenovo-tianjin-2027",
        ]
        text = shown.findtext(f"{ATOM}content") or shown.findtext(f"{ATOM}summary")
        assert "Also reported by: " in text and ">Meridian Wire</a>" in text
        assert shown.find(f"{ATOM}source").findtext(f"{ATOM}title") == "Server Desk"
        # The same story in a feed that prefers the wire: the wire's text, the same id.
        preferred = atom_entries((await http.get("/feeds/wire-first.atom")).content)
        wire_shown = preferred[urn(story_id)]
        assert wire_shown.findtext(f"{ATOM}title").startswith("Lenovo expands Tianjin")
        assert wire_shown.find(f"{ATOM}source").findtext(f"{ATOM}title") == "Meridian Wire"
        assert urn(WIRE_LENOVO) not in preferred
        # The feed without dedupe still carries both copies.
        everything = atom_entries((await http.get("/feeds/everything.atom")).content)
        assert {urn(A_LENOVO), urn(WIRE_LENOVO)} <= set(everything)
        # RSS and JSON Feed carry the credits too.
        rss = (await http.get("/feeds/stories.rss")).text
        assert rss.count("Lenovo expands its Tianjin") == 1 and "Meridian Wire" in rss
        items = json.loads((await http.get("/feeds/stories.json")).content)["items"]
        (lenovo,) = [i for i in items if i["id"] == urn(story_id)]
        assert "Also reported by" in lenovo["content_html"]
        assert lenovo["_feedmill"]["related"][0] == {
            "title": "Meridian Wire",
            "url": "https://meridianwire.example/2026/11/24/lenovo-tianjin",
        }
        index = (await http.get("/")).text
        assert "Stories in several sources" in index and story_id in index


async def lenovo_story(settings: Settings) -> str:
    store = Store.open(settings.database)
    try:
        story = await store.story_of(A_LENOVO)
    finally:
        await store.close()
    assert story is not None and story.id in (A_LENOVO, B_LENOVO)
    return story.id


def test_explain_shows_the_story_the_scores_and_each_feeds_verdict(
    tmp_path: Path, upstream: Upstream, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(tmp_path / "config.yaml", stories_config(upstream, tmp_path))
    assert main(["--config", str(config), "fetch"]) == 0  # the stories are founded
    serve_wire(upstream, fixture_bytes("outlet-wire.rss"), '"w-2"')
    # The wire's copy arrives on a later pull (sources parse in parallel, so within one
    # pull which source founds a story would depend on which parse ends first).
    assert main(["--config", str(config), "fetch"]) == 0
    capsys.readouterr()
    link = "https://meridianwire.example/2026/11/24/lenovo-tianjin?utm_source=x"
    assert main(["--config", str(config), "explain", link]) == 0
    out = capsys.readouterr().out
    assert f"entry {WIRE_LENOVO}  outlet-wire" in out
    story_id = asyncio.run(lenovo_story(load_config(config)))
    assert f"story {story_id}: 3 entries from 3 sources, representative {A_LENOVO}" in out
    assert f"{A_LENOVO}  outlet-a  2026-11-24 00:15  " in out
    assert "founded the story" in out
    assert "joined: near-copy 0." in out and ">= 0.60" in out
    assert f"story {story_id}: near-copy " in out  # the candidate it was compared with
    for other_id in (
        urn(WIRE_LENOVO),
        urn(story_id),
        story_id,
        "https://meridianwire.example/2026/11/24/lenovo-tianjin",
    ):
        assert main(["--config", str(config), "explain", other_id]) == 0
        assert f"story {story_id}: 3 entries from 3 sources" in capsys.readouterr().out
    lines = {line.split(":")[0].strip(): line for line in out.splitlines() if ": " in line}
    assert lines["ai-infrastructure"].endswith("in: include keyword 'AI server' matched")
    assert f"but outlet-a's entry {A_LENOVO} represents its story" in lines["stories"]
    assert "in: " in lines["wire-first"] and "represents its story" in lines["wire-first"]
    assert "in: no include rules" in lines["everything"]
    assert main(["--config", str(config), "explain", "nope"]) == 1
    capsys.readouterr()
    assert main(["--config", str(config), "preview", "stories", "--why"]) == 0
    why = capsys.readouterr().out
    flat = " ".join(why.split())
    assert "represents its story" in flat and "but outlet-a's entry" in flat, why
    assert "7 entries in stories" in why  # 9 entries pass the rules; two copies are left out


async def test_entries_pulled_while_clustering_was_off_get_stories_at_the_next_start(
    tmp_path: Path, upstream: Upstream, clock: FakeClock
) -> None:
    """The first `dedupe: story` feed arrives after entries were stored without stories: the
    next start clusters them (oldest first, in small transactions) while pulling goes on."""
    config = stories_config(upstream, tmp_path)
    serve_wire(upstream, fixture_bytes("outlet-wire.rss"), '"w-2"')  # with its Lenovo copy
    off = {**config, "stories": {"cluster": "never"}}
    for settings in (
        load_config(write_config(tmp_path / "off.yaml", off)),
        load_config(write_config(tmp_path / "on.yaml", config)),
    ):
        running = Service(settings, clock, serve=False)
        task = asyncio.create_task(running.run())
        await asyncio.wait_for(running.heartbeats.wait_for(1), timeout=30)
        await asyncio.wait_for(running.backlog_done.wait(), timeout=30)
        running.stop()
        await asyncio.wait_for(task, timeout=30)
        if settings.story_settings() is None:
            assert running.backlog_clustered == 0
    assert running.backlog_clustered > 0
    store = Store.open(settings.database)
    try:
        a, wire = await store.story_of(A_LENOVO), await store.story_of(WIRE_LENOVO)
        assert a is not None and wire is not None and a.id == wire.id  # one story
        counts = await store.count_entries()
        assert running.backlog_clustered == sum(counts.values())  # every entry, once
    finally:
        await store.close()


@pytest.mark.parametrize("dedupe", ["link", "story"])
def test_a_blogs_posts_on_one_page_stay_apart_in_every_dedupe_mode(
    tmp_path: Path,
    upstream: Upstream,
    corpus: Path,
    capsys: pytest.CaptureFixture[str],
    dedupe: str,
) -> None:
    """Scripting News: 50 posts whose links are one day's page plus a fragment naming the
    post (``.../26.html#a080605``); the fragment is their identity, and one source's posts
    never merge, so no feed collapses them and explain counts one entry from one source."""
    body = (corpus / "real" / "rsparser__scriptingNews.rss").read_bytes()
    url = upstream.add("/scripting.rss", body, content_type="application/rss+xml")
    config = outlets_config({"scripting": url}, tmp_path)
    config["feeds"] = [{"id": "posts", "title": "Posts", "tags": ["news"], "dedupe": dedupe}]
    config["stories"] = {"cluster": "always"}
    path = write_config(tmp_path / "config.yaml", config)
    assert main(["--config", str(path), "fetch"]) == 0
    capsys.readouterr()
    assert main(["--config", str(path), "preview", "posts"]) == 0
    assert "50 entries in posts" in capsys.readouterr().out
    post = "http://scripting.com/2017/06/26.html#a080605"
    assert main(["--config", str(path), "explain", post]) == 0
    out = capsys.readouterr().out
    assert f"link {post}" in out
    assert ": 1 entries from 1 sources" in out
