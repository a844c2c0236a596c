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
    rules: tuple[Rule, ...] = ()

    def describe(self) -> str:
        if self.kind in ("any", "all"):
            inner = ", ".join(r.describe() for r in self.rules)
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
        return f"{self.base_url}feeds/{feed_id}.{extension}"


@dataclass(frozen=True, slots=True)
class RenderedFeed:
    """A rendered document with what HTTP caching needs."""

    body: bytes
    media_type: str
    updated: datetime
