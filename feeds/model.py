"""Values feeds/ works with: curated feed definitions and what rendering needs."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

# The parts of an entry a rule can look at (docs/feeds.md).
RULE_FIELDS = ("title", "summary", "content", "author", "categories", "link", "source")
DEFAULT_FIELDS = ("title", "summary")


@dataclass(frozen=True, slots=True)
class Rule:
    """One include or exclude rule.

    ``kind`` is ``keyword`` (whole words, plural endings), ``phrase`` (these words in this
    order), ``regex`` (a regular expression, run with a time limit), or a group: ``any``
    (one of ``rules`` matches) or ``all`` (every one of ``rules`` matches). ``fields`` are
    the parts of the entry searched; a group passes its own to rules that name none.
    """

    kind: str
    pattern: str = ""
    fields: tuple[str, ...] | None = None
    rules: tuple[Rule | str, ...] = ()

    def describe(self) -> str:
        if self.kind in ("any", "all"):
            inner = ", ".join(
                (r if isinstance(r, Rule) else Rule("keyword", r)).describe() for r in self.rules
            )
            return f"{self.kind}({inner})"
        where = f" in {'/'.join(self.fields)}" if self.fields else ""
        return f"{self.kind} {self.pattern!r}{where}"


@dataclass(frozen=True, slots=True)
class FeedDefinition:
    """A curated feed as configured; ``source_ids`` already has the tags resolved.

    A plain string in ``include`` / ``exclude`` is a keyword rule on title and summary.
    """

    id: str
    title: str
    source_ids: tuple[str, ...]
    subtitle: str | None = None
    include: tuple[Rule | str, ...] = ()
    exclude: tuple[Rule | str, ...] = ()
    limit: int = 50
    max_age: timedelta | None = None
    min_words: int = 0
    languages: tuple[str, ...] = ()
    # "none", "link" (one entry per canonical link) or "story" (one per story);
    # ``prefer`` orders sources when choosing which member represents a story.
    dedupe: str = "none"
    prefer: tuple[str, ...] = ()
    # A search query (store.search.query) the entries must match, beside include/exclude.
    query: str | None = None


@dataclass(frozen=True, slots=True)
class SearchSettings:
    """The public search (``/search``, ``/search.atom``): whether it is served, how big a
    query may be, how long it may take, how many entries a page shows, and ``dedupe``."""

    public: bool = True
    max_query_length: int = 500
    max_terms: int = 20
    timeout: float = 2.0  # seconds
    limit: int = 50
    dedupe: str = "none"


@dataclass(frozen=True, slots=True)
class SourceInfo:
    """What a rendered entry says about the source it came from (atom:source)."""

    id: str
    title: str
    url: str
    link: str | None


@dataclass(frozen=True, slots=True)
class Site:
    """The public face of this feedmill: ``base_url`` ends with a slash."""

    base_url: str
    title: str = "feedmill"

    def feed_url(self, feed_id: str, extension: str = "atom") -> str:
        return f"{self.base_url}{feed_path(feed_id, extension)}"

    def page_url(self, feed_id: str, extension: str, before: str | None) -> str:
        return f"{self.base_url}{feed_path(feed_id, extension, before)}"


# The formats a curated feed is served in: extension -> media type.
FORMATS = {
    "atom": "application/atom+xml; charset=utf-8",
    "rss": "application/rss+xml; charset=utf-8",
    "json": "application/feed+json; charset=utf-8",
}


def feed_path(feed_id: str, extension: str = "atom", before: str | None = None) -> str:
    """``feeds/ID.EXT``, or for an archive page (RFC 5005 paging) the entries older than
    the entry ``before``: ``feeds/ID/before/UID.EXT``. Server and static export share it."""
    if before is None:
        return f"feeds/{feed_id}.{extension}"
    return f"feeds/{feed_id}/before/{before}.{extension}"


@dataclass(frozen=True, slots=True)
class PageLinks:
    """Where a rendered page sits: its own URL, the feed's first page, the next (older) page
    if there is one, and the WebSub hub if one is configured."""

    self_url: str
    first_url: str
    next_url: str | None = None
    hub: str | None = None


@dataclass(frozen=True, slots=True)
class RenderedFeed:
    """A rendered document with what HTTP caching needs."""

    body: bytes
    media_type: str
    updated: datetime
