"""Render a curated feed as RSS 2.0 or JSON Feed 1.1, from the same values as the Atom one.

Deterministic like feeds.render: dates come from the entries and the caller, entries keep
their order, ids are the Atom ids (``urn:uuid:...``; in RSS a ``guid`` with
``isPermaLink="false"``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from email.utils import format_datetime
from typing import Any

from lxml import etree

from feeds.clean import clean_context, plain_text
from feeds.model import FORMATS, FeedDefinition, PageLinks, RenderedFeed, Site, SourceInfo
from feeds.render import (
    Credit,
    _fallback_title,
    _version,
    entry_id,
    entry_updated,
    feed_updated,
    first_page_links,
    present_entries,
)
from feeds.rules import html_text
from feeds.stories import ShownStory
from store.model import StoredEntry

ATOM_NS = "http://www.w3.org/2005/Atom"
CONTENT_NS = "http://purl.org/rss/1.0/modules/content/"
DC_NS = "http://purl.org/dc/elements/1.1/"
JSON_FEED_VERSION = "https://jsonfeed.org/version/1.1"


def render_rss(
    definition: FeedDefinition,
    entries: Sequence[StoredEntry],
    sources: Mapping[str, SourceInfo],
    site: Site,
    links: PageLinks | None = None,
    stories: Mapping[str, ShownStory] | None = None,
    *,
    updated: datetime | None = None,
) -> RenderedFeed:
    definition, sources, site = clean_context(definition, sources, site)
    links = links or first_page_links(site, definition.id, "rss")
    presented = [e for e, _ in present_entries(entries, stories, sources)]
    if updated is None:
        updated = feed_updated(presented)
    nsmap = {"atom": ATOM_NS, "content": CONTENT_NS, "dc": DC_NS}
    rss = etree.Element("rss", version="2.0", nsmap=nsmap)
    channel = etree.SubElement(rss, "channel")
    _text(channel, "title", definition.title)
    _text(channel, "link", site.base_url)
    _text(channel, "description", definition.subtitle or definition.title)
    for rel, href in _channel_links(links):
        attributes = {"rel": rel, "href": href}
        if rel != "hub":
            attributes["type"] = "application/rss+xml"
        etree.SubElement(channel, f"{{{ATOM_NS}}}link", attributes)
    _text(channel, "generator", f"feedmill {_version()}")
    _text(channel, "lastBuildDate", format_datetime(updated, usegmt=True))
    for entry in presented:
        _rss_item(etree.SubElement(channel, "item"), entry, sources.get(entry.source_id))
    body = etree.tostring(rss, xml_declaration=True, encoding="UTF-8", pretty_print=True)
    return RenderedFeed(body=body, media_type=FORMATS["rss"], updated=updated)


def _channel_links(links: PageLinks) -> list[tuple[str, str]]:
    found = [("self", links.self_url)]
    if links.self_url != links.first_url:
        found.append(("first", links.first_url))
    if links.next_url:
        found.append(("next", links.next_url))
    if links.hub:
        found.append(("hub", links.hub))
    return found


def _rss_item(item: etree._Element, entry: StoredEntry, source: SourceInfo | None) -> None:
    _text(item, "title", entry.title or _fallback_title(entry))
    if entry.link:
        _text(item, "link", entry.link)
    description = entry.summary or entry.content
    if description:
        _text(item, "description", description)
    if entry.content:
        _text(item, f"{{{CONTENT_NS}}}encoded", entry.content)
    for author in entry.authors:
        _text(item, f"{{{DC_NS}}}creator", author.name)
    for term in entry.categories:
        _text(item, "category", term)
    if entry.enclosures:  # RSS 2.0 allows one enclosure per item
        enclosure = entry.enclosures[0]
        etree.SubElement(
            item,
            "enclosure",
            url=enclosure.url,
            length=str(enclosure.length or 0),
            type=enclosure.type or "application/octet-stream",
        )
    guid = _text(item, "guid", entry_id(entry))
    guid.set("isPermaLink", "false")
    _text(item, "pubDate", format_datetime(entry.published or entry_updated(entry), usegmt=True))
    if source is not None:
        _text(item, "source", source.title).set("url", source.url)


def _text(parent: etree._Element, tag: str, text: str) -> etree._Element:
    element = etree.SubElement(parent, tag)
    element.text = text
    return element


def render_json_feed(
    definition: FeedDefinition,
    entries: Sequence[StoredEntry],
    sources: Mapping[str, SourceInfo],
    site: Site,
    links: PageLinks | None = None,
    stories: Mapping[str, ShownStory] | None = None,
    *,
    updated: datetime | None = None,
) -> RenderedFeed:
    """JSON Feed has no date of its own: ``updated`` only goes to the RenderedFeed."""
    definition, sources, site = clean_context(definition, sources, site)
    links = links or first_page_links(site, definition.id, "json")
    presented = present_entries(entries, stories, sources)
    document: dict[str, Any] = {
        "version": JSON_FEED_VERSION,
        "title": definition.title,
        "home_page_url": site.base_url,
        "feed_url": links.self_url,
        "authors": [{"name": site.title, "url": site.base_url}],
    }
    if definition.subtitle:
        document["description"] = definition.subtitle
    if links.next_url:
        document["next_url"] = links.next_url
    if links.hub:
        document["hubs"] = [{"type": "WebSub", "url": links.hub}]
    document["items"] = [
        _json_item(e, sources.get(e.source_id), credits) for e, credits in presented
    ]
    body = json.dumps(document, ensure_ascii=False, indent=2).encode("utf-8") + b"\n"
    if updated is None:
        updated = feed_updated([e for e, _ in presented])
    return RenderedFeed(body=body, media_type=FORMATS["json"], updated=updated)


def _json_item(
    entry: StoredEntry, source: SourceInfo | None, credits: Sequence[Credit] = ()
) -> dict[str, Any]:
    item: dict[str, Any] = {"id": entry_id(entry)}
    if entry.link:
        item["url"] = entry.link
    item["title"] = entry.title or _fallback_title(entry)
    body = entry.content or entry.summary
    if body:
        item["content_html"] = body
    else:
        item["content_text"] = item["title"]
    if entry.summary and entry.content and entry.summary != entry.content:
        item["summary"] = plain_text(html_text(entry.summary))
    if entry.published:
        item["date_published"] = entry.published.isoformat()
    item["date_modified"] = entry_updated(entry).isoformat()
    if entry.authors:
        item["authors"] = [
            {"name": a.name, **({"url": a.url} if a.url else {})} for a in entry.authors
        ]
    if entry.categories:
        item["tags"] = list(entry.categories)
    if entry.language:
        item["language"] = entry.language
    if entry.enclosures:
        item["attachments"] = [_attachment(e.url, e.type, e.length) for e in entry.enclosures]
    if source is not None:
        item["_source"] = {"title": source.title, "url": source.link or source.url}
    if credits:  # the other outlets' copies of the story (dedupe)
        item["_feedmill"] = {
            "related": [{"title": c.title, "url": c.link} for c in credits if c.link]
        }
    return item


def _attachment(url: str, mime_type: str | None, length: int | None) -> dict[str, Any]:
    attachment: dict[str, Any] = {"url": url, "mime_type": mime_type or "application/octet-stream"}
    if length is not None:
        attachment["size_in_bytes"] = length
    return attachment
