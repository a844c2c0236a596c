from __future__ import annotations

import pytest

from sources import ParsedEntry, parse_document
from store.canonical import TrackingFilter, canonical_link, normalize_url, unwrap_link
from store.identity import entry_key, entry_keys


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("HTTPS://News.Example.COM:443/a/b", "https://news.example.com/a/b"),
        ("http://news.example.com:80/a", "http://news.example.com/a"),
        ("http://news.example.com:8080/a", "http://news.example.com:8080/a"),
        ("https://news.example.com", "https://news.example.com/"),
        ("https://x.example/a#comments", "https://x.example/a"),
        ("https://x.example/a?b=2&a=1", "https://x.example/a?a=1&b=2"),
        (
            "https://x.example/a?utm_source=rss&utm_medium=feed&id=7&fbclid=abc&gclid=1"
            "&mc_cid=2&mc_eid=3",
            "https://x.example/a?id=7",
        ),
        ("https://x.example/caf%c3%a9?q=a b", "https://x.example/caf%C3%A9?q=a+b"),
        ("ftp://x.example/a", "ftp://x.example/a"),
    ],
)
def test_normalize_url(url: str, expected: str) -> None:
    assert normalize_url(url) == expected


def test_the_tracking_list_is_configurable() -> None:
    only_ref = TrackingFilter(["ref", "pk_*"])
    url = "https://x.example/a?ref=home&pk_campaign=x&utm_source=y"
    assert normalize_url(url, only_ref) == "https://x.example/a?utm_source=y"


def test_feedproxy_links_are_unwrapped_when_the_document_has_the_real_url() -> None:
    proxied = "http://feedproxy.google.com/~r/outlet/~3/XyZ/story"
    with_origin = ParsedEntry(id=None, link=proxied, title="t", origin_link="https://o.example/s")
    assert unwrap_link(with_origin) == "https://o.example/s"
    guid_is_url = ParsedEntry(
        id="https://o.example/s?utm_source=feedburner", link=proxied, title="t"
    )
    assert canonical_link(guid_is_url) == "https://o.example/s"
    nothing_else = ParsedEntry(id="tag:o.example,2026:1", link=proxied, title="t")
    assert unwrap_link(nothing_else) == proxied


def test_feedburner_orig_link_is_read_from_the_document() -> None:
    document = b"""<rss version="2.0" xmlns:feedburner="http://rssnamespace.org/feedburner/ext/1.0">
    <channel><title>o</title><link>https://o.example/</link>
    <item><title>s</title><link>http://feeds.feedburner.com/~r/o/~3/1/s</link>
    <feedburner:origLink>https://o.example/s?utm_source=feedburner</feedburner:origLink></item>
    </channel></rss>"""
    [entry] = parse_document(document, "https://feeds.feedburner.com/o").entries
    assert entry.origin_link == "https://o.example/s?utm_source=feedburner"
    assert entry_key(entry) == "https://o.example/s"


def test_without_a_guid_the_key_is_the_canonical_link() -> None:
    a = ParsedEntry(id=None, link="https://X.example/a?utm_source=rss#top", title="one")
    b = ParsedEntry(id=None, link="https://x.example:443/a", title="one, edited")
    assert entry_key(a) == entry_key(b) == "https://x.example/a"


def test_repeated_guids_are_told_apart_by_canonical_link_then_position() -> None:
    twins = [
        ParsedEntry(id="g", link="https://x.example/1", title="a"),
        ParsedEntry(id="g", link="https://x.example/2?utm_medium=x", title="b"),
        ParsedEntry(id="g", link="https://x.example/2", title="c"),
    ]
    assert entry_keys(twins) == ["g", "g https://x.example/2", "g https://x.example/2 #2"]
