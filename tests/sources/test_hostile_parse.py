"""Parsing hostile documents: every string cleaned, every list and field bounded, plain-text
fields plain, wrong JSON types ignored, nothing raised but ParseError."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from sources import Author, ErrorKind, ParseError, parse_document
from sources.text import (
    MAX_AUTHORS,
    MAX_CATEGORIES,
    MAX_ENCLOSURES,
    MAX_ENTRIES,
    MAX_TITLE,
    clean_text,
    plain_text,
    shorten,
    too_deep,
)

URL = "https://hostile.example/feed"
JSON_FEED = "https://jsonfeed.org/version/1.1"


def json_item(**item: object) -> bytes:
    return json.dumps({"version": JSON_FEED, "items": [{"id": "1", **item}]}).encode()


def rss(item: str, items: int = 1) -> bytes:
    body = "".join(f"<item><guid>g{n}</guid>{item}</item>" for n in range(items))
    return f'<rss version="2.0"><channel><title>t</title>{body}</channel></rss>'.encode()


@pytest.mark.parametrize(
    "item",
    [
        {"tags": 5},
        {"tags": {"a": 1}},
        {"authors": 7},
        {"authors": [7, None, {"name": 5}]},
        {"author": "a string"},
        {"attachments": 5},
        {"attachments": [{"url": 5, "size_in_bytes": "9" * 100}]},
        {"date_published": "9999-12-31T23:59:59-23:59"},
        {"date_published": "0001-01-01T00:00:00+01:00"},
        {"date_modified": 12345},
        {"title": ["a", "list"]},
        {"summary": {"an": "object"}},
        {"url": "http://[::1/x"},
        {"language": "en\u0000x"},
    ],
)
def test_json_values_of_the_wrong_type_are_ignored(item: dict[str, object]) -> None:
    [entry] = parse_document(json_item(**item), URL).entries
    assert entry.id == "1"


def test_json_numbers_too_long_for_int_and_nesting_too_deep() -> None:
    document = f'{{"version": "{JSON_FEED}", "items": [{{"id": {"9" * 5000}}}]}}'.encode()
    [entry] = parse_document(document, URL).entries
    assert entry.id is not None and entry.id.startswith("id-sha256:")
    nested = f'{{"version": "{JSON_FEED}", "items": {"[" * 100_000}{"]" * 100_000}}}'.encode()
    with pytest.raises(ParseError) as raised:
        parse_document(nested, URL)
    assert raised.value.kind is ErrorKind.TOO_COMPLEX


def test_strings_are_cleaned_of_what_xml_and_postgresql_refuse() -> None:
    document = json_item(
        title="a\ud800b\u0000c\u001b[2Jd\u007fe\u009bf\ufffeg",
        content_html="<p>x\u0000y\u000bz</p>",
        authors=[{"name": "Mal\u0000lory"}],
        tags=["t\u0007ag"],
    )
    [entry] = parse_document(document, URL).entries
    assert entry.title == "a\ufffdbc[2Jdefg"
    assert entry.content == "<p>xyz</p>"
    assert (entry.authors, entry.categories) == ((Author("Mallory"),), ("tag",))


def test_plain_text_fields_are_plain_text() -> None:
    document = rss(
        "<title>&lt;script&gt;xss()&lt;/script&gt;AT&amp;amp;T</title>"
        "<category>&lt;b&gt;bold&lt;/b&gt;</category>"
    )
    [entry] = parse_document(document, URL).entries
    assert entry.title == "xss() AT&T"
    assert entry.categories == ("bold",)
    [summary] = parse_document(json_item(summary="<script>x()</script> a &lt; b"), URL).entries
    assert summary.summary == "x() a &lt; b"  # the text "x() a < b", escaped as HTML


def test_lists_and_fields_are_capped() -> None:
    item = json_item(
        title="word " * 100_000,
        authors=[{"name": f"a{n}"} for n in range(500)],
        tags=[f"t{n}" for n in range(500)],
        attachments=[{"url": f"https://e.example/{n}.mp3"} for n in range(500)],
        url="https://e.example/" + "x" * 10_000,
    )
    [entry] = parse_document(item, URL).entries
    assert entry.title is not None and len(entry.title) <= MAX_TITLE
    assert entry.title.endswith("\u2026")
    assert len(entry.authors) == MAX_AUTHORS
    assert len(entry.categories) == MAX_CATEGORIES
    assert len(entry.enclosures) == MAX_ENCLOSURES
    assert entry.link is None  # longer than MAX_URL
    many = parse_document(rss("<title>x</title>", items=MAX_ENTRIES + 5), URL)
    assert len(many.entries) == MAX_ENTRIES


def test_many_categories_cost_linear_time() -> None:
    """feedparser compared each category with all earlier ones; it stops at a bound now. The
    check is a ratio of two runs in this test, not a time limit."""

    def seconds(count: int) -> float:
        document = rss("".join(f"<category>c{n}</category>" for n in range(count)))
        start = time.perf_counter()
        [entry] = parse_document(document, URL).entries
        assert len(entry.categories) == MAX_CATEGORIES
        return time.perf_counter() - start

    small, large = min(seconds(2_000) for _ in range(3)), min(seconds(16_000) for _ in range(3))
    assert large / small < 20  # 8 times the input: 64 times the time when quadratic


def test_deeply_nested_markup_is_kept_as_text() -> None:
    document = rss("<description>" + "&lt;div&gt;" * 10_000 + "deep text</description>")
    [entry] = parse_document(document, URL).entries
    assert entry.summary == "deep text"
    document = rss("<description>" + "&lt;div&gt;" * 30_000 + "deep text</description>")
    [entry] = parse_document(document, URL).entries
    assert entry.summary is None  # past the summary limit: nothing but tags was read
    assert too_deep("<div>" * 5_000) and not too_deep("<p>a</p>" * 5_000)


def test_text_helpers() -> None:
    assert clean_text("ok\tline\nend\r") == "ok\tline\nend\r"
    assert clean_text("\x00\x08\x0b\x0c\x1f\x7f\x85\x9f\ud800\ufffe\uffff") == "\ufffd"
    assert plain_text("  <b>a</b>&amp;&lt;i&gt;  \n b ") == "a &<i> b"
    assert plain_text(5) is None and plain_text("<br>") is None
    assert shorten("one two three", 9) == "one two\u2026"


def test_entities_are_not_expanded_nor_files_read(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP SECRET", encoding="utf-8")
    laughs = "".join(f'<!ENTITY l{n} "{f"&l{n - 1};" * 10 if n else "lol"}">' for n in range(10))
    document = (
        f'<?xml version="1.0"?><!DOCTYPE rss [{laughs}'
        f'<!ENTITY xxe SYSTEM "file://{secret}">]>'
        '<rss version="2.0"><channel><title>t</title><item><guid>g</guid>'
        "<title>&l9;</title><description>&xxe;</description></item></channel></rss>"
    ).encode()
    feed = parse_document(document, URL)
    for entry in feed.entries:
        for value in (entry.title, entry.summary, entry.content):
            assert "TOP SECRET" not in (value or "")
            assert len(value or "") < 1000
