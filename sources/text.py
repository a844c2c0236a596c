"""Text from upstreams made safe to store and to republish, and the limits on its size.

Every string that leaves sources/ has been through :func:`clean_text`: no character that XML
1.0 forbids (C0 controls but tab, newline and carriage return; U+FFFE and U+FFFF), no C1
control or DEL (terminal escapes), no NUL (PostgreSQL refuses it), and no lone surrogate
(no encoder accepts one; it becomes U+FFFD). Plain-text fields (titles, names, categories)
go through :func:`plain_text`: tags stripped and entities decoded once, as Miniflux does, so
a reader that shows a title as HTML shows text.

The limits (documented in docs/fetching.md) keep one entry from costing more than a bounded
amount of memory and CPU, whatever the upstream sends.
"""

from __future__ import annotations

import hashlib
import html
import re
from dataclasses import replace

from sources.model import Author, Enclosure, ParsedEntry

MAX_ENTRIES = 10_000  # entries read from one document; the rest are ignored
MAX_TITLE = 1_000  # characters of a title (feed or entry), cut at a word with an ellipsis
MAX_NAME = 200  # characters of an author name, a category, a MIME type
MAX_TEXT = 10_000  # characters of other plain text (a feed's subtitle, a JSON summary)
MAX_AUTHORS = 20
MAX_CATEGORIES = 50
MAX_ENCLOSURES = 20
MAX_URL = 4_096  # characters; a longer link is dropped
MAX_ID = 1_000  # characters; a longer upstream id is replaced by its hash
MAX_SUMMARY_HTML = 100_000  # characters of summary HTML given to the sanitiser
MAX_CONTENT_HTML = 1_000_000  # characters of content HTML given to the sanitiser
MAX_HTML_DEPTH = 256  # open elements; deeper markup in a long value is kept as text only

_SURROGATE = re.compile("[\ud800-\udfff]")
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ufffe\uffff]")
_DIRTY = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ufffe\uffff\ud800-\udfff]")
_TAG = re.compile(r"<[^>]*>")
_SPACE = re.compile(r"\s+")


def clean_text(value: str) -> str:
    """``value`` without XML-illegal and control characters, lone surrogates as U+FFFD."""
    if not _DIRTY.search(value):
        return value
    return _CONTROL.sub("", _SURROGATE.sub("\ufffd", value))


def clean_entry(entry: ParsedEntry) -> ParsedEntry:
    """``entry`` with every string cleaned: parse_document's entries are clean already, and
    come back as they are; this keeps an entry made elsewhere from storing what XML or
    PostgreSQL refuses."""
    texts = (entry.id, entry.link, entry.title, entry.summary, entry.content, entry.language)
    authors = [text for a in entry.authors for text in (a.name, a.url) if text]
    lists = (*authors, *entry.categories, *(e.url for e in entry.enclosures))
    if not any(_DIRTY.search(t) for t in (*texts, *lists) if t):
        return entry
    return replace(
        entry,
        id=_clean_optional(entry.id),
        link=_clean_optional(entry.link),
        title=_clean_optional(entry.title),
        summary=_clean_optional(entry.summary),
        content=_clean_optional(entry.content),
        language=_clean_optional(entry.language),
        origin_link=_clean_optional(entry.origin_link),
        authors=tuple(Author(clean_text(a.name), _clean_optional(a.url)) for a in entry.authors),
        categories=tuple(clean_text(c) for c in entry.categories),
        enclosures=tuple(
            Enclosure(clean_text(e.url), _clean_optional(e.type), e.length)
            for e in entry.enclosures
        ),
    )


def _clean_optional(value: str | None) -> str | None:
    return clean_text(value) if value else value


def plain_text(value: object, limit: int = MAX_TEXT) -> str | None:
    """Text for a plain-text field: tags stripped, entities decoded once, cleaned, runs of
    white space made one space, cut to ``limit`` characters; None for empty or not a string."""
    if not isinstance(value, str):
        return None
    text = value[: limit * 4]  # what follows is linear, but no need to look at megabytes
    if "<" in text:
        text = _TAG.sub(" ", text)
    if "&" in text:
        text = html.unescape(text)
    text = _SPACE.sub(" ", clean_text(text)).strip()
    return shorten(text, limit) or None


def shorten(text: str, limit: int) -> str:
    """``text`` cut to at most ``limit`` characters, at a space if one is near, with "…"."""
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    space = cut.rfind(" ", limit // 2)
    return (cut[:space] if space > 0 else cut).rstrip() + "\u2026"


def bounded_id(value: str) -> str:
    """An upstream id, or a hash of it when it is longer than MAX_ID (stable across polls)."""
    if len(value) <= MAX_ID:
        return value
    return "id-sha256:" + hashlib.sha256(value.encode("utf-8", "replace")).hexdigest()


_OPEN_OR_CLOSE = re.compile(r"<(/?)([A-Za-z][^\s/>]*)[^>]*?(/?)>")
_VOID = frozenset(
    {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "param"}
    | {"source", "track", "wbr"}
)
_DEPTH_CHECKED_FROM = 20_000  # characters: shorter HTML cannot nest deep enough to be slow


def too_deep(markup: str, limit: int = MAX_HTML_DEPTH) -> bool:
    """Whether ``markup`` opens more than ``limit`` elements at once (an estimate that reads
    tags only). HTML parsers do work in proportion to the open elements at every tag, so
    deep nesting costs the square of the length; short values are not checked."""
    if len(markup) < _DEPTH_CHECKED_FROM:
        return False
    depth = 0
    for match in _OPEN_OR_CLOSE.finditer(markup):
        closing, name, self_closing = match.groups()
        if closing:
            depth = max(depth - 1, 0)
        elif not self_closing and name.lower() not in _VOID:
            depth += 1
            if depth > limit:
                return True
    return False
