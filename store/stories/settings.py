"""How stories are formed: the clustering settings, a frozen value with measured defaults."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum

EMBEDDER_NAMES = frozenset({"all-minilm-l6-v2"})  # store.stories.embed.EMBEDDER_PACKAGES


class StoryMode(StrEnum):
    """How far clustering goes; each level includes the ones before it."""

    LINK = "link"  # same canonical link only
    NEAR_COPY = "near-copy"  # + near-copies of title and summary (wire copy, rewritten headline)
    EVENT = "event"  # + the same event in other words (lexical, off by default)


@dataclass(frozen=True)
class StorySettings:
    """Clustering settings. Defaults are the ones measured in bench/dedup.py (docs/dedup.md).

    ``near_copy_threshold`` is on the estimated Jaccard similarity of word shingles of title
    plus summary; ``event_threshold`` on the IDF-weighted cosine between an entry and a story's
    terms. Similarity merges only happen between entries published within ``window`` of each
    other, and never between entries of the same source. ``bands`` x ``rows`` MinHash
    permutations make the LSH index; a pair at the near-copy threshold is found with a
    probability of about 1 - (1 - t^rows)^bands.
    """

    mode: StoryMode = StoryMode.NEAR_COPY
    near_copy_threshold: float = 0.4
    event_threshold: float = 0.45
    window: timedelta = timedelta(hours=72)
    shingle_size: int = 2
    num_perm: int = 128
    bands: int = 20
    rows: int = 3
    max_candidates: int = 64
    max_members_compared: int = 32
    max_story_terms: int = 64
    # Event mode by sentence embeddings instead of words: an embedder from
    # store.stories.embed.EMBEDDER_PACKAGES (the ``embeddings`` extra); "" is lexical.
    embedder: str = ""
    embedding_threshold: float = 0.65
    # Event mode: an entry that joins a story and has an event score of at least this against
    # other eligible candidate stories bridges them, and they merge when no source has entries
    # in two of them. 0 turns merging off; it needs a MergingStoryIndex.
    merge_threshold: float = 0.5
    embedding_merge_threshold: float = 0.65  # the same, on the score with an embedder

    def __post_init__(self) -> None:
        for name in ("near_copy_threshold", "event_threshold", "embedding_threshold"):
            value = getattr(self, name)
            if not 0.0 < value <= 1.0:
                raise ValueError(f"{name} must be in (0, 1], got {value}")
        for name in (
            "shingle_size",
            "num_perm",
            "bands",
            "rows",
            "max_candidates",
            "max_members_compared",
            "max_story_terms",
        ):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1")
        for name in ("merge_threshold", "embedding_merge_threshold"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be in [0, 1] (0: off), got {getattr(self, name)}")
        if self.embedder and self.embedder not in EMBEDDER_NAMES:
            known = ", ".join(sorted(EMBEDDER_NAMES))
            raise ValueError(f"embedder must be one of {known} or empty, got {self.embedder!r}")
        if self.window <= timedelta(0):
            raise ValueError("window must be positive")
        if self.bands * self.rows > self.num_perm:
            raise ValueError(
                f"bands x rows ({self.bands} x {self.rows}) must not exceed num_perm"
                f" ({self.num_perm}): the bands are cut from the signature's first values"
            )
