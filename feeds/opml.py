"""OPML 2.0: the upstream sources and the curated feeds as subscription lists, and reading
an OPML file's feeds (``feedmill import-opml``)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from lxml import etree

from feeds.clean import MAX_TITLE, clean_definition, plain_text, web_link, xml_text
from feeds.errors import FeedsError
from feeds.model import FeedDefinition, Site
from store.model import StoredSource

OPML_MEDIA_TYPE = "text/x-opml; charset=utf-8"


class OpmlError(FeedsError):
    """An OPML file cannot be read."""


@dataclass(frozen=True, slots=True)
class OpmlFeed:
    """One feed outline of an OPML file; ``folders`` are the titles of enclosing outlines."""

    url: str
    title: str | None
    html_url: str | None
    folders: tuple[str, ...] = ()


def render_sources_opml(site: Site, sources: Sequence[StoredSource]) -> bytes:
    body = _document(f"{site.title}: sources")
    for source in sources:
        title = plain_text(source.display_title, MAX_TITLE) or source.id
        attributes = {"type": "rss", "text": title, "title": title}
        attributes["xmlUrl"] = xml_text(source.url)
        html_url = web_link(source.feed_link)
        if html_url:
            attributes["htmlUrl"] = html_url
        etree.SubElement(body, "outline", attributes)
    return _serialise(body)


def render_feeds_opml(site: Site, feeds: Sequence[FeedDefinition]) -> bytes:
    body = _document(f"{site.title}: curated feeds")
    for feed in map(clean_definition, feeds):
        attributes = {"type": "rss", "text": feed.title, "title": feed.title}
        attributes["xmlUrl"] = site.feed_url(feed.id)
        attributes["htmlUrl"] = site.base_url
        if feed.subtitle:
            attributes["description"] = feed.subtitle
        etree.SubElement(body, "outline", attributes)
    return _serialise(body)


def _document(title: str) -> etree._Element:
    opml = etree.Element("opml", version="2.0")
    head = etree.SubElement(opml, "head")
    etree.SubElement(head, "title").text = xml_text(title)
    return etree.SubElement(opml, "body")


def _serialise(body: etree._Element) -> bytes:
    root = body.getparent()
    assert root is not None
    document: bytes = etree.tostring(
        root, xml_declaration=True, encoding="UTF-8", pretty_print=True
    )
    return document


def read_opml(content: bytes) -> list[OpmlFeed]:
    """Every outline with an ``xmlUrl``, in document order (no entities, no network)."""
    parser = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False)
    try:
        root = etree.fromstring(content, parser)
    except etree.XMLSyntaxError as exc:
        raise OpmlError(f"not well-formed XML: {exc}") from exc
    if root.tag != "opml" or root.find("body") is None:
        raise OpmlError("not an OPML document: no <opml> with a <body>")
    return list(_outlines(root.find("body"), ()))


def _outlines(parent: etree._Element | None, folders: tuple[str, ...]) -> Iterator[OpmlFeed]:
    if parent is None:
        return
    for outline in parent.iterfind("outline"):
        title = outline.get("title") or outline.get("text")
        url = (outline.get("xmlUrl") or outline.get("xmlurl") or "").strip()
        if url:
            yield OpmlFeed(url, title, outline.get("htmlUrl"), folders)
        yield from _outlines(outline, (*folders, title) if title and not url else folders)
