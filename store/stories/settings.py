"""How stories are formed: the ``stories:`` section of the config, one frozen value.

The defaults were chosen on half A of the story-rewrites set and checked on half B; the
headline ones on the earlier half of news-dedup's stories, checked on the later half
(bench/dedup.py; docs/dedup.md has the figures).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum

EMBEDDER_NAMES = frozenset({"all-minilm-l6-v2"})  # store.stories.embed.EMBEDDER_PACKAGES


class StoryMode(StrEnum):
    """How far clustering goes; each level includes the ones before it."""

    LINK = "link"  # the same canonical link only
    NEAR_COPY = "near-copy"  # + near-copies (wire copy, a trimmed or retitled copy)
    EVENT = "event"  # + rewritten copy of the same event (the default)


@dataclass(frozen=True)
class StorySettings:
    """Clustering settings (docs/dedup.md#settings).

    Two entries are compared by the cosine of their weighted terms: a term weighs its
    rarity in the clustering window (IDF) times ``name_weight`` for a name, ``number_weight``
    for a figure, times ``title_weight`` when it is in the headline; common words weigh
    nothing. The score is that cosine less ``time_decay`` of it for entries a whole
    ``window`` apart (in proportion between). An entry joins the story of its best-scoring
    member of another source within ``window``: as a near-copy at ``near_copy_threshold``
    of the cosine, as the same event at ``event_threshold`` of the score. With an embedder,
    the event score is 0.3 of the terms' cosine plus 0.7 of the sentence vectors' cosine, less
    the same time decay, against ``embedding_threshold``. An entry and a member that are both
    headlines with no summary are scored by the cosine of their terms weighing every word
    alike (rarity only, no discount for few terms), less the time decay, against
    ``headline_threshold``, and only within ``headline_window`` of each other. An entry
    that scores at least ``merge_threshold`` against other stories too bridges them: they
    merge when no source has entries in two (0: never).
    """

    cluster: str = "auto"  # auto: while a curated feed has dedupe: story; always; never
    mode: StoryMode = StoryMode.EVENT
    near_copy_threshold: float = 0.6
    event_threshold: float = 0.25
    window: timedelta = timedelta(hours=36)
    merge_threshold: float = 0.5
    embedder: str = ""
    embedding_threshold: float = 0.45
    name_weight: float = 5.0
    number_weight: float = 2.0
    title_weight: float = 1.5
    time_decay: float = 0.3
    headline_threshold: float = 0.5
    headline_window: timedelta = timedelta(hours=12)
    max_candidates: int = 100  # members scored per entry at most (sharing its heaviest terms)

    def __post_init__(self) -> None:
        if self.cluster not in ("auto", "always", "never"):
            raise ValueError(f"cluster must be auto, always or never, got {self.cluster!r}")
        object.__setattr__(self, "mode", StoryMode(self.mode))
        thresholds = ("near_copy_threshold", "event_threshold", "embedding_threshold")
        for name in (*thresholds, "headline_threshold"):
            if not 0.0 < getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be in (0, 1], got {getattr(self, name)}")
        if not 0.0 <= self.merge_threshold <= 1.0:
            raise ValueError(
                f"merge_threshold must be in [0, 1] (0: off), got {self.merge_threshold}"
            )
        if not 0.0 <= self.time_decay < 1.0:
            raise ValueError(f"time_decay must be in [0, 1), got {self.time_decay}")
        for name in ("name_weight", "number_weight", "title_weight"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        if self.max_candidates < 1:
            raise ValueError("max_candidates must be at least 1")
        if self.embedder and self.embedder not in EMBEDDER_NAMES:
            known = ", ".join(sorted(EMBEDDER_NAMES))
            raise ValueError(f"embedder must be one of {known} or empty, got {self.embedder!r}")
        for name in ("window", "headline_window"):
            if getattr(self, name) <= timedelta(0):
                raise ValueError(f"{name} must be positive")
