"""Render a curated feed as Atom 1.0 (RFC 4287) with feedgen.

Deterministic: the same entries give the same bytes. The feed's ``updated`` is given by the
caller (the publisher passes the stored time the document last changed; never the clock),
else the newest entry's; entries keep the order given, and entry ids are the stored ``uid``
as a URN, so a reader never sees one entry twice.
"""

from __future__ import annotations

import dataclasses
import html
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata

from feedgen.entry import FeedEntry
from feedgen.ext.base import BaseEntryExtension
from feedgen.feed import FeedGenerator
from lxml import etree

from feeds.clean import clean_context, clean_entry, plain_text, web_link
from feeds.model import FeedDefinition, PageLinks, RenderedFeed, Site, SourceInfo
from feeds.stories import ShownStory
from store.model import StoredEntry

ATOM_MEDIA_TYPE = "application/atom+xml; charset=utf-8"
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_TAG = re.compile(r"<[^>]*>")


def entry_id(entry: StoredEntry) -> str:
    """The public, permanent id of a stored entry."""
    hex_uid = entry.uid
    return (
        f"urn:uuid:{hex_uid[:8]}-{hex_uid[8:12]}-{hex_uid[12:16]}-{hex_uid[16:20]}-{hex_uid[20:]}"
    )


def entry_updated(entry: StoredEntry) -> datetime:
    """When the entry last changed: its own date, or when we saw its content change."""
    own = entry.updated or entry.published or entry.first_seen_at
    return max(own, entry.changed_at) if entry.changed_at > entry.first_seen_at else own


def feed_updated(entries: Sequence[StoredEntry]) -> datetime:
    return max((entry_updated(e) for e in entries), default=EPOCH)


@dataclass(frozen=True, slots=True)
class Credit:
    """Another outlet's entry of the same story, credited by the one shown."""

    title: str
    link: str | None
    uid: str


def present_entry(
    entry: StoredEntry, shown: ShownStory | None, sources: Mapping[str, SourceInfo]
) -> tuple[StoredEntry, tuple[Credit, ...]]:
    """The entry as a feed with ``dedupe`` shows it: under the story's id, updated when a copy
    last joined, with "Also reported by: ..." appended to its text. Without one, the entry as
    it is, made safe to render (feeds.clean) either way."""
    entry = clean_entry(entry)
    if shown is None:
        return entry, ()
    credits = tuple(
        Credit(_source_title(m.source_id, sources), web_link(m.link), m.uid) for m in shown.others
    )
    updated = entry_updated(entry)
    if shown.latest is not None and shown.latest > updated:
        updated = shown.latest
    changes: dict[str, object] = {"uid": shown.id, "updated": updated}
    note = credits_html(credits)
    if note and entry.content:
        changes["content"] = entry.content + note
        if entry.summary == entry.content:
            changes["summary"] = changes["content"]
    elif note and entry.summary:
        changes["summary"] = entry.summary + note
    elif note:
        changes["content"] = note
    return dataclasses.replace(entry, **changes), credits  # type: ignore[arg-type]


def present_entries(
    entries: Sequence[StoredEntry],
    stories: Mapping[str, ShownStory] | None,
    sources: Mapping[str, SourceInfo],
) -> list[tuple[StoredEntry, tuple[Credit, ...]]]:
    return [present_entry(e, (stories or {}).get(e.uid), sources) for e in entries]


def credits_html(credits: Sequence[Credit]) -> str:
    if not credits:
        return ""
    names = [
        f'<a href="{html.escape(c.link)}">{html.escape(c.title)}</a>'
        if c.link
        else html.escape(c.title)
        for c in credits
    ]
    return f'<p class="feedmill-credits">Also reported by: {", ".join(names)}</p>'


def _source_title(source_id: str, sources: Mapping[str, SourceInfo]) -> str:
    info = sources.get(source_id)
    return info.title if info is not None else source_id


def render_atom(
    definition: FeedDefinition,
    entries: Sequence[StoredEntry],
    sources: Mapping[str, SourceInfo],
    site: Site,
    links: PageLinks | None = None,
    stories: Mapping[str, ShownStory] | None = None,
    *,
    updated: datetime | None = None,
) -> RenderedFeed:
    """``links`` places the document among its pages (RFC 5005) and names the WebSub hub;
    without it the document is the feed's first page with no next page and no hub.
    ``stories`` (feeds with ``dedupe``): how each entry is shown, by uid. ``updated``: when
    the document last changed (feeds.publish stores it); by default the newest entry's."""
    definition, sources, site = clean_context(definition, sources, site)
    presented = present_entries(entries, stories, sources)
    if updated is None:
        updated = feed_updated([e for e, _ in presented])
    generator = _feed_generator(definition, site, updated)
    _add_page_links(generator, links or first_page_links(site, definition.id, "atom"))
    for entry, credits in presented:
        item = generator.add_entry(order="append")
        _add_entry(item, entry, sources.get(entry.source_id), credits)
    body: bytes = generator.atom_str(pretty=True)
    return RenderedFeed(body=body, media_type=ATOM_MEDIA_TYPE, updated=updated)


