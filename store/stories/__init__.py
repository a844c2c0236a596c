"""Story clustering: which stored entries carry the same story (docs/dedup.md).

Pure and database-free: ``StoryIndex`` holds the clustering window in memory and decides
each new entry's story; the store (store.story_store) builds it from ``story_members`` and
writes its decisions back.
"""

from store.stories.evaluate import BCubed, score_bcubed
from store.stories.index import StoryIndex, embed_entries, featurize_entries
from store.stories.model import (
    EntryFeatures,
    MatchKind,
    StoryDecision,
    StoryEntry,
    StoryScore,
)
from store.stories.settings import StoryMode, StorySettings

__all__ = [
    "BCubed",
    "EntryFeatures",
    "MatchKind",
    "StoryDecision",
    "StoryEntry",
    "StoryIndex",
    "StoryMode",
    "StoryScore",
    "StorySettings",
    "embed_entries",
    "featurize_entries",
    "score_bcubed",
]
