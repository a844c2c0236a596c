"""The search query language: parse a query into a tree and check it (store.search.evaluate
runs one on an entry in memory).

    lenovo server              both words (anywhere: title, author, category, source, body)
    "server plant"             these words next to each other, in this order, in one field
    lenovo OR dell             either (OR binds looser than the implicit AND)
    lenovo -dell  NOT dell     the first, not the second (a query needs a word not negated)
    (lenovo OR dell) server    parentheses group
    title:tianjin  author:…    one field: title, author, source, category (tag is the same)
    title:"ai server"  title:(ai OR gpu)
    serv*                      words starting with "serv" (three characters at least)
    since:2026-11-01 before:2026-12-01 within:3d   when the entry is placed (whole seconds,
                               UTC); only at the top level, never negated or inside OR

A word is tokenised like the documents (store.search.text): ``Lenovo's`` is the phrase
"lenovo s", ``covid-19`` the phrase "covid 19", and a word without letters or digits is
ignored. Nothing the user writes reaches a database as syntax: the tree is compiled to each
database's query language from tokens (store.search.compile).

Every way a query can be wrong raises :class:`QueryError`, with a message for the user.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from store.errors import StoreError
from store.search.text import MAX_TOKEN_LENGTH, all_tokens

MAX_DEPTH = 8  # nested parentheses
MIN_PREFIX = 3  # characters before a '*'
_FIELD_NAMES = {"title": "title", "author": "author", "source": "source", "category": "category"}
_FIELD_NAMES["tag"] = "category"
_DATE_FIELDS = ("since", "before", "within")
_WITHIN = re.compile(r"^(\d{1,5})([hdw])$")
_UNITS = {"h": timedelta(hours=1), "d": timedelta(days=1), "w": timedelta(weeks=1)}
# Control characters (not tab or line ends), surrogates, U+FFFE/U+FFFF: never in a query (a
# query is shown in feeds, and XML cannot carry these).
_UNPRINTABLE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff\ufffe\uffff]")
_FIELD_WORD = re.compile(r"^([A-Za-z]+):(.*)$", re.DOTALL)


class QueryError(StoreError):
    """A search query cannot be used as written; the message says why."""


@dataclass(frozen=True, slots=True)
class Limits:
    """How big a query may be: characters, and words (a phrase counts each of its words)."""

    max_length: int = 500
    max_terms: int = 20


@dataclass(frozen=True, slots=True)
class Term:
    """A word or phrase: ``words`` in this order, in ``field`` (None: any field); ``prefix``:
    the last word is a prefix. ``written`` is how the query wrote it (for explanations)."""

    words: tuple[str, ...]
    field: str | None = None
    prefix: bool = False
    written: str = ""

    def describe(self) -> str:
        text = " ".join(self.words) + ("*" if self.prefix else "")
        quoted = f'"{text}"'
        return f"{self.field}:{quoted}" if self.field else quoted


@dataclass(frozen=True, slots=True)
class All:
    items: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Any:
    items: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Not:
    item: Node


Node = Term | All | Any | Not


@dataclass(frozen=True, slots=True)
class SearchQuery:
    """A checked query: the tree of words, and the time window at the top level."""

    text: str
    root: Node
    since: datetime | None = None
    before: datetime | None = None
    within: timedelta | None = None
    terms: tuple[Term, ...] = field(default=(), compare=False)

    def window(self, now: datetime) -> tuple[datetime | None, datetime | None]:
        """(since, before) at ``now``: ``within`` moves ``since`` forward."""
        since = self.since
        if self.within is not None:
            start = now - self.within
            since = start if since is None or start > since else since
        return since, self.before


def parse_query(text: str, limits: Limits = Limits()) -> SearchQuery:
    """Parse and check ``text``; :class:`QueryError` says what is wrong."""
    if len(text) > limits.max_length:
        raise QueryError(
            f"the query is {len(text)} characters long; at most {limits.max_length} are allowed"
        )
    if _UNPRINTABLE.search(text):
        raise QueryError("the query contains control characters")
    parser = _Parser(list(_lex(text)))
    root, dates = parser.parse()
    if root is None:
        raise QueryError("the query has no words to search for")
    terms = tuple(all_terms(root))
    count = sum(len(t.words) for t in terms)
    if count > limits.max_terms:
        raise QueryError(f"the query has {count} words; at most {limits.max_terms} are allowed")
    if not _positive(root):
        raise QueryError("a query needs at least one word that is not negated")
    return SearchQuery(text, root, *_window(dates), terms=terms)


# -- lexing ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Token:
    kind: str  # "(", ")", "-", "OR", "AND", "word", "phrase", "field"
    text: str = ""


_SPECIAL = '()"'


def _lex(text: str) -> Iterator[_Token]:
    i, n = 0, len(text)
    while i < n:
        char = text[i]
        if char.isspace():
            i += 1
        elif char in "()":
            yield _Token(char)
            i += 1
        elif char == '"':
            end = text.find('"', i + 1)
            if end < 0:
                raise QueryError(f"unbalanced quote: the phrase at character {i + 1} never ends")
            yield _Token("phrase", text[i + 1 : end])
            i = end + 1
        elif char == "-" and i + 1 < n and not text[i + 1].isspace():
            yield _Token("-")
            i += 1
        else:
            end = i
            while end < n and not text[end].isspace() and text[end] not in _SPECIAL:
                end += 1
            yield from _word(text[i:end])
            i = end


def _word(word: str) -> Iterator[_Token]:
    if word in ("OR", "AND"):
        yield _Token(word)
        return
    if word == "NOT":
        yield _Token("-")
        return
    match = _FIELD_WORD.match(word)
    name = match.group(1).lower() if match else ""
    if match and (name in _FIELD_NAMES or name in _DATE_FIELDS):
        yield _Token("field", name)
        if match.group(2):
            yield _Token("word", match.group(2))
        return
    yield _Token("word", word)


# -- parsing -----------------------------------------------------------------------------------


class _Parser:
    """Recursive descent over the tokens; builds the tree and collects the top-level dates."""

    def __init__(self, tokens: list[_Token]) -> None:
        self.tokens = tokens
        self.at = 0
        self.depth = 0
        self.dates: list[tuple[str, str]] = []

    def parse(self) -> tuple[Node | None, list[tuple[str, str]]]:
        root = self._or(None, top=True)
        if self.at < len(self.tokens):
            raise QueryError("unbalanced parentheses: a ')' has no '('")
        return root, self.dates

    def _peek(self) -> _Token | None:
        return self.tokens[self.at] if self.at < len(self.tokens) else None

    def _take(self) -> _Token:
        token = self.tokens[self.at]
        self.at += 1
        return token

    def _or(self, in_field: str | None, top: bool = False) -> Node | None:
        alternatives = [self._and(in_field, top)]
        while (token := self._peek()) is not None and token.kind == "OR":
            self._take()
            alternatives.append(self._and(in_field, top=False))
        if len(alternatives) > 1 and self.dates and top:
            raise QueryError("since:, before: and within: cannot be combined with OR")
        if len(alternatives) > 1 and any(a is None for a in alternatives):
            raise QueryError("OR needs words on both sides")
        return _group(Any, alternatives)

    def _and(self, in_field: str | None, top: bool) -> Node | None:
        items: list[Node | None] = []
        while (token := self._peek()) is not None and token.kind not in (")", "OR"):
            if token.kind == "AND":
                self._take()
                continue
            items.append(self._unary(in_field, top))
        return _group(All, items)

    def _unary(self, in_field: str | None, top: bool) -> Node | None:
        token = self._take()
        if token.kind == "-":
            if self._peek() is None or self._peek().kind in (")", "OR", "AND"):  # type: ignore[union-attr]
                raise QueryError("'-' or NOT must be followed by a word, a phrase or a group")
            item = self._unary(in_field, top=False)
            if isinstance(item, Not):
                raise QueryError("a negated word cannot be negated again")
            return Not(item) if item is not None else None
        return self._primary(token, in_field, top)

    def _primary(self, token: _Token, in_field: str | None, top: bool) -> Node | None:
        if token.kind == "(":
            return self._parenthesised(in_field)
        if token.kind == ")":
            raise QueryError("unbalanced parentheses: a ')' has no '('")
        if token.kind == "phrase":
            return _term(token.text, in_field, phrase=True)
        if token.kind == "word":
            return _term(token.text, in_field, phrase=False)
        return self._field(token.text, in_field, top)

    def _parenthesised(self, in_field: str | None) -> Node | None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise QueryError(f"parentheses are nested more than {MAX_DEPTH} deep")
        inner = self._or(in_field)
        if self._peek() is None:
            raise QueryError("unbalanced parentheses: a '(' is never closed")
        self._take()
        self.depth -= 1
        return inner

    def _field(self, name: str, in_field: str | None, top: bool) -> Node | None:
        value = self._peek()
        if value is None or value.kind not in ("word", "phrase", "("):
            raise QueryError(f"{name}: needs a value right after the colon")
        if name in _DATE_FIELDS:
            if not top or value.kind != "word":
                raise QueryError(
                    f"{name}: takes one value and only at the top level of the query "
                    "(not negated, not inside parentheses or OR)"
                )
            self.dates.append((name, self._take().text))
            return None
        if in_field is not None:
            raise QueryError(f"{name}: cannot be used inside {in_field}:(...)")
        token = self._take()
        if token.kind == "(":
            return self._parenthesised(_FIELD_NAMES[name])
        return _term(token.text, _FIELD_NAMES[name], phrase=token.kind == "phrase")


def _term(text: str, in_field: str | None, *, phrase: bool) -> Term | None:
    prefix = not phrase and text.endswith("*")
    words = all_tokens(text.rstrip("*") if prefix else text)
    if any(len(word) > MAX_TOKEN_LENGTH for word in words):
        raise QueryError(f"a word is longer than {MAX_TOKEN_LENGTH} characters")
    if not words:
        return None
    if prefix and len(words[-1]) < MIN_PREFIX:
        raise QueryError(f"{text!r}: a prefix needs at least {MIN_PREFIX} letters before the '*'")
    return Term(tuple(words), in_field, prefix, text)


def _group(kind: type[All] | type[Any], items: list[Node | None]) -> Node | None:
    kept: list[Node] = []
    for item in items:
        if item is None:
            continue
        kept += item.items if isinstance(item, kind) else [item]
    if not kept:
        return None
    return kept[0] if len(kept) == 1 else kind(tuple(kept))


def _positive(node: Node) -> bool:
    """Whether the index can find the node's entries: a word, a phrase, an AND with at least
    one such item, an OR of such items. An OR with a negated alternative is refused."""
    if isinstance(node, Term):
        return True
    if isinstance(node, Not):
        if not _positive(node.item):
            raise QueryError("a negated word cannot be negated again")
        return False
    if isinstance(node, Any):
        if not all(_positive(item) for item in node.items):
            raise QueryError("each side of an OR needs a word that is not negated")
        return True
    return any([_positive(item) for item in node.items])


def wanted_terms(node: Node) -> list[Term]:
    """The terms an entry is found by (not the negated ones): what a snippet highlights."""
    if isinstance(node, Term):
        return [node]
    if isinstance(node, Not):
        return []
    return [term for item in node.items for term in wanted_terms(item)]


def all_terms(node: Node) -> Iterator[Term]:
    """Every term of the tree, negated ones too."""
    if isinstance(node, Term):
        yield node
    elif isinstance(node, Not):
        yield from all_terms(node.item)
    else:
        for item in node.items:
            yield from all_terms(item)


def _window(
    dates: list[tuple[str, str]],
) -> tuple[datetime | None, datetime | None, timedelta | None]:
    found: dict[str, object] = {}
    for name, value in dates:
        if name in found:
            raise QueryError(f"{name}: is given twice")
        found[name] = _within(value) if name == "within" else _date(name, value)
    since, before = found.get("since"), found.get("before")
    if isinstance(since, datetime) and isinstance(before, datetime) and before <= since:
        raise QueryError("before: must be later than since:")
    return since, before, found.get("within")  # type: ignore[return-value]


def _date(name: str, value: str) -> datetime:
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise QueryError(f"{name}:{value} is not a date such as 2026-11-01") from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _within(value: str) -> timedelta:
    match = _WITHIN.match(value)
    if match is None:
        raise QueryError(f"within:{value} is not a duration such as 12h, 3d or 2w")
    return int(match.group(1)) * _UNITS[match.group(2)]
