"""Values of story clustering: what goes in, what the index keeps, what was decided."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
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
    """What the index keeps of an entry: enough to compare it, nothing to render it."""

    uid: str
    source_id: str
    published: datetime
    link: str | None
    signature: bytes  # MinHash of title + text shingles (uint32 LE); empty if no words
    band_keys: tuple[int, ...]
    terms: frozenset[str]
    term_keys: tuple[int, ...]
    embedding: bytes = b""  # unit sentence vector (float16 LE) when an embedder is set


@dataclass(frozen=True)
class StoryState:
    """A stored story: its members (most recent ``max_members_compared`` suffice) and terms."""

    story_id: str
    members: tuple[EntryFeatures, ...]
    term_counts: Mapping[str, int] = field(default_factory=dict)
    sources: frozenset[str] = frozenset()


class MatchKind(StrEnum):
    LINK = "link"
    NEAR_COPY = "near-copy"
    EVENT = "event"


@dataclass(frozen=True)
class StoryScore:
    """How a candidate story scored against the entry, and why it was or wasn't joined."""

    story_id: str
    kind: MatchKind
    score: float
    threshold: float
    member_uid: str | None = None  # the closest member, for near-copy scores
    excluded: str | None = None  # "same source" or "outside window": not eligible

    @property
    def matches(self) -> bool:
        return self.excluded is None and self.score >= self.threshold


@dataclass(frozen=True)
class StoryDecision:
    """Join ``story_id`` (``joined``) or found it (``story_id`` is then the entry's uid)."""

    story_id: str
    joined: bool
    kind: MatchKind | None  # what joined it; None for a new story
    scores: tuple[StoryScore, ...]  # every candidate considered, best first
    # Stories this entry bridged, merged into ``story_id`` (StorySettings.merge_threshold).
    merged: tuple[str, ...] = ()
