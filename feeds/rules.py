"""Include / exclude rules compiled to matchers: keywords, phrases, regular expressions and
``any`` / ``all`` groups, each over chosen parts of an entry.

Regular expressions run on the ``regex`` engine with two time limits: each search stops
after :data:`REGEX_TIMEOUT`, and all the searches of one selection (one rendered page, one
``preview``) share a :class:`Budget`; once it is spent, regular expressions are not run at
all. A search that was cut off or not run never lets an entry in: an include rule counts as
not matching, an exclude rule as matching (the verdict says "timed out"). Patterns are
checked before they are compiled (feeds.patterns), so compiling never hangs either.
"""

from __future__ import annotations

import html
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import regex

from feeds.errors import FeedsError
from feeds.model import DEFAULT_FIELDS, Rule
from feeds.patterns import PatternError, check_pattern
from store.model import StoredEntry

REGEX_TIMEOUT = 0.05  # seconds per search of one field of one entry
SELECTION_BUDGET = 1.0  # seconds of regular-expression searching per selection
_TAG = re.compile(r"<[^>]*>")
_WORD = re.compile(r"\w+")


class RuleError(FeedsError):
    """A rule cannot be compiled (an invalid regular expression, an empty group)."""


@dataclass(frozen=True, slots=True)
class Match:
    """The outcome of one rule on one entry: ``rule`` describes what matched, or why not."""

    matched: bool
    rule: str
    timed_out: bool = False


class Budget:
    """The time the regular expressions of one selection may take together."""

    def __init__(
        self, seconds: float = SELECTION_BUDGET, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.seconds = seconds
        self._clock = clock
        self._deadline = clock() + seconds
        self.cut_off = 0  # searches stopped by a time limit or not run for want of time

    def next_timeout(self) -> float:
        """The time limit of the next search; 0 or less: do not run it."""
        return min(REGEX_TIMEOUT, self._deadline - self._clock())

    @property
    def spent(self) -> bool:
        return self._deadline - self._clock() <= 0


class EntryText:
    """The searchable parts of one entry, computed on first use."""

    def __init__(self, entry: StoredEntry, source_titles: Mapping[str, str]) -> None:
        self.entry = entry
        self._source_titles = source_titles
        self._cache: dict[str, str] = {}

    def field(self, name: str) -> str:
        if name not in self._cache:
            self._cache[name] = self._compute(name)
        return self._cache[name]

    def _compute(self, name: str) -> str:
        entry = self.entry
        if name == "title":
            return entry.title or ""
        if name == "summary":
            return html_text(entry.summary)
        if name == "content":
            return html_text(entry.content)
        if name == "author":
            return "\n".join(a.name for a in entry.authors)
        if name == "categories":
            return "\n".join(entry.categories)
        if name == "link":
            return entry.link or ""
        if name == "source":
            return f"{entry.source_id}\n{self._source_titles.get(entry.source_id, '')}"
        raise RuleError(f"unknown field {name!r}")

    def word_count(self) -> int:
        """Words of the body: the content if there is one, else the summary."""
        body = self.field("content") or self.field("summary")
        return len(_WORD.findall(body))


def html_text(fragment: str | None) -> str:
    return html.unescape(_TAG.sub(" ", fragment or ""))


Matcher = Callable[[EntryText, Budget], Match]


def compile_rule(rule: Rule | str, fields: tuple[str, ...] | None = None) -> Matcher:
    """A matcher for ``rule``; ``fields`` is the group's, used when the rule names none."""
    if isinstance(rule, str):
        rule = Rule("keyword", rule)
    where = rule.fields or fields or DEFAULT_FIELDS
    if rule.kind in ("any", "all"):
        return _group(rule, where)
    search = _searcher(rule)
    description = rule.describe()

    def match(text: EntryText, budget: Budget) -> Match:
        for name in where:
            try:
                if search(text.field(name), budget):
                    return Match(True, description)
            except TimeoutError:
                budget.cut_off += 1
                return Match(False, f"{description} timed out", timed_out=True)
        return Match(False, description)

    return match


def _group(rule: Rule, fields: tuple[str, ...]) -> Matcher:
    if not rule.rules:
        raise RuleError(f"an {rule.kind!r} group needs at least one rule")
    members = [compile_rule(r, fields) for r in rule.rules]
    wanted_all = rule.kind == "all"
    description = rule.describe()

    def match(text: EntryText, budget: Budget) -> Match:
        for member in members:
            outcome = member(text, budget)
            if outcome.timed_out:
                return Match(False, outcome.rule, timed_out=True)
            if outcome.matched != wanted_all:  # one hit decides "any", one miss decides "all"
                return Match(not wanted_all, description)
        return Match(wanted_all, description)

    return match


def _searcher(rule: Rule) -> Callable[[str, Budget], bool]:
    if rule.kind == "keyword":
        pattern = keyword_pattern(rule.pattern, plurals=True)
        return lambda text, _: pattern.search(text) is not None
    if rule.kind == "phrase":
        pattern = keyword_pattern(rule.pattern, plurals=False)
        return lambda text, _: pattern.search(text) is not None
    if rule.kind == "regex":
        return _regex_searcher(compile_regex(rule.pattern))
    raise RuleError(f"unknown rule kind {rule.kind!r}")


def _regex_searcher(compiled: regex.Pattern[str]) -> Callable[[str, Budget], bool]:
    def search(text: str, budget: Budget) -> bool:
        timeout = budget.next_timeout()
        if timeout <= 0:
            raise TimeoutError("the selection's time budget is spent")
        return compiled.search(text, timeout=timeout, concurrent=True) is not None

    return search


def keyword_pattern(keyword: str, *, plurals: bool) -> re.Pattern[str]:
    """Whole words, case-insensitive, any white space between words; ``plurals`` also
    accepts ``s``, ``es`` or ``'s`` at the end."""
    words = r"\s+".join(re.escape(word) for word in keyword.split())
    ending = r"(?:s|es|'s)?" if plurals else ""
    return re.compile(rf"(?<!\w){words}{ending}(?!\w)", re.IGNORECASE)


def compile_regex(pattern: str, *, strict: bool = False) -> regex.Pattern[str]:
    """Case-insensitive unless the pattern says ``(?-i)``; RuleError when invalid or too big
    to compile quickly, and with ``strict`` (the config check) also when it can backtrack
    catastrophically (feeds.patterns)."""
    try:
        check_pattern(pattern, regex.IGNORECASE, shape=strict)
        return regex.compile(pattern, regex.IGNORECASE)
    except regex.error as exc:
        raise RuleError(f"invalid regular expression {pattern!r}: {exc}") from exc
    except PatternError as exc:
        raise RuleError(f"regular expression {pattern!r} refused: {exc}") from exc
