"""Values that leave sources/: what an upstream said, frozen and UTC-aware."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime


@dataclass(frozen=True, slots=True)
class Validators:
    """HTTP cache validators of the last good response, sent back exactly as received."""

    etag: str | None = None
    last_modified: str | None = None


@dataclass(frozen=True, slots=True)
class FetchResult:
    """One successful HTTP exchange: a body (status 200) or ``not_modified`` (304).

    ``url`` is where the document was found (after redirects and discovery);
    ``permanent_redirect`` the target of the leading 301/308 hops, if the first hop was one;
    ``discovered_from`` the HTML page whose ``<link rel="alternate">`` led to the feed.
    ``cache_control``, ``expires`` and ``date`` are the response's headers, verbatim.
    """

    url: str
    status: int
    validators: Validators
    content: bytes = b""
    content_type: str | None = None
    permanent_redirect: str | None = None
    discovered_from: str | None = None
    cache_control: str | None = None
    expires: str | None = None
    date: str | None = None

    @property
    def not_modified(self) -> bool:
        return self.status == 304

    @property
    def body_hash(self) -> str:
        return hashlib.sha256(self.content).hexdigest()


@dataclass(frozen=True, slots=True)
class Enclosure:
    url: str
    type: str | None = None
    length: int | None = None


@dataclass(frozen=True, slots=True)
class Author:
    """An entry's author: a name, and the author's web page when the feed gives one."""

    name: str
    url: str | None = None


@dataclass(frozen=True, slots=True)
class ParsedEntry:
    """One entry as the upstream document gives it.

    ``summary`` and ``content`` are sanitised HTML; links are absolute http(s) URLs or None;
    datetimes are UTC-aware.
    """

    id: str | None
    link: str | None
    title: str | None
    summary: str | None = None
    content: str | None = None
    published: datetime | None = None
    updated: datetime | None = None
    authors: tuple[Author, ...] = ()
    categories: tuple[str, ...] = ()
    enclosures: tuple[Enclosure, ...] = ()
    language: str | None = None  # BCP 47 tag, lower case: the entry's xml:lang or the feed's
    # The publisher's own URL when ``link`` is a redirect wrapper (feedburner:origLink).
    origin_link: str | None = None


@dataclass(frozen=True, slots=True)
class ParsedFeed:
    """One upstream document. ``version`` is feedparser's name for the format (or json1)."""

    url: str
    version: str
    title: str | None = None
    link: str | None = None
    subtitle: str | None = None
    updated: datetime | None = None
    entries: tuple[ParsedEntry, ...] = field(default=())
    # Polling hints the document gives, verbatim: RSS <ttl> (minutes), sy:updatePeriod/Frequency.
    ttl: str | None = None
    update_period: str | None = None
    update_frequency: str | None = None
