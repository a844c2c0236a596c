from __future__ import annotations

import dataclasses
import json
from datetime import datetime
from typing import Any

import nh3
import pytest

from sources import Author, ErrorKind, ParseError, parse_document
from sources.model import ParsedFeed
from sources.text import clean_text
from tests.conftest import DATA, fixture_bytes

# Each fixture in tests/data with the URL it is served from; the expected result is the
# file beside it, NAME.expected.json.
FIXTURES = {
    "outlet-a.rss": "https://serverdesk.example/feed.rss",
    "outlet-b.atom": "https://computeweekly.example/feed.atom",
    "outlet-c.rss": "https://rackreport.example/rss",
    "outlet-d.json": "https://inference-notes.example/feed.json",
}


def as_data(feed: ParsedFeed) -> Any:
    def convert(value: Any) -> Any:
        if isinstance(value, datetime):
            return value.isoformat()
        if isinstance(value, list | tuple):
            return [convert(v) for v in value]
        if isinstance(value, dict):
            return {k: convert(v) for k, v in value.items()}
        return value

    return convert(dataclasses.asdict(feed))


@pytest.mark.parametrize("name", sorted(FIXTURES))
def test_fixture_parses_to_its_expected_result(name: str) -> None:
    parsed = parse_document(fixture_bytes(name), FIXTURES[name])
    expected = json.loads((DATA / f"{name}.expected.json").read_text(encoding="utf-8"))
    assert as_data(parsed) == expected


def test_html_is_sanitised_and_links_made_absolute() -> None:
    entry = parse_document(fixture_bytes("outlet-a.rss"), FIXTURES["outlet-a.rss"]).entries[0]
    assert entry.content is not None
    assert "<script" not in entry.content
    assert "onerror" not in entry.content
    assert 'href="https://serverdesk.example/tags/lenovo"' in entry.content
    assert 'src="https://serverdesk.example/img/tianjin.jpg"' in entry.content


def test_dates_are_utc() -> None:
    entry = parse_document(fixture_bytes("outlet-a.rss"), FIXTURES["outlet-a.rss"]).entries[0]
    assert entry.published is not None
    assert entry.published.utcoffset() is not None
    assert entry.published.isoformat() == "2026-11-24T00:15:00+00:00"  # +0800 in the feed


def test_html_title_becomes_plain_text() -> None:
    entry = parse_document(fixture_bytes("outlet-b.atom"), FIXTURES["outlet-b.atom"]).entries[0]
    assert entry.title == "Lenovo to mass-produce AI servers in Tianjin from 2027 (update)"


def test_json_feed_plain_text_content_is_escaped_and_iframes_dropped() -> None:
    feed = parse_document(fixture_bytes("outlet-d.json"), FIXTURES["outlet-d.json"])
    assert feed.version == "json11"
    assert feed.entries[0].content is not None
    assert "iframe" not in feed.entries[0].content
    assert feed.entries[1].content == "A short note without a title: &lt;b&gt; is just text here."


def test_only_http_links_are_kept() -> None:
    document = b"""<rss version="2.0"><channel><title>t</title>
      <item><title>a</title><link>javascript:alert(1)</link><guid>1</guid></item>
      <item><title>b</title><link>/relative/b</link><guid>2</guid></item>
    </channel></rss>"""
    feed = parse_document(document, "https://example.org/feed")
    assert [e.link for e in feed.entries] == [None, "https://example.org/relative/b"]


def test_an_html_page_is_not_a_feed() -> None:
    with pytest.raises(ParseError) as raised:
        parse_document(fixture_bytes("page.html"), "https://serverdesk.example/")
    assert raised.value.kind is ErrorKind.NOT_A_FEED


@pytest.mark.parametrize(
    ("document", "kind"),
    [
        (b"\x00\x01 not xml at all", ErrorKind.PARSE),
        (b"<?xml version='1.0'?><note><to>nobody</to></note>", ErrorKind.NOT_A_FEED),
        (b'{"version": "https://jsonfeed.org/version/1.1", "items": [', ErrorKind.PARSE),
        (b'{"name": "not a feed"}', ErrorKind.NOT_A_FEED),
    ],
)
def test_documents_that_are_not_feeds_are_refused(document: bytes, kind: ErrorKind) -> None:
    with pytest.raises(ParseError) as raised:
        parse_document(document, "https://example.org/feed")
    assert raised.value.kind is kind
    assert raised.value.url == "https://example.org/feed"


