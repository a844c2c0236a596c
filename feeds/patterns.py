"""A static check of a rule's regular expression, before it is compiled: refuse what could
take the compiler or a search (nearly) forever.

    pattern -> the `regex` engine's own parser (its syntax tree, before any optimisation)
    size:   repeats multiply: nested counted repeats (a{100}){100}... that come to more than
            MAX_SIZE elements are refused, since compiling expands them
    shape:  under a repeat that may run more than once and does not hold what it matched
            (not possessive ++, not inside an atomic group (?>...)):
            - a variable repeat (a+, a*, a?, a{1,9}): nested quantifiers, (a+)+
            - an alternation whose branches can start with the same character, or one of
              which can match nothing: (a|aa)+, (x|\\w)*
            can match one text in exponentially many ways, and is refused; so are recursive
            patterns ((?R), (?&name)), which the check cannot follow.

The shape rules are the "star height" rule of safe-regex plus branch overlap: conservative
(``(?:\\w+,)+`` is refused though it is safe) and the message names the way out. Searches
stay cut off by time (feeds.rules) for whatever passes.

This reads ``regex._regex_core``, the engine's private parser; tests/feeds/test_patterns.py
pins the behaviour, so an upgrade of `regex` that changes it fails there first.
"""

from __future__ import annotations

from typing import Any

import regex
from regex import _regex_core as core

MAX_LENGTH = 1000  # characters of one pattern
MAX_SIZE = 10_000  # pattern elements once counted repeats are multiplied out
# Characters tried when asking whether two branches can start alike.
_SAMPLE = [*range(0x09, 0x0E), *range(0x20, 0x250), 0xA0, 0x2028, 0x4E00, 0x1F600]


class PatternError(ValueError):
    """A pattern that could take too long to compile or to search."""


def check_pattern(pattern: str, flags: int = regex.IGNORECASE, *, shape: bool = True) -> None:
    """Raise PatternError when ``pattern`` is too long, too big or (with ``shape``) can
    backtrack without bound (see the module docstring); regex.error when it is not a
    regular expression."""
    if len(pattern) > MAX_LENGTH:
        raise PatternError(f"longer than {MAX_LENGTH} characters")
    tree = _parse(pattern, flags)
    size = _size(tree)
    if size > MAX_SIZE:
        raise PatternError(
            f"its repeats multiply out to more than {MAX_SIZE} elements: nested counted "
            "repeats such as (a{100}){100} take too long to compile"
        )
    problem = _backtracking(tree, under_repeat=False) if shape else None
    if problem:
        raise PatternError(
            f"{problem} can backtrack catastrophically; make the outer repeat possessive "
            "(++, *+) or atomic (?>...), or remove the ambiguity"
        )


def _parse(pattern: str, flags: int) -> Any:
    """The syntax tree, the way regex.compile reads it (global flags found on the way)."""
    global_flags = flags
    try:
        while True:
            source = core.Source(pattern)
            info = core.Info(global_flags, source.char_type, {})
            source.ignore_space = bool(info.flags & regex.VERBOSE)
            try:
                tree = core._parse_pattern(source, info)
                break
            except core._UnscopedFlagSet:
                global_flags = info.global_flags
    except RecursionError:
        raise PatternError("nested too deeply") from None
    if not source.at_end():
        raise regex.error("unbalanced parenthesis", pattern, source.pos)
    return tree


def _children(node: Any) -> list[Any]:
    if isinstance(node, core.Sequence):
        return list(node.items)
    if isinstance(node, core.Branch):
        return list(node.branches)
    if isinstance(node, core.Conditional | core.LookAroundConditional):
        found = [node.yes_item, node.no_item]
        if isinstance(node, core.LookAroundConditional):
            found.append(node.subpattern)
        return [n for n in found if n is not None]
    subpattern = getattr(node, "subpattern", None)
    return [subpattern] if subpattern is not None else []


def _size(node: Any) -> int:
    if isinstance(node, core.GreedyRepeat):
        count: int = node.max_count if node.max_count is not None else max(node.min_count, 1)
        return max(count, 1) * _size(node.subpattern)
    if isinstance(node, core.String):
        return len(node.characters) or 1
    children = _children(node)
    total = 0 if children else 1
    for child in children:
        total += _size(child)
        if total > MAX_SIZE:
            break
    return total


