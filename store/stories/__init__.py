"""Story clustering: which stored entries carry the same story (docs/dedup.md).

Pure and database-free: ``StoryIndex`` holds the clustering window in memory and decides
each new entry's story; the store (store.story_store) builds it from ``story_members`` and
writes its decisions back.
"""

from typing import TYPE_CHECKING

from sources.lazy import lazy_exports

if TYPE_CHECKING:
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

# Each name is imported on first use (sources/lazy.py); the type checker reads the imports above.
if not TYPE_CHECKING:
    __getattr__, __dir__ = lazy_exports(__name__)