def test_content_links_resolve_against_xml_base_and_unsafe_schemes_go() -> None:
    document = b"""<feed xmlns="http://www.w3.org/2005/Atom" xml:base="https://blog.example/2026/">
      <title>t</title><id>urn:x</id><updated>2026-11-24T00:00:00Z</updated>
      <entry xml:base="posts/"><title>a</title><id>urn:a</id><updated>2026-11-24T00:00:00Z</updated>
        <link href="a.html"/>
        <content type="html">&lt;a href="b.html"&gt;b&lt;/a&gt;
          &lt;a href="javascript:alert(1)"&gt;x&lt;/a&gt;</content>
      </entry></feed>"""
    [entry] = parse_document(document, "https://blog.example/feed.atom").entries
    assert entry.link == "https://blog.example/2026/posts/a.html"
    assert entry.content == (
        '<a href="https://blog.example/2026/posts/b.html" rel="noopener noreferrer">b</a>\n'
        "          "
        '<a rel="noopener noreferrer">x</a>'
    )


@pytest.mark.parametrize(
    "text",
    [
        "Plain words, \"quoted\" and 'single', a = b, tabs\tand  spaces ",
        "a no-break\u00a0space",
        "a CR\r\nLF line end",
        "a NUL\x00 character",
        "a < b > c",
        "Fish &amp; chips & peas",
        "emoji \U0001f600, a form feed \x0c and a line separator \u2028",
    ],
)
def test_summaries_come_out_as_nh3_gives_them(text: str) -> None:
    """Plain text skips nh3 (it would give it back unchanged); what it would change does not.
    Characters XML forbids (the form feed) are removed before either (sources.text)."""
    feed = (
        '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>t</title>'
        "<item><guid>g</guid><description></description></item></channel></rss>"
    )
    escaped = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    document = feed.replace("<description>", f"<description>{escaped}").encode()
    [entry] = parse_document(document, "https://example.org/feed").entries
    assert entry.summary == (nh3.clean(clean_text(text)).strip() or None)


@pytest.mark.parametrize(
    ("authors", "names"),
    [
        (["alice@a.example (Alice A)"], ("Alice A",)),  # feedparser 6.0.14: "ple (Alice A"
        (["Carol &lt;carol@c.example&gt;"], ("Carol",)),
        (["frank@f.museum"], ("frank@f.museum",)),  # nothing else to call them
        (["bob@b.com (Bob B)"], ("Bob B",)),
        (["Ann (Ed.)"], ("Ann (Ed.)",)),
        (["alice@a.example (Alice A)", "dan@d.example (Dan D)"], ("Alice A", "Dan D")),
    ],
)
def test_rss_author_names_leave_the_address_out(authors: list[str], names: tuple[str]) -> None:
    creators = "".join(f"<dc:creator>{a}</dc:creator>" for a in authors)
    document = (
        '<rss version="2.0" xmlns:dc="http://purl.org/dc/elements/1.1/"><channel>'
        f"<item><title>t</title>{creators}</item></channel></rss>"
    ).encode()
    authors_found = parse_document(document, "https://x.example/").entries[0].authors
    assert tuple(a.name for a in authors_found) == names


def test_author_pages_are_kept_from_atom_and_json_feed() -> None:
    atom = (
        b'<feed xmlns="http://www.w3.org/2005/Atom"><entry><id>x</id><title>t</title>'
        b"<author><name>Alice A</name><uri>/people/alice</uri></author>"
        b"<author><name>Bob</name></author></entry></feed>"
    )
    json_feed = json.dumps(
        {
            "version": "https://jsonfeed.org/version/1.1",
            "items": [{"id": "x", "authors": [{"name": "Alice A", "url": "/people/alice"}]}],
        }
    ).encode()
    alice = Author("Alice A", "https://x.example/people/alice")
    assert parse_document(atom, "https://x.example/feed").entries[0].authors == (
        alice,
        Author("Bob"),
    )
    assert parse_document(json_feed, "https://x.example/feed.json").entries[0].authors == (alice,)
