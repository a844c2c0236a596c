"""Text made safe to publish, applied to stored values as they are rendered.

Rendering must not fail on anything the database holds, whatever an older version stored:

- :func:`xml_text`: characters XML 1.0 cannot carry (C0 controls but tab, newline and
  carriage return; U+FFFE, U+FFFF) are removed, lone surrogates become U+FFFD, so lxml,
  feedgen and UTF-8 encoding accept every string;
- :func:`plain_text`: the same, and anything that looks like an HTML tag is removed, for
  the fields a reader may show as HTML although they are plain text (titles, author names,
  categories, source titles), with titles cut at :data:`MAX_TITLE` characters;
- :func:`web_link`: a link is published only when it is an http(s) URL.

:func:`clean_entry` and :func:`clean_source` apply them to whole values; every renderer
(Atom, RSS, JSON Feed, OPML, the index page) goes through them.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from urllib.parse import urlsplit

from feeds.model import FeedDefinition, Site, SourceInfo
from sources.model import Author, Enclosure
from sources.text import MAX_TITLE as MAX_TITLE
from sources.text import clean_text, shorten
from store.model import StoredEntry

# A start or end tag, comment, doctype or processing instruction, also one left unclosed at
# the end of the text (a reader that pastes the text into its own markup would close it).
_TAG = re.compile(r"<[A-Za-z/!?][^>]*(?:>|$)")
_SPACE = re.compile(r"\s+")
# Anything plain_text would change but the length: a quick test before the work.
_NOT_PLAIN = re.compile(
    "[^\\S ]|\\s\\s|^\\s|\\s$|[<\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ufffe\uffff\ud800-\udfff]"
)


def xml_text(text: str) -> str:
    """``text`` without the characters XML 1.0 cannot carry (and other controls); lone
    surrogates become U+FFFD: the cleaning parse applies to new entries (sources.text)."""
    return clean_text(text)


def plain_text(text: str, limit: int | None = None) -> str:
    """XML-safe text with tag-like runs removed and white space collapsed, at most
    ``limit`` characters (the last one an ellipsis when cut)."""
    if _NOT_PLAIN.search(text) is None and (limit is None or len(text) <= limit):
        return text
    cleaned = xml_text(text)
    if "<" in cleaned:
        cleaned = _TAG.sub(" ", cleaned)
    cleaned = _SPACE.sub(" ", cleaned).strip()
    return cleaned if limit is None else shorten(cleaned, limit)


def optional_text(text: str | None) -> str | None:
    return None if text is None else xml_text(text)


def web_link(url: str | None) -> str | None:
    """``url`` when it is an http(s) URL (XML-safe), else None."""
    if not url:
        return None
    url = xml_text(url).strip()
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        return None
    return url


def clean_entry(entry: StoredEntry) -> StoredEntry:
    """The entry with every field safe to render (see the module docstring)."""
    title = plain_text(entry.title, MAX_TITLE) if entry.title else None
    cleaned = {
        "link": web_link(entry.link),
        "title": title or None,
        "summary": optional_text(entry.summary),
        "content": optional_text(entry.content),
        "authors": tuple(_authors(entry.authors)),
        "categories": _texts(entry.categories),
        "enclosures": tuple(_enclosures(entry.enclosures)),
        "language": optional_text(entry.language),
    }
    if all(value == getattr(entry, name) for name, value in cleaned.items()):
        return entry  # the usual case: nothing to change, no copy
    return dataclasses.replace(entry, **cleaned)  # type: ignore[arg-type]


def _texts(values: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(filter(None, (plain_text(str(v), MAX_TITLE) for v in values)))


def _authors(authors: tuple[Author, ...]) -> list[Author]:
    """Names as plain text (an author left without one is dropped), pages only http(s)."""
    cleaned = []
    for author in authors:
        name = plain_text(str(author.name), MAX_TITLE)
        if not name:
            continue
        safe = Author(name, web_link(author.url))
        cleaned.append(author if safe == author else safe)
    return cleaned


def _enclosures(enclosures: tuple[Enclosure, ...]) -> list[Enclosure]:
    cleaned = []
    for enclosure in enclosures:
        url = web_link(enclosure.url)
        if url is None:
            continue
        kind = plain_text(enclosure.type) if enclosure.type else None
        length = enclosure.length if isinstance(enclosure.length, int) else None
        safe = Enclosure(url, kind or None, length if length and length > 0 else None)
        cleaned.append(enclosure if safe == enclosure else safe)
    return cleaned


def clean_source(info: SourceInfo) -> SourceInfo:
    return SourceInfo(
        id=info.id,
        title=plain_text(info.title, MAX_TITLE) or info.id,
        url=xml_text(info.url),
        link=web_link(info.link),
    )


def clean_definition(definition: FeedDefinition) -> FeedDefinition:
    """A feed's title and subtitle come from the config: XML-safe, as written otherwise."""
    return dataclasses.replace(
        definition,
        title=xml_text(definition.title),
        subtitle=optional_text(definition.subtitle),
    )


def clean_site(site: Site) -> Site:
    return dataclasses.replace(site, title=xml_text(site.title))


def clean_context(
    definition: FeedDefinition, sources: Mapping[str, SourceInfo], site: Site
) -> tuple[FeedDefinition, dict[str, SourceInfo], Site]:
    """What a renderer gets besides the entries, made safe to render."""
    cleaned = {key: clean_source(info) for key, info in sources.items()}
    return clean_definition(definition), cleaned, clean_site(site)
