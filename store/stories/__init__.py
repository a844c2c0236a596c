"""Story clustering: which stored entries carry the same story (docs/dedup.md).

Pure and database-free: store.stories.cluster decides, a StoryIndex (a Protocol; the
in-memory MemoryStoryIndex here, a table-backed one in the store) finds the candidates.
"""

from store.stories.cluster import (
    choose_representative,
    decide_story,
    embed_entries,
    featurize_entries,
    featurize_entry,
    make_idf,
    plan_merges,
)
from store.stories.evaluate import BCubed, score_bcubed
from store.stories.index import MemoryStoryIndex, MergingStoryIndex, StoryIndex, assign_story
from store.stories.model import (
    EntryFeatures,
    MatchKind,
    StoryDecision,
    StoryEntry,
    StoryScore,
    StoryState,
)
from store.stories.settings import StoryMode, StorySettings

__all__ = [
    "BCubed",
    "EntryFeatures",
    "MatchKind",
    "MemoryStoryIndex",
    "MergingStoryIndex",
    "StoryDecision",
    "StoryEntry",
    "StoryIndex",
    "StoryMode",
    "StoryScore",
    "StorySettings",
    "StoryState",
    "assign_story",
    "choose_representative",
    "decide_story",
    "embed_entries",
    "featurize_entries",
    "featurize_entry",
    "make_idf",
    "plan_merges",
    "score_bcubed",
]
