"""Where candidate stories come from: the StoryIndex Protocol and an in-memory implementation.

The Protocol is shaped for a database: each lookup is one indexed query on a table of
(key, story id, last published) rows, a table of (canonical link, story id) rows and a table
of (term, count) rows, never a scan of stored entries. ``assign_story`` is the whole
incremental step around the pure decision in store.stories.cluster.
"""

from __future__ import annotations

from bisect import insort
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol, TypeGuard, runtime_checkable

from store.stories.cluster import (
    choose_representative,
    decide_story,
    featurize_entry,
    make_idf,
    plan_merges,
)
from store.stories.model import EntryFeatures, StoryDecision, StoryEntry, StoryState
from store.stories.settings import StoryMode, StorySettings
from store.stories.sketch import term_key

# Event mode looks stories up by this many of the entry's rarest terms.
EVENT_LOOKUP_TERMS = 8


class StoryIndex(Protocol):
    def stories_by_link(self, link: str) -> Sequence[str]:
        """Stories with a member at this canonical link."""
        ...

    def stories_by_keys(self, keys: Sequence[int], since: datetime, limit: int) -> Sequence[str]:
        """Stories sharing any of ``keys`` with a member published at or after ``since``,
        most shared keys first, at most ``limit``."""
        ...

    def load_stories(
        self, story_ids: Sequence[str], max_members: int, max_terms: int
    ) -> Sequence[StoryState]:
        """The stories, each with its ``max_members`` most recent members and its
        ``max_terms`` most frequent terms."""
        ...

    def term_frequencies(self, terms: Sequence[str]) -> tuple[int, Mapping[str, int]]:
        """(number of entries indexed, how many of them contain each term)."""
        ...

    def add_member(self, story_id: str, features: EntryFeatures) -> None:
        """Records the entry in the story (creating it), with its keys, link and terms."""
        ...


@runtime_checkable
class MergingStoryIndex(StoryIndex, Protocol):
    """A StoryIndex that can also merge stories (StorySettings.merge_threshold)."""

    def merge_stories(self, keep: str, gone: Sequence[str]) -> None:
        """Moves every member of the ``gone`` stories, with their keys, links and terms, into
        story ``keep`` (whose id stands) and deletes the ``gone`` stories."""
        ...


def assign_story(
    entry: StoryEntry,
    index: StoryIndex,
    settings: StorySettings,
    *,
    features: EntryFeatures | None = None,
) -> StoryDecision:
    """Finds the entry's story through the index, records it there and says why.
    ``features`` are the entry's, when the caller computed them already (to prefetch)."""
    if features is None:
        features = featurize_entry(entry, settings)
    total, frequencies = 0, {}  # type: tuple[int, Mapping[str, int]]
    if settings.mode == StoryMode.EVENT:  # only event scores weigh terms by rarity
        total, frequencies = index.term_frequencies(sorted(features.terms))
    idf = make_idf(total, frequencies)
    by_link = index.load_stories(
        index.stories_by_link(features.link) if features.link else (),
        settings.max_members_compared,
        settings.max_story_terms,
    )
    candidates: Sequence[StoryState] = ()
    if not by_link and settings.mode != StoryMode.LINK:
        keys = list(features.band_keys)
        if settings.mode == StoryMode.EVENT:
            rarest = sorted(features.terms, key=lambda t: (frequencies.get(t, 0), t))
            keys += [term_key(t) for t in rarest[:EVENT_LOOKUP_TERMS]]
        since = features.published - settings.window
        story_ids = index.stories_by_keys(keys, since, settings.max_candidates)
        candidates = index.load_stories(
            story_ids, settings.max_members_compared, settings.max_story_terms
        )
    if settings.mode == StoryMode.EVENT and candidates:
        story_terms = {t for story in candidates for t in story.term_counts}
        total, more = index.term_frequencies(sorted(story_terms - features.terms))
        idf = make_idf(total, {**frequencies, **more})
    decision = decide_story(features, by_link, candidates, idf, settings)
    if _can_merge(index):  # an index that can't merge keeps stories apart
        decision = plan_merges(features, decision, candidates, settings)
        if decision.merged:
            index.merge_stories(decision.story_id, decision.merged)
    index.add_member(decision.story_id, features)
    return decision


