from __future__ import annotations

import html
import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sources import ParsedEntry, parse_document
from store.canonical import (
    DEFAULT_FILTER,
    TrackingFilter,
    _canonicalize,
    _identity_fragment,
    _simple_url,
    canonical_link,
    normalize_url,
    unwrap_link,
)
from store.identity import entry_key, entry_keys


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("HTTPS://News.Example.COM:443/a/b", "https://news.example.com/a/b"),
        ("http://news.example.com:80/a", "http://news.example.com/a"),
        ("http://news.example.com:8080/a", "http://news.example.com:8080/a"),
        ("https://news.example.com", "https://news.example.com/"),
        ("https://x.example/a#comments", "https://x.example/a"),
        ("https://x.example/a?utm_source=rss#more-12", "https://x.example/a"),
        ("https://x.example/a#:~:text=storm", "https://x.example/a"),
        (
            "http://scripting.com/2017/06/26.html#a080605",
            "http://scripting.com/2017/06/26.html#a080605",
        ),
        ("https://x.example/a?utm_source=x#p2", "https://x.example/a#p2"),
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


# -- the plain-URL fast path gives w3lib's result -----------------------------------------

_LABEL = st.from_regex(r"[a-zA-Z0-9]([a-zA-Z0-9-]{0,8}[a-zA-Z0-9])?", fullmatch=True)
_WORD = st.from_regex(r"[a-zA-Z0-9._~-]{0,8}", fullmatch=True)
_NAME = st.one_of(
    st.sampled_from(["utm_source", "UTM_Medium", "fbclid", "id", "a", "b", "ref_src", "x"]),
    st.from_regex(r"[a-zA-Z0-9._~-]{1,6}", fullmatch=True),
)
_PAIR = st.one_of(st.tuples(_NAME, _WORD).map(lambda p: f"{p[0]}={p[1]}"), _NAME, st.just(""))
PLAIN_URLS = st.builds(
    lambda scheme, labels, port, segments, slash, query, fragment: (
        f"{scheme}://{'.'.join(labels)}{port}{''.join('/' + s for s in segments)}{slash}"
        f"{query}{fragment}"
    ),
    st.sampled_from(["http", "https", "HTTP", "Https"]),
    st.lists(_LABEL, min_size=1, max_size=4),
    st.sampled_from(["", ":80", ":443", ":8080", ":1"]),
    st.lists(st.from_regex(r"[a-zA-Z0-9_~-][a-zA-Z0-9._~-]{0,8}", fullmatch=True), max_size=4),
    st.sampled_from(["", "/"]),
    st.one_of(st.just(""), st.lists(_PAIR, max_size=5).map(lambda p: "?" + "&".join(p))),
    st.sampled_from(["", "#", "#top", "#a?b=c", "#x/y"]),
)


@settings(max_examples=500, deadline=None)
@given(PLAIN_URLS)
def test_plain_urls_take_the_fast_path_and_get_w3libs_result(url: str) -> None:
    fast = _simple_url(url, DEFAULT_FILTER)
    assert fast is not None, url
    assert fast == _canonicalize(url, DEFAULT_FILTER)


def test_the_fast_path_agrees_with_w3lib_on_the_corpus_links(corpus: Path) -> None:
    links: set[str] = set()
    for path in sorted((corpus / "real").iterdir()):
        text = html.unescape(path.read_bytes().decode("utf-8", "replace"))
        links.update(re.findall(r"""https?://[^\s"'<>\]]+""", text, re.IGNORECASE))
    fast = 0
    for link in sorted(links):
        simple = _simple_url(link, DEFAULT_FILTER)
        if simple is not None:
            fast += 1
            assert simple == _canonicalize(link, DEFAULT_FILTER), link
        assert normalize_url(link) == _canonicalize(link, DEFAULT_FILTER) + _identity_fragment(link)
    assert fast > len(links) // 4, (fast, len(links))  # the fast path is really taken


@pytest.mark.parametrize(
    "url",
    [
        "https://x.example/caf%C3%A9",  # percent-escapes
        "https://x.example/a/../b",  # dot segments
        "https://user@x.example/a",  # user info
        "https://xn--caf-dma.example/",  # IDNA
        "https://x.example:65536/a",  # not a port
        "https://x.example/a?q=a+b",  # '+' is a space in a query
        "https://x.example/a?a==b",
        "https://x.example/a;p?q=1",  # path parameters
        "https://x.example//a",
    ],
)
def test_urls_that_are_not_plain_go_through_w3lib(url: str) -> None:
    assert _simple_url(url, DEFAULT_FILTER) is None