def _backtracking(node: Any, under_repeat: bool) -> str | None:
    """What makes ``node`` ambiguous under a repeat, or None."""
    if isinstance(node, core.CallGroup):
        return "a recursive pattern"
    if isinstance(node, core.PossessiveRepeat | core.Atomic):
        # It never gives back what it matched, so the repeats around it cannot split a
        # text differently; its own inside can still backtrack while it matches.
        return _first_problem(_children(node), False)
    if isinstance(node, core.GreedyRepeat):  # greedy or lazy
        if under_repeat and node.min_count != node.max_count:
            return "a nested quantifier"
        many = node.max_count is None or node.max_count > 1
        return _backtracking(node.subpattern, under_repeat or many)
    if isinstance(node, core.Branch) and under_repeat and _ambiguous(node.branches):
        return "an alternation under a repeat whose branches can match the same text"
    return _first_problem(_children(node), under_repeat)


def _first_problem(nodes: list[Any], under_repeat: bool) -> str | None:
    for child in nodes:
        problem = _backtracking(child, under_repeat)
        if problem:
            return problem
    return None


def _ambiguous(branches: list[Any]) -> bool:
    """Whether two branches can start with the same character, or one can be empty;
    literal branches only when one is a prefix of another (cat|car is fine, a|aa is not)."""
    words = [_literal(branch) for branch in branches]
    if all(word is not None for word in words):
        folded = [word.casefold() for word in words if word is not None]
        return any(
            a.startswith(b) or b.startswith(a)
            for i, a in enumerate(folded)
            for b in folded[i + 1 :]
        )
    firsts = []
    for branch in branches:
        first, empty = _first(branch)
        if empty:
            return True
        firsts.append(first)
    return any(_overlap(a, b) for i, a in enumerate(firsts) for b in firsts[i + 1 :])


def _literal(node: Any) -> str | None:
    if isinstance(node, core.String):
        return "".join(map(chr, node.characters))
    if isinstance(node, core.Character) and node.positive:
        return chr(node.value)
    if isinstance(node, core.Sequence):
        parts = [_literal(item) for item in node.items]
        return "".join(p for p in parts if p is not None) if None not in parts else None
    return None


Starts = list[Any] | None  # nodes with .matches(code) a match can start with; None: anything


def _first(node: Any) -> tuple[Starts, bool]:
    """What a match of ``node`` can start with, and whether it can be empty."""
    if isinstance(node, core.Character | core.Property | core.Range | core.SetBase):
        return [node], False
    if isinstance(node, core.String):
        return ([core.Character(node.characters[0])], False) if node.characters else ([], True)
    if isinstance(node, core.ZeroWidthBase | core.LookAround):
        return [], True
    if isinstance(node, core.Sequence):
        return _first_of_sequence(list(node.items))
    if isinstance(node, core.Branch):
        parts = [_first(branch) for branch in node.branches]
        return _union([starts for starts, _ in parts]), any(empty for _, empty in parts)
    if isinstance(node, core.GreedyRepeat):
        starts, empty = _first(node.subpattern)
        return starts, empty or node.min_count == 0
    if isinstance(node, core.Group | core.Atomic):
        return _first(node.subpattern)
    return None, False  # any character: ., a back-reference, fuzzy matching...


def _first_of_sequence(items: list[Any]) -> tuple[Starts, bool]:
    found: list[Starts] = []
    for item in items:
        starts, empty = _first(item)
        found.append(starts)
        if not empty:
            return _union(found), False
    return _union(found), True


def _union(parts: list[Starts]) -> Starts:
    if any(part is None for part in parts):
        return None
    return [node for part in parts if part for node in part]


def _overlap(first: Starts, second: Starts) -> bool:
    if first is None or second is None:
        return True
    for code in _SAMPLE:
        char = chr(code)
        codes = {code, ord(char.lower()[0]), ord(char.upper()[0])}
        if _starts_with(first, codes) and _starts_with(second, codes):
            return True
    return False


def _starts_with(starts: list[Any], codes: set[int]) -> bool:
    return any(node.matches(code) for node in starts for code in codes)
