"""Search feeds and query feeds through the Publisher on a real SQLite store: entries stored
before a feed was defined, rules beside a query, one entry per story, the cache, the page."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from feeds import Publisher, create_app
from feeds.model import FeedDefinition, SearchSettings
from feeds.search import SearchFeeds, highlight, snippet
from sources import ParsedEntry, ParsedFeed, Validators, parse_document
from store import SourceDefinition, Store, ensure_schema
from store.search import parse_query, wanted_terms
from store.stories import StorySettings
from tests.conftest import fixture_bytes
from tests.fakes import SITE

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)
OUTLETS = {
    "outlet-a": "outlet-a.rss",
    "outlet-b": "outlet-b.atom",
    "outlet-c": "outlet-c.rss",
    "outlet-wire": "outlet-wire.rss",
}


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    """The four outlets stored, stories clustered (near-copy), before any feed exists."""
    opened = Store.open(f"sqlite:///{tmp_path / 'feedmill.db'}", stories=StorySettings())
    await ensure_schema(opened)
    await opened.sync_sources(
        [SourceDefinition(s, f"https://{s}.example/feed", None, HOUR) for s in OUTLETS], NOW
    )
    for source_id, name in OUTLETS.items():
        document = parse_document(fixture_bytes(name), f"https://{source_id}.example/feed")
        await opened.ingest(source_id, document, Validators(), NOW, NOW + HOUR)
    yield opened
    await opened.close()


def publisher(store: Store, *definitions: FeedDefinition) -> Publisher:
    return Publisher(store, definitions, SITE, clock=lambda: NOW)


async def test_a_query_feed_carries_entries_stored_before_it_was_defined(store: Store) -> None:
    feed = FeedDefinition("lenovo", "Lenovo", tuple(OUTLETS), query="lenovo tianjin")
    entries = await publisher(store, feed).select("lenovo")
    assert sorted(e.source_id for e in entries) == ["outlet-a", "outlet-b", "outlet-wire"]


async def test_rules_apply_beside_a_query(store: Store) -> None:
    feed = FeedDefinition(
        "lenovo",
        "Lenovo",
        ("outlet-a", "outlet-b", "outlet-wire"),
        query="lenovo OR shipping",
        exclude=("port",),
        include=("production",),
    )
    published = publisher(store, feed)
    assert sorted(e.source_id for e in await published.select("lenovo")) == [
        "outlet-a",
        "outlet-b",
        "outlet-wire",
    ]
    restricted = FeedDefinition("wire", "Wire", ("outlet-wire",), query="lenovo OR shipping")
    assert [e.source_id for e in await publisher(store, restricted).select("wire")] == [
        "outlet-wire",
        "outlet-wire",
    ]


async def test_a_search_with_dedupe_story_shows_one_entry_per_story(store: Store) -> None:
    plain = SearchFeeds(publisher(store), SearchSettings())
    stories = SearchFeeds(publisher(store), SearchSettings(dedupe="story"))
    assert len((await plain.page("lenovo tianjin")).entries) == 3
    page = await stories.page("lenovo tianjin")
    # Server Desk's, the wire's near-copy and Compute Weekly's rewrite are one story.
    assert len(page.entries) == 1
    assert len(page.stories[page.entries[0].uid].others) == 2


async def test_a_search_feed_is_cached_until_a_source_changes(store: Store) -> None:
    published = publisher(store)
    search = SearchFeeds(published, SearchSettings())
    first = await search.render("shipping OR lenovo", "atom")
    renders = published.renders
    assert await search.render("shipping OR lenovo", "atom") is first
    assert published.renders == renders
    newer = ParsedEntry(
        id="new", link="https://wire.example/new", title="Shipping lines add ships", published=NOW
    )
    feed = ParsedFeed(url="https://outlet-wire.example/feed", version="rss20", entries=(newer,))
    await store.ingest("outlet-wire", feed, Validators(), NOW, NOW + HOUR)
    published.invalidate()
    second = await search.render("shipping OR lenovo", "atom")
    assert second.etag != first.etag and b"Shipping lines add ships" in second.body


async def test_a_search_that_is_not_public_is_not_served(store: Store) -> None:
    app = create_app(publisher(store), search=SearchSettings(public=False))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        assert (await client.get("/search.atom?q=lenovo")).status_code == 404
        assert (await client.get("/search?q=lenovo")).status_code == 404
        assert 'role="search"' not in (await client.get("/")).text
    app = create_app(publisher(store))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        assert (await client.get("/search.atom?q=lenovo")).status_code == 200
        assert 'role="search"' in (await client.get("/")).text


def test_snippets_escape_upstream_text_and_mark_only_matched_words() -> None:
    terms = wanted_terms(parse_query("lenovo ai server* -dell").root)
    assert highlight("<b>Lenovo</b> & Dell's AI servers", terms) == (
        "&lt;b&gt;<mark>Lenovo</mark>&lt;/b&gt; &amp; Dell&#x27;s "
        "<mark>AI</mark> <mark>servers</mark>"
    )
    text = " ".join(f"w{i}" for i in range(100)) + " Lenovo " + " ".join("x" * 40)
    shown = snippet(text, terms, width=20)
    assert shown.startswith("… ") and shown.endswith(" …") and "<mark>Lenovo</mark>" in shown
    assert snippet("", terms) == ""