_MERGING: dict[type, bool] = {}


def _can_merge(index: StoryIndex) -> TypeGuard[MergingStoryIndex]:
    """``isinstance(index, MergingStoryIndex)``, once per class: a runtime Protocol check
    inspects the class each time (about 15 us), and it is asked once per entry."""
    kind = type(index)
    known = _MERGING.get(kind)
    if known is None:
        known = _MERGING[kind] = isinstance(index, MergingStoryIndex)
    return known


@dataclass
class MemoryStoryIndex:
    """StoryIndex in dictionaries, keyed the way the database tables are. For tests and bench."""

    members: dict[str, list[EntryFeatures]] = field(default_factory=dict)
    story_of: dict[str, str] = field(default_factory=dict)  # entry uid -> story id
    _by_key: dict[int, dict[str, datetime]] = field(default_factory=lambda: defaultdict(dict))
    _by_link: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    _terms: dict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    _df: Counter[str] = field(default_factory=Counter)
    _total: int = 0
    _loaded: dict[str, tuple[tuple[int, int], StoryState]] = field(default_factory=dict)
    _keys_of: dict[str, set[int]] = field(default_factory=lambda: defaultdict(set))
    _links_of: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))

    def stories_by_link(self, link: str) -> Sequence[str]:
        return sorted(self._by_link.get(link, ()))

    def stories_by_keys(self, keys: Sequence[int], since: datetime, limit: int) -> Sequence[str]:
        shared: Counter[str] = Counter()
        for key in set(keys):
            for story_id, latest in self._by_key.get(key, {}).items():
                if latest >= since:
                    shared[story_id] += 1
        return [s for s, _ in sorted(shared.items(), key=lambda i: (-i[1], i[0]))[:limit]]

    def load_stories(
        self, story_ids: Sequence[str], max_members: int, max_terms: int
    ) -> Sequence[StoryState]:
        stories = []
        for story_id in story_ids:
            cached = self._loaded.get(story_id)
            if cached is None or cached[0] != (max_members, max_terms):
                members = self.members[story_id]  # kept in (published, uid) order
                state = StoryState(
                    story_id,
                    tuple(members[-max_members:]),
                    dict(self._terms[story_id].most_common(max_terms)),
                    frozenset(m.source_id for m in members),
                )
                cached = self._loaded[story_id] = ((max_members, max_terms), state)
            stories.append(cached[1])
        return stories

    def term_frequencies(self, terms: Sequence[str]) -> tuple[int, Mapping[str, int]]:
        return self._total, {t: self._df[t] for t in terms if t in self._df}

    def add_member(self, story_id: str, features: EntryFeatures) -> None:
        insort(self.members.setdefault(story_id, []), features, key=_arrival)
        self._loaded.pop(story_id, None)
        self.story_of[features.uid] = story_id
        published = features.published
        for key in (*features.band_keys, *features.term_keys):
            stories = self._by_key[key]
            latest = stories.get(story_id)
            if latest is None or published > latest:
                stories[story_id] = published
            self._keys_of[story_id].add(key)
        if features.link:
            self._by_link[features.link].add(story_id)
            self._links_of[story_id].add(features.link)
        self._terms[story_id].update(features.terms)
        self._df.update(features.terms)
        self._total += 1

    def merge_stories(self, keep: str, gone: Sequence[str]) -> None:
        for story_id in gone:
            for member in self.members.pop(story_id):
                insort(self.members[keep], member, key=_arrival)
                self.story_of[member.uid] = keep
            for key in self._keys_of.pop(story_id, ()):
                stories = self._by_key[key]
                latest = stories.pop(story_id)
                stories[keep] = max(latest, stories.get(keep, latest))
                self._keys_of[keep].add(key)
            for link in self._links_of.pop(story_id, ()):
                self._by_link[link].discard(story_id)
                self._by_link[link].add(keep)
                self._links_of[keep].add(link)
            self._terms[keep].update(self._terms.pop(story_id, Counter()))
            self._loaded.pop(story_id, None)
        self._loaded.pop(keep, None)

    def representative(self, story_id: str, prefer: Sequence[str] = ()) -> EntryFeatures:
        return choose_representative(self.members[story_id], prefer)


def _arrival(member: EntryFeatures) -> tuple[datetime, str]:
    return member.published, member.uid
