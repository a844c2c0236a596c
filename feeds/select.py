"""Which stored entries a curated feed carries: a pure function over stored values.

Evaluation order, per candidate entry (newest first, from the feed's sources); the first
step that decides, decides:

1. ``sources``: an entry of another source is out;
2. ``max_age``: an entry placed earlier than ``now - max_age`` is out;
3. ``languages``: an entry whose known language is not listed is out (unknown passes);
4. ``min_words``: an entry whose body has fewer words is out;
4b. ``query``: an entry the search query does not match is out (store.search.query);
5. ``exclude``: the first rule that matches puts the entry out;
6. ``include``: with no include rules the entry is in; else the first rule that matches
   puts it in, and an entry no rule matches is out;
7. ``limit``: the first ``limit`` entries that are in are the feed.

Rules are evaluated at read time, so a changed rule applies to entries already stored.
Regular expressions share a time budget per selection (feeds.rules.Budget): one that runs
out of time never lets an entry in.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

from feeds.model import FeedDefinition
from feeds.rules import Budget, EntryText, RuleError, compile_rule
from store.model import StoredEntry
from store.search import (
    Limits,
    QueryError,
    SearchQuery,
    explain_match,
    parse_query,
    search_document,
)

# A configured feed's query is the operator's, not the public's: generous limits.
FEED_QUERY_LIMITS = Limits(max_length=10_000, max_terms=500)


@dataclass(frozen=True, slots=True)
class Verdict:
    """Whether an entry is in a feed, and the rule that decided it."""

    included: bool
    reason: str


class Selector:
    """A compiled feed definition: ``judge`` one entry, or ``select`` a whole feed.

    ``now`` is needed only by ``max_age``; ``source_titles`` only by rules on ``source``.
    """

    def __init__(
        self, definition: FeedDefinition, source_titles: Mapping[str, str] | None = None
    ) -> None:
        self.definition = definition
        self._sources = frozenset(definition.source_ids)
        self._include = [compile_rule(r) for r in definition.include]
        self._exclude = [compile_rule(r) for r in definition.exclude]
        self._languages = tuple(language.lower() for language in definition.languages)
        self.source_titles: Mapping[str, str] = dict(source_titles or {})
        self.query = feed_query(definition)

    def matches_query(self, entry: StoredEntry, now: datetime | None) -> tuple[bool, str]:
        """Whether the feed's query matches ``entry``, and which parts of it did (or why
        not); (True, "") for a feed without a query."""
        if self.query is None:
            return True, ""
        title = self.source_titles.get(entry.source_id, "")
        document = search_document(
            entry.title,
            entry.summary,
            entry.content,
            entry.authors,
            entry.categories,
            f"{entry.source_id} {title}",
        )
        return explain_match(self.query, document, entry.sort_at, now or entry.sort_at)

    @property
    def has_rules(self) -> bool:
        """Whether judging reads the entries' text (worth running off the event loop)."""
        return bool(self._include or self._exclude or self.definition.min_words)

    def judge(
        self, entry: StoredEntry, now: datetime | None = None, budget: Budget | None = None
    ) -> Verdict:
        """``budget``: shared by the judgements of one selection; by default a new one."""
        verdict = self._judge_metadata(entry, now)
        if verdict is not None:
            return verdict
        text = EntryText(entry, self.source_titles)
        if self.definition.min_words and text.word_count() < self.definition.min_words:
            return Verdict(False, f"fewer than {self.definition.min_words} words (min_words)")
        matched, why = self.matches_query(entry, now)
        if not matched:
            return Verdict(False, why)
        verdict = self._judge_rules(text, budget or Budget())
        return Verdict(verdict.included, f"{why}; {verdict.reason}") if why else verdict

    def _judge_metadata(self, entry: StoredEntry, now: datetime | None) -> Verdict | None:
        definition = self.definition
        if entry.source_id not in self._sources:
            return Verdict(False, f"source {entry.source_id!r} is not one of the feed's")
        too_old = definition.max_age is not None and now is not None
        if too_old and entry.sort_at < now - definition.max_age:  # type: ignore[operator]
            return Verdict(False, "older than max_age")
        if self._languages and entry.language and not self._language_ok(entry.language):
            return Verdict(False, f"language {entry.language!r} is not one of the feed's")
        return None

    def _language_ok(self, language: str) -> bool:
        """``en`` admits ``en``, ``en-gb``, ``en-us``; ``en-gb`` admits only ``en-gb``."""
        return any(language == want or language.startswith(want + "-") for want in self._languages)

    def _judge_rules(self, text: EntryText, budget: Budget) -> Verdict:
        for rule in self._exclude:
            outcome = rule(text, budget)
            if outcome.matched:
                return Verdict(False, f"exclude {outcome.rule} matched")
            if outcome.timed_out:
                return Verdict(False, f"exclude {outcome.rule}: left out undecided")
        if not self._include:
            return Verdict(True, "no include rules: every entry of its sources")
        timed_out = []
        for rule in self._include:
            outcome = rule(text, budget)
            if outcome.matched:
                return Verdict(True, f"include {outcome.rule} matched")
            if outcome.timed_out:
                timed_out.append(outcome.rule)
        if timed_out:
            return Verdict(False, f"no include rule matched ({'; '.join(timed_out)})")
        return Verdict(False, "no include rule matched")

    def select(
        self,
        candidates: Iterable[StoredEntry],
        room: int | None = None,
        now: datetime | None = None,
        budget: Budget | None = None,
    ) -> list[StoredEntry]:
        """The first ``room`` (default: the feed's ``limit``) candidates that pass, in order."""
        room = self.definition.limit if room is None else room
        budget = budget or Budget()
        chosen: list[StoredEntry] = []
        for entry in candidates:
            if len(chosen) >= room:
                break
            if self.judge(entry, now, budget).included:
                chosen.append(entry)
        return chosen


def feed_query(definition: FeedDefinition) -> SearchQuery | None:
    """The feed's parsed query (None without one); RuleError when it cannot be parsed."""
    if definition.query is None:
        return None
    try:
        return parse_query(definition.query, FEED_QUERY_LIMITS)
    except QueryError as exc:
        raise RuleError(f"feed {definition.id!r}: query: {exc}") from exc


def select_entries(
    definition: FeedDefinition, candidates: Iterable[StoredEntry], now: datetime | None = None
) -> list[StoredEntry]:
    return Selector(definition).select(candidates, now=now)
