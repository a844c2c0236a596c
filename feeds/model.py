"""Values feeds/ works with: curated feed definitions and what rendering needs."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True, slots=True)
class FeedDefinition:
    """A curated feed as configured; ``source_ids`` already has the tags resolved."""

    id: str
    title: str
    source_ids: tuple[str, ...]
    subtitle: str | None = None
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    limit: int = 50


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
