"""Property: whatever document an upstream serves, fetch -> parse -> store -> render never
raises, and the three formats always come out valid.

Hypothesis generates feed documents (RSS 2.0, RSS 1.0, Atom, JSON Feed) with random
structure, field values (control characters, lone surrogates, markup, huge and empty
strings), dates (valid, out of range, garbage), character encodings and declarations (right
and wrong), and response headers (content type, compression, validators). Each is served by
the loopback upstream and pulled by the real Puller into a real store (SQLite and
PostgreSQL); then every format of the curated feed is rendered: the Atom must pass the RFC
4287 schema, the RSS must be well-formed XML, the JSON must parse, no stored string may hold a
character XML forbids, and no pull may end in an ``internal`` error (the guard's kind for an
unexpected exception).

The default run tries a few dozen examples per database, the same ones every time
(derandomized); ``make fuzz`` (FEEDMILL_FUZZ=1) tries thousands of new ones.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import os
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from xml.sax.saxutils import escape, quoteattr

import brotli
import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree

from feedmill.pull import Puller
from feeds.model import FeedDefinition, Site
from feeds.publish import Publisher
from sources import AddressPolicy, FetchSettings, make_client
from store import SourceDefinition, Store, ensure_schema
from tests.conftest import FakeClock
from tests.postgres import database_url
from tests.upstream import Upstream

FUZZ = os.environ.get("FEEDMILL_FUZZ", "") not in ("", "0")
EXAMPLES = 2_000 if FUZZ else 30
SETTINGS = FetchSettings(
    deadline=10, max_body_bytes=2 * 1024 * 1024, addresses=AddressPolicy(block_private=False)
)
SITE = Site("http://feeds.example/")
ILLEGAL = {*range(0x00, 0x09), 0x0B, 0x0C, *range(0x0E, 0x20), 0xFFFE, 0xFFFF}
ILLEGAL |= set(range(0xD800, 0xE000))

# -- documents ---------------------------------------------------------------------------------

hostile_chars = st.sampled_from(
    ["\x00", "\x01", "\x0b", "\x1b[2J", "\x7f", "\x85", "\x9b", "\ud800", "\udfff", "\ufffe",
     "\u2028", "\u202e", "&", "<", ">", "]]>", "&amp;", "&lt;b&gt;", "<script>x()</script>",
     "<b>", "</div>", "&#0;", "&#x1b;", "&nbsp;", "\r\n", "\t", "😀", "é"]
)  # fmt: skip
text = st.one_of(
    st.text(max_size=40),
    st.lists(st.one_of(hostile_chars, st.text(max_size=8)), max_size=12).map("".join),
    st.sampled_from(["", " ", "x" * 5000, "<div>" * 300 + "deep"]),
)
dates = st.one_of(
    st.datetimes().map(lambda d: d.isoformat()),
    st.datetimes().map(lambda d: d.strftime("%a, %d %b %Y %H:%M:%S +0000")),
    st.sampled_from(
        [
            "9999-12-31T23:59:59-23:59",
            "0001-01-01T00:00:00+01:00",
            "yesterday",
            "",
            "2026-02-30T00:00:00Z",
            "Tue, 99 Foo 2026 99:99:99 GMT",
            "1e400",
            "-1",
        ]
    ),
    text,
)
urls = st.one_of(
    st.sampled_from(
        [
            "https://e.example/a",
            "/relative",
            "javascript:alert(1)",
            "http://[::1",
            "mailto:x@y",
            "https://e.example/" + "x" * 5000,
            "http://u:p@e.example/",
            "",
            " https://e.example/s ",
        ]
    ),
    text,
)


@dataclass(frozen=True)
class Entry:
    id: str | None
    title: str | None
    link: str | None
    summary: str | None
    content: str | None
    date: str | None
    author: str | None
    categories: tuple[str, ...]
    enclosure: str | None


entries = st.builds(
    Entry,
    id=st.none() | text,
    title=st.none() | text,
    link=st.none() | urls,
    summary=st.none() | text,
    content=st.none() | text,
    date=st.none() | dates,
    author=st.none() | text,
    categories=st.lists(text, max_size=4).map(tuple),
    enclosure=st.none() | urls,
)


def xml_text(value: str, raw: bool) -> str:
    """Escaped, or (sometimes) raw: markup, stray ``&`` and all, as broken feeds send it."""
    if raw:
        return value
    return escape(value.encode("utf-8", "replace").decode("utf-8"))


def attribute(value: str) -> str:
    return quoteattr(value.encode("utf-8", "replace").decode("utf-8"))


def element(name: str, value: str | None, raw: bool) -> str:
    return "" if value is None else f"<{name}>{xml_text(value, raw)}</{name}>"


def rss_item(e: Entry, raw: bool) -> str:
    enclosure = (
        f"<enclosure url={attribute(e.enclosure)} length='9' type='x'/>" if e.enclosure else ""
    )
    return (
        "<item>"
        + element("guid", e.id, raw)
        + element("title", e.title, raw)
        + element("link", e.link, raw)
        + element("description", e.summary, raw)
        + element("content:encoded", e.content, raw)
        + element("pubDate", e.date, raw)
        + element("author", e.author, raw)
        + "".join(element("category", c, raw) for c in e.categories)
        + enclosure
        + "</item>"
    )


def atom_entry(e: Entry, raw: bool) -> str:
    link = f"<link href={attribute(e.link)}/>" if e.link is not None else ""
    content = f"<content type='html'>{xml_text(e.content, raw)}</content>" if e.content else ""
    return (
        "<entry>"
        + element("id", e.id, raw)
        + element("title", e.title, raw)
        + link
        + element("summary", e.summary, raw)
        + content
        + element("updated", e.date, raw)
        + (f"<author>{element('name', e.author, raw)}</author>" if e.author else "")
        + "".join(f"<category term={attribute(c)}/>" for c in e.categories)
        + "</entry>"
    )


def xml_document(kind: str, title: str, items: list[Entry], raw: bool, declared: str) -> str:
    head = f'<?xml version="1.0" encoding="{declared}"?>' if declared else ""
    if kind == "atom":
        body = "".join(atom_entry(e, raw) for e in items)
        atom = '<feed xmlns="http://www.w3.org/2005/Atom">'
        return f"{head}{atom}<title>{xml_text(title, raw)}</title>{body}</feed>"
    if kind == "rss10":
        body = "".join(rss_item(e, raw).replace("<item>", "<item rdf:about='x'>") for e in items)
        return (
            f'{head}<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#" '
            f'xmlns="http://purl.org/rss/1.0/" xmlns:content="http://purl.org/rss/1.0/modules/content/">'
            f"<channel><title>{xml_text(title, raw)}</title></channel>{body}</rdf:RDF>"
        )
    body = "".join(rss_item(e, raw) for e in items)
    return (
        f'{head}<rss version="2.0" xmlns:content="http://purl.org/rss/1.0/modules/content/">'
        f"<channel><title>{xml_text(title, raw)}</title><link>https://e.example/</link>"
        f"{body}</channel></rss>"
    )


def json_document(title: str, items: list[Entry], oddities: dict[str, object]) -> str:
    def item(e: Entry) -> dict[str, object]:
        found: dict[str, object] = {
            "id": e.id,
            "title": e.title,
            "url": e.link,
            "summary": e.summary,
            "content_html": e.content,
            "date_published": e.date,
            "authors": [{"name": e.author}] if e.author else None,
            "tags": list(e.categories),
            "attachments": [{"url": e.enclosure, "mime_type": e.title}] if e.enclosure else None,
        }
        return {key: value for key, value in {**found, **oddities}.items() if value is not None}

    document = {
        "version": "https://jsonfeed.org/version/1.1",
        "title": title,
        "items": [item(e) for e in items],
    }
    return json.dumps(document)


@dataclass(frozen=True)
class Response:
    body: bytes
    content_type: str | None
    headers: dict[str, str]


@st.composite
def responses(draw: st.DrawFn) -> Response:
    kind = draw(st.sampled_from(["rss20", "rss10", "atom", "json"]))
    items = draw(st.lists(entries, max_size=5))
    title = draw(text)
    if kind == "json":
        oddities = draw(
            st.dictionaries(
                st.sampled_from(["tags", "authors", "attachments", "id", "title", "language"]),
                st.one_of(st.integers(), st.text(max_size=5), st.none(), st.just({"a": [1]})),
                max_size=2,
            )
        )
        document = json_document(title, items, oddities)
        encoding = draw(st.sampled_from(["utf-8", "utf-8-sig"]))
    else:
        raw = draw(st.booleans())
        declared = draw(st.sampled_from(["", "utf-8", "iso-8859-1", "utf-16", "windows-1252"]))
        document = xml_document(kind, title, items, raw, declared)
        encoding = draw(st.sampled_from(["utf-8", "iso-8859-1", "utf-16", "utf-8-sig"]))
    body = document.encode(encoding, "surrogatepass" if "utf-8" in encoding else "replace")
    content_type = draw(
        st.sampled_from(
            [
                None,
                "application/rss+xml",
                "application/atom+xml",
                "text/xml; charset=iso-8859-1",
                "application/json",
                "application/feed+json; charset=utf-16",
                "text/html",
                "x/y; =",
            ]
        )
    )
    encoding_header = draw(st.sampled_from([None, "gzip", "deflate", "br", "gzip, br"]))
    headers = {}
    if encoding_header:
        headers["Content-Encoding"] = encoding_header
        for name in reversed([n.strip() for n in encoding_header.split(",")][::-1]):
            body = {"gzip": gzip.compress, "deflate": zlib.compress, "br": brotli.compress}[name](
                body
            )
    validator = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=30)
    if draw(st.booleans()):
        headers["ETag"] = draw(validator)
    if draw(st.booleans()):
        headers["Last-Modified"] = draw(st.one_of(validator, dates.filter(str.isascii)))
    if draw(st.booleans()):
        headers["Cache-Control"] = draw(validator)
    return Response(body, content_type, headers)


COMPRESS: dict[str, Callable[[bytes], bytes]] = {
    "gzip": gzip.compress,
    "deflate": zlib.compress,
    "br": brotli.compress,
}

# -- the pipeline ---------------------------------------------------------------------------------


class Pipeline:
    """One store; each example is a new source (with its own upstream route), pulled once,
    and a curated feed of it rendered in every format."""

    def __init__(self, store: Store, upstream: Upstream, client: httpx.AsyncClient) -> None:
        self.store = store
        self.upstream = upstream
        self.client = client
        self.clock = FakeClock()
        self.examples = 0

    @classmethod
    async def open(cls, db_url: str, upstream: Upstream) -> Pipeline:
        store = Store.open(db_url)
        await ensure_schema(store)
        return cls(store, upstream, make_client(SETTINGS))

    async def close(self) -> None:
        await self.client.aclose()
        await self.store.close()

    async def pull_and_render(
        self, response: Response, validate_atom: Callable[[bytes], None]
    ) -> None:
        self.examples += 1
        source_id = f"s{self.examples}"
        url = self.upstream.add(
            f"/{source_id}",
            response.body,
            content_type=response.content_type,
            headers=response.headers,
        )
        source = SourceDefinition(source_id, url, None, timedelta(hours=1))
        await self.store.sync_sources([source], self.clock())
        puller = Puller(self.store, self.client, SETTINGS, self.clock)
        result = await puller.pull_source(await self.store.get_source(source_id))
        assert result.error is None or result.error.kind.value != "internal", result.error
        for page in [p async for p in self.store.newest_entries([source_id])]:
            for entry in page:
                texts = [entry.title, entry.summary, entry.content, entry.link, entry.language]
                for value in filter(
                    None, [*texts, *(a.name for a in entry.authors), *entry.categories]
                ):
                    assert not ILLEGAL & {ord(c) for c in value}, repr(value)
        feed = FeedDefinition("everything", "Everything", (source_id,), limit=200)
        publisher = Publisher(self.store, [feed], SITE, clock=self.clock, recheck=0)
        validate_atom((await publisher.render(feed.id, "atom")).body)
        etree.fromstring((await publisher.render(feed.id, "rss")).body)
        document = json.loads((await publisher.render(feed.id, "json")).body)
        assert all(isinstance(item, dict) for item in document["items"])


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    with database_url(request.param, tmp_path) as url:
        yield url


def test_any_document_is_pulled_stored_and_rendered_valid(
    database: str, validate_atom: Callable[[bytes], None]
) -> None:
    with Upstream() as upstream, asyncio.Runner() as runner:
        pipeline = runner.run(Pipeline.open(database, upstream))
        try:

            @settings(
                max_examples=EXAMPLES,
                deadline=None,
                derandomize=not FUZZ,
                database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
            )
            @given(response=responses())
            def pull_and_render(response: Response) -> None:
                runner.run(pipeline.pull_and_render(response, validate_atom))

            pull_and_render()
        finally:
            runner.run(pipeline.close())
