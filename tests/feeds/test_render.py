from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta

import feedparser
from lxml import etree

from feeds import render_atom
from feeds.formats import render_json_feed
from feeds.render import EPOCH, entry_id
from sources import Author, Enclosure
from tests.fakes import SITE, T0, feed_definition, source_info, stored_entry

ATOM = "{http://www.w3.org/2005/Atom}"
SOURCES = {"outlet-a": source_info("outlet-a"), "outlet-b": source_info("outlet-b")}


def entries() -> list:
    return [
        stored_entry(
            "lenovo",
            title="Lenovo expands its Tianjin AI server hub",
            summary="<p>Three new lines.</p>",
            content="<p>Three new lines, <b>liquid-cooled</b>.</p>",
            authors=(Author("Mei Lin"),),
            categories=("Data Center",),
            published=T0,
            sort_at=T0,
        ),
        stored_entry(
            "podcast",
            source_id="outlet-b",
            link=None,
            title=None,
            summary="<p>An episode about GPUs &amp; power.</p>",
            enclosures=(Enclosure("https://outlet-b.example/ep.mp3", "audio/mpeg", 1234),),
            published=T0 - timedelta(hours=2),
            sort_at=T0 - timedelta(hours=2),
        ),
    ]


def test_rendering_is_deterministic_and_valid(validate_atom: Callable[[bytes], None]) -> None:
    first = render_atom(feed_definition(subtitle="Servers"), entries(), SOURCES, SITE)
    second = render_atom(feed_definition(subtitle="Servers"), entries(), SOURCES, SITE)
    assert first.body == second.body
    assert first.media_type == "application/atom+xml; charset=utf-8"
    validate_atom(first.body)


def test_feed_metadata_comes_from_the_site_and_the_newest_entry() -> None:
    rendered = render_atom(feed_definition(), entries(), SOURCES, SITE)
    root = etree.fromstring(rendered.body)
    assert root.findtext(f"{ATOM}id") == "https://news.example.org/feeds/ai-infrastructure"
    assert root.findtext(f"{ATOM}updated") == "2026-11-24T12:00:00+00:00"
    links = {link.get("rel"): link.get("href") for link in root.findall(f"{ATOM}link")}
    assert links == {
        "self": "https://news.example.org/feeds/ai-infrastructure.atom",
        "alternate": "https://news.example.org/",
    }
    assert rendered.updated == T0


def test_entries_keep_their_order_ids_and_provenance() -> None:
    rendered = render_atom(feed_definition(), entries(), SOURCES, SITE)
    parsed = feedparser.parse(rendered.body)
    assert [e.id for e in parsed.entries] == [entry_id(e) for e in entries()]
    assert parsed.entries[0].id.startswith("urn:uuid:")
    lenovo, podcast = parsed.entries
    assert lenovo.title == "Lenovo expands its Tianjin AI server hub"
    assert lenovo.link == "https://outlet-a.example/lenovo"
    assert lenovo.author == "Mei Lin"
    assert lenovo.tags[0].term == "Data Center"
    assert lenovo.source.title == "Outlet A"
    # An entry without link or title: its summary becomes content and gives it a title.
    assert podcast.title == "An episode about GPUs & power."
    assert podcast.content[0].value == "<p>An episode about GPUs &amp; power.</p>"
    assert podcast.enclosures[0].href == "https://outlet-b.example/ep.mp3"
    assert podcast.enclosures[0].length == "1234"


def test_an_entry_changed_after_first_seen_gets_a_new_updated_date() -> None:
    changed = stored_entry(published=T0, first_seen_at=T0, changed_at=T0 + timedelta(days=1))
    rendered = render_atom(feed_definition(), [changed], SOURCES, SITE)
    parsed = feedparser.parse(rendered.body)
    assert parsed.entries[0].updated == "2026-11-25T12:00:00+00:00"
    assert parsed.entries[0].published == "2026-11-24T12:00:00+00:00"


def test_an_empty_feed_is_valid_and_dated_by_no_clock(
    validate_atom: Callable[[bytes], None],
) -> None:
    rendered = render_atom(feed_definition(), [], SOURCES, SITE)
    assert rendered.updated == EPOCH
    validate_atom(rendered.body)


def test_author_pages_are_republished() -> None:
    author = Author("Mei Lin", "https://outlet-a.example/people/mei")
    entry = stored_entry("lenovo", authors=(author, Author("Desk")))
    atom = etree.fromstring(render_atom(feed_definition(), [entry], SOURCES, SITE).body)
    found = [
        (a.findtext(f"{ATOM}name"), a.findtext(f"{ATOM}uri"))
        for a in atom.iterfind(f"{ATOM}entry/{ATOM}author")
    ]
    assert found == [("Mei Lin", author.url), ("Desk", None)]
    document = json.loads(render_json_feed(feed_definition(), [entry], SOURCES, SITE).body)
    assert document["items"][0]["authors"] == [
        {"name": "Mei Lin", "url": author.url},
        {"name": "Desk"},
    ]
