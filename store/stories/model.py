"""Values of story clustering: what goes in, what the index keeps, what was decided."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


@dataclass(frozen=True)
class StoryEntry:
    """A stored entry as clustering sees it. ``text`` is its summary or content (HTML is fine)."""

    uid: str
    source_id: str
    published: datetime
    title: str = ""
    text: str = ""
    link: str | None = None  # the canonical link


@dataclass(frozen=True)
class EntryFeatures:
    """What the index keeps of an entry: enough to compare it, nothing to render it.

    ``terms`` is the form of store.stories.index.pack_terms (what ``story_members.terms``
    stores): each term's 32-bit key, then each term's flags (store.stories.text), in key
    order.
    """

    uid: str
    source_id: str
    published: datetime
    link: str | None
    terms: bytes
    embedding: bytes = b""  # unit sentence vector (float16 LE) when an embedder is set


class MatchKind(StrEnum):
    LINK = "link"
    NEAR_COPY = "near-copy"
    EVENT = "event"
    HEADLINE = "headline"  # the same event, told by two headlines with no summary


@dataclass(frozen=True)
class StoryScore:
    """How a candidate story scored against the entry, and why it was or wasn't joined."""

    story_id: str
    kind: MatchKind
    score: float
    threshold: float
    member_uid: str | None = None  # the closest member
    excluded: str | None = None  # "same source": not eligible

    @property
    def matches(self) -> bool:
        return self.excluded is None and self.score >= self.threshold


@dataclass(frozen=True)
class StoryDecision:
    """Join ``story_id`` (``joined``) or found it (``story_id`` is then the entry's uid)."""

    story_id: str
    joined: bool
    kind: MatchKind | None  # what joined it; None for a new story
    scores: tuple[StoryScore, ...]  # the candidates considered, best first
    merged: tuple[str, ...] = ()  # stories this entry bridged, merged into ``story_id``
