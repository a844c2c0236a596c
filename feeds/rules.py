"""Include / exclude rules compiled to matchers: keywords, phrases, regular expressions and
``any`` / ``all`` groups, each over chosen parts of an entry.

Regular expressions run on the ``regex`` engine with a time limit per search
(:data:`REGEX_TIMEOUT`): a pattern that backtracks catastrophically is cut off and counts as
"no match" (the verdict says so), so a bad pattern never hangs the server.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import regex

from feeds.errors import FeedsError
from feeds.model import DEFAULT_FIELDS, Rule
from store.model import StoredEntry

REGEX_TIMEOUT = 0.05  # seconds per search of one field of one entry
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


Matcher = Callable[[EntryText], Match]


def compile_rule(rule: Rule | str, fields: tuple[str, ...] | None = None) -> Matcher:
    """A matcher for ``rule``; ``fields`` is the group's, used when the rule names none."""
    if isinstance(rule, str):
        rule = Rule("keyword", rule)
    where = rule.fields or fields or DEFAULT_FIELDS
    if rule.kind in ("any", "all"):
        return _group(rule, where)
    search = _searcher(rule)
    description = rule.describe()

    def match(text: EntryText) -> Match:
        for name in where:
            try:
                if search(text.field(name)):
                    return Match(True, description)
            except TimeoutError:
                return Match(False, f"{description} timed out", timed_out=True)
        return Match(False, description)

    return match


def _group(rule: Rule, fields: tuple[str, ...]) -> Matcher:
    if not rule.rules:
        raise RuleError(f"an {rule.kind!r} group needs at least one rule")
    members = [compile_rule(r, fields) for r in rule.rules]
    wanted_all = rule.kind == "all"
    description = rule.describe()

    def match(text: EntryText) -> Match:
        for member in members:
            outcome = member(text)
            if outcome.timed_out:
                return Match(False, outcome.rule, timed_out=True)
            if outcome.matched != wanted_all:  # one hit decides "any", one miss decides "all"
                return Match(not wanted_all, description)
        return Match(wanted_all, description)

    return match


def _searcher(rule: Rule) -> Callable[[str], bool]:
    if rule.kind == "keyword":
        pattern = keyword_pattern(rule.pattern, plurals=True)
        return lambda text: pattern.search(text) is not None
    if rule.kind == "phrase":
        pattern = keyword_pattern(rule.pattern, plurals=False)
        return lambda text: pattern.search(text) is not None
    if rule.kind == "regex":
        compiled = compile_regex(rule.pattern)
        return lambda text: compiled.search(text, timeout=REGEX_TIMEOUT) is not None
    raise RuleError(f"unknown rule kind {rule.kind!r}")


def keyword_pattern(keyword: str, *, plurals: bool) -> re.Pattern[str]:
    """Whole words, case-insensitive, any white space between words; ``plurals`` also
    accepts ``s``, ``es`` or ``'s`` at the end."""
    words = r"\s+".join(re.escape(word) for word in keyword.split())
    ending = r"(?:s|es|'s)?" if plurals else ""
    return re.compile(rf"(?<!\w){words}{ending}(?!\w)", re.IGNORECASE)


def compile_regex(pattern: str) -> regex.Pattern[str]:
    """Case-insensitive unless the pattern says ``(?-i)``; RuleError when invalid."""
    try:
        return regex.compile(pattern, regex.IGNORECASE)
    except regex.error as exc:
        raise RuleError(f"invalid regular expression {pattern!r}: {exc}") from exc