def first_page_links(site: Site, feed_id: str, extension: str) -> PageLinks:
    url = site.feed_url(feed_id, extension)
    return PageLinks(self_url=url, first_url=url)


def _add_page_links(generator: FeedGenerator, links: PageLinks) -> None:
    generator.link(href=links.self_url, rel="self", type="application/atom+xml")
    if links.self_url != links.first_url:
        generator.link(href=links.first_url, rel="first", type="application/atom+xml")
    if links.next_url:
        generator.link(href=links.next_url, rel="next", type="application/atom+xml")
    if links.hub:
        generator.link(href=links.hub, rel="hub")


def _feed_generator(definition: FeedDefinition, site: Site, updated: datetime) -> FeedGenerator:
    generator = FeedGenerator()
    generator.id(f"{site.base_url}feeds/{definition.id}")
    generator.title(definition.title)
    if definition.subtitle:
        generator.subtitle(definition.subtitle)
    generator.link(href=site.base_url, rel="alternate", type="text/html")
    generator.author({"name": site.title, "uri": site.base_url})
    generator.generator("feedmill", version=_version())
    generator.updated(updated)
    return generator


class _EntryLinks(BaseEntryExtension):  # type: ignore[misc]
    """Writes an entry's ``atom:link`` elements itself.

    feedgen 1.0.0 drops rel, type and length from entry links in Atom output (its loop
    rebinds the name holding the link's data), so an enclosure would read as the entry's
    alternate link. This replaces feedgen's link elements with complete ones, in place.
    """

    links: list[dict[str, str]]

    def extend_atom(self, entry: etree._Element) -> etree._Element:
        old = entry.findall("link")
        position = list(entry).index(old[0]) if old else len(entry)
        for element in old:
            entry.remove(element)
        for offset, attributes in enumerate(self.links):
            link = etree.Element("link", attributes)
            entry.insert(position + offset, link)
        return entry


def _links(entry: StoredEntry) -> list[dict[str, str]]:
    links = []
    if entry.link:
        links.append({"href": entry.link, "rel": "alternate", "type": "text/html"})
    for enclosure in entry.enclosures:
        attributes = {"href": enclosure.url, "rel": "enclosure"}
        if enclosure.type:
            attributes["type"] = enclosure.type
        if enclosure.length is not None:
            attributes["length"] = str(enclosure.length)
        links.append(attributes)
    return links


def _add_entry(
    item: FeedEntry,
    entry: StoredEntry,
    source: SourceInfo | None,
    credits: Sequence[Credit] = (),
) -> None:
    item.id(entry_id(entry))
    item.title(entry.title or _fallback_title(entry))
    item.updated(entry_updated(entry))
    if entry.published:
        item.published(entry.published)
    links = _links(entry) + _related(entry, credits)
    if links:
        item.link(links)  # feedgen checks them; _EntryLinks writes them
    item.register_extension("feedmill_links", _EntryLinks, atom=True, rss=False)
    item.feedmill_links.links = links
    for author in entry.authors:
        item.author({"name": author.name, **({"uri": author.url} if author.url else {})})
    for term in entry.categories:
        item.category(term=term)
    _add_text(item, entry)
    if source is not None:
        item.source(url=source.link or source.url, title=source.title)


def _related(entry: StoredEntry, credits: Sequence[Credit]) -> list[dict[str, str]]:
    """``<link rel="related">`` to each credited copy (not repeating the entry's own link)."""
    seen = {entry.link}
    related = []
    for credit in credits:
        if credit.link and credit.link not in seen:
            seen.add(credit.link)
            related.append(
                {"href": credit.link, "rel": "related", "type": "text/html", "title": credit.title}
            )
    return related


def _add_text(item: FeedEntry, entry: StoredEntry) -> None:
    """Content and summary as HTML; an entry without a link carries its text as content."""
    if entry.content:
        item.content(entry.content, type="html")
        if entry.summary and entry.summary != entry.content:
            item.summary(entry.summary, type="html")
    elif entry.summary:
        if entry.link:
            item.summary(entry.summary, type="html")
        else:
            item.content(entry.summary, type="html")
    elif not entry.link:
        item.content(entry.title or _fallback_title(entry), type="text")


def _fallback_title(entry: StoredEntry) -> str:
    text = plain_text(html.unescape(_TAG.sub(" ", entry.summary or entry.content or "")), 80)
    return text or entry.link or "(untitled)"


def _version() -> str:
    try:
        return metadata.version("feedmill")
    except metadata.PackageNotFoundError:
        return "0"
