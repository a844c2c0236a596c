"""The static check of rule patterns (feeds.patterns): what backtracks catastrophically or
takes the compiler too long is refused, quickly; common patterns pass."""

from __future__ import annotations

import time

import pytest
import regex

from feeds.patterns import MAX_LENGTH, PatternError, check_pattern
from feeds.rules import RuleError, compile_regex

ACCEPTED = [
    r"\bH[12]00\b",
    r"(?-i)^Sponsored",
    r"\p{Lu}{2,}",
    r"GPU|LLM|data ?cent(?:er|re)",
    r"(?:cat|car)+",
    r"(?:\d{2})+",
    r"([a-z]|\d)+",
    r"(?:\s|,)+",
    r"(?:\w+,)++",
    r"(?>\w+,)+",
    r"(?:https?://)?example\.(?:com|org)/",
    r"\w+@\w+\.com",
    r"(?:foo){e<=1}",
    r"(?:a{100}){100}",
    r"(a|b)*c",
]
REFUSED = [
    (r"(a|aa)+$", "alternation"),
    (r"^(a|aa)+$", "alternation"),
    (r"(?:x|\w)*$", "alternation"),
    (r"(ab|a)*", "alternation"),
    (r"(?:|a)+", "alternation"),
    (r"(?:.|x)+", "alternation"),
    (r"(?:Cat|cAT)+", "alternation"),
    (r"(a+)+$", "nested quantifier"),
    (r"(\w+\s?)+$", "nested quantifier"),
    (r"(?:.*,)+", "nested quantifier"),
    (r"(a*)*", "nested quantifier"),
    (r"(?:(a|aa)+!)++", "alternation"),
    (r"(?R)?x", "recursive"),
    (r"(?:(?:(?:a{100}){100}){100}){100}", "multiply out"),
    (r"((((((a{100}){100}){100}){100}){100}){100})", "multiply out"),
    ("a" * (MAX_LENGTH + 1), "longer than"),
    ("(" * 500 + ")" * 500, "nested"),
]


@pytest.mark.parametrize("pattern", ACCEPTED)
def test_common_patterns_pass(pattern: str) -> None:
    check_pattern(pattern)
    compile_regex(pattern, strict=True)


@pytest.mark.parametrize(("pattern", "why"), REFUSED)
def test_patterns_that_can_hang_are_refused(pattern: str, why: str) -> None:
    started = time.monotonic()
    with pytest.raises(PatternError, match=why):
        check_pattern(pattern)
    assert time.monotonic() - started < 5  # a guard against hanging, not a speed target


def test_refused_patterns_really_backtrack() -> None:
    """The shapes refused are the slow ones: each of these takes the whole time limit."""
    for pattern, text in [(r"(?:x|\w)*$", "x" * 30 + "!"), (r"(a|aa)+$", "a" * 40 + "!")]:
        with pytest.raises(TimeoutError):
            regex.compile(pattern, regex.IGNORECASE).search(text, timeout=0.05)


def test_nested_counted_repeats_are_not_compiled_at_run_time_either() -> None:
    with pytest.raises(RuleError, match="multiply out"):
        compile_regex(r"(?:(?:(?:(?:a{100}){100}){100}){100})")
    compile_regex(r"(a|aa)+$")  # only the config check refuses shapes; searches are bounded


def test_an_invalid_pattern_is_still_invalid() -> None:
    with pytest.raises(RuleError, match="invalid regular expression"):
        compile_regex("(unclosed", strict=True)
