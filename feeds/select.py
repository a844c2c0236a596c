"""Which stored entries a curated feed carries: a pure function over stored values.

Evaluation order, per candidate entry (newest first, from the feed's sources):

1. ``exclude``: if any keyword matches, the entry is out;
2. ``include``: if the list is not empty, at least one keyword must match;
3. ``limit``: the first ``limit`` entries that pass are the feed.

A keyword matches case-insensitively as whole words in the title or the summary's text, and
also with a plural ending (``GPU`` matches "GPUs"), so ``AI`` does not match "said".
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable
from dataclasses import dataclass

from feeds.model import FeedDefinition
from store.model import StoredEntry

_TAG = re.compile(r"<[^>]*>")


@dataclass(frozen=True, slots=True)
class Verdict:
    """Whether an entry is in a feed, and the rule that decided it."""

    included: bool
    reason: str


class KeywordSet:
    """Case-insensitive whole-word matching of a list of keywords or phrases."""

    def __init__(self, keywords: Iterable[str]) -> None:
        self.keywords = tuple(keywords)
        self._patterns = [(k, _keyword_pattern(k)) for k in self.keywords]

    def first_match(self, text: str) -> str | None:
        for keyword, pattern in self._patterns:
            if pattern.search(text):
                return keyword
        return None

    def __bool__(self) -> bool:
        return bool(self.keywords)


def _keyword_pattern(keyword: str) -> re.Pattern[str]:
    words = r"\s+".join(re.escape(word) for word in keyword.split())
    return re.compile(rf"(?<!\w){words}(?:s|es|'s)?(?!\w)", re.IGNORECASE)


class Selector:
    """A compiled feed definition: ``judge`` one entry, or ``select`` a whole feed."""

    def __init__(self, definition: FeedDefinition) -> None:
        self.definition = definition
        self._sources = frozenset(definition.source_ids)
        self._include = KeywordSet(definition.include)
        self._exclude = KeywordSet(definition.exclude)

    def judge(self, entry: StoredEntry) -> Verdict:
        if entry.source_id not in self._sources:
            return Verdict(False, f"source {entry.source_id!r} is not one of the feed's")
        text = searchable_text(entry)
        if hit := self._exclude.first_match(text):
            return Verdict(False, f"exclude keyword {hit!r} matched")
        if not self._include:
            return Verdict(True, "no include keywords: every entry of its sources")
        if hit := self._include.first_match(text):
            return Verdict(True, f"include keyword {hit!r} matched")
        return Verdict(False, "no include keyword matched")

    def select(
        self, candidates: Iterable[StoredEntry], room: int | None = None
    ) -> list[StoredEntry]:
        """The first ``room`` (default: the feed's ``limit``) candidates that pass, in order."""
        room = self.definition.limit if room is None else room
        chosen: list[StoredEntry] = []
        for entry in candidates:
            if len(chosen) >= room:
                break
            if self.judge(entry).included:
                chosen.append(entry)
        return chosen


def select_entries(
    definition: FeedDefinition, candidates: Iterable[StoredEntry]
) -> list[StoredEntry]:
    return Selector(definition).select(candidates)


def searchable_text(entry: StoredEntry) -> str:
    summary = html.unescape(_TAG.sub(" ", entry.summary or ""))
    return f"{entry.title or ''}\n{summary}"
