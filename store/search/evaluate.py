"""A query evaluated on one entry in memory: what the databases answer (tests compare the
three), and which parts of the query matched where (``preview --why``, ``explain``)."""

from __future__ import annotations

from datetime import datetime

from store.search.query import Any, Node, Not, SearchQuery, Term, all_terms
from store.search.text import FIELDS, SearchDocument, key_of_time, sort_key


class _Positions:
    """Where each token occurs in each field of one document."""

    def __init__(self, document: SearchDocument) -> None:
        self.document = document
        self.at: dict[str, dict[str, list[int]]] = {}
        for name in FIELDS:
            index: dict[str, list[int]] = {}
            for position, token in enumerate(document.fields[name]):
                index.setdefault(token, []).append(position)
            self.at[name] = index

    def fields_with(self, term: Term) -> list[str]:
        names = FIELDS if term.field is None else (term.field,)
        return [name for name in names if self._in(name, term)]

    def _in(self, name: str, term: Term) -> bool:
        words, fields = self.document.fields[name], self.at[name]
        *head, last = term.words
        if not head:
            if term.prefix:
                return any(token.startswith(last) for token in fields)
            return last in fields
        for start in fields.get(head[0], ()):
            end = start + len(term.words) - 1
            if end >= len(words) or words[start:end] != list(term.words[:-1]):
                continue
            if words[end] == last or (term.prefix and words[end].startswith(last)):
                return True
        return False


def matches(query: SearchQuery, document: SearchDocument, sort_at: datetime, now: datetime) -> bool:
    """Whether an entry with ``document`` placed at ``sort_at`` matches ``query`` (what the
    databases answer, computed in memory)."""
    return explain_match(query, document, sort_at, now)[0]


def explain_match(
    query: SearchQuery, document: SearchDocument, sort_at: datetime, now: datetime
) -> tuple[bool, str]:
    """(matched, which parts of the query matched where, or what kept it out)."""
    since, before = query.window(now)
    key = sort_key(sort_at, 0)
    if since is not None and key < key_of_time(since):
        return False, f"placed before {since:%Y-%m-%d %H:%M:%S} (since/within)"
    if before is not None and key >= key_of_time(before):
        return False, f"placed at or after {before:%Y-%m-%d %H:%M:%S} (before)"
    positions = _Positions(document)
    found: list[str] = []
    if _evaluate(query.root, positions, found):
        return True, "query matched: " + ", ".join(dict.fromkeys(found))
    return False, "query did not match: " + _why_not(query.root, positions)


def _evaluate(node: Node, positions: _Positions, found: list[str]) -> bool:
    if isinstance(node, Term):
        where = positions.fields_with(node)
        if where:
            found.append(f"{node.describe()} in {'/'.join(where)}")
        return bool(where)
    if isinstance(node, Not):
        return not _evaluate(node.item, positions, [])
    if isinstance(node, Any):
        return any([_evaluate(item, positions, found) for item in node.items])
    mine: list[str] = []
    if all(_evaluate(item, positions, mine) for item in node.items):
        found += mine
        return True
    return False


def _why_not(node: Node, positions: _Positions) -> str:
    if isinstance(node, Term):
        return f"no {node.describe()}"
    if isinstance(node, Not):
        where = "/".join(_fields_of(node.item, positions))
        return f"excluded by -{_describe(node.item)}" + (f" (in {where})" if where else "")
    if isinstance(node, Any):
        return "none of " + ", ".join(_describe(item) for item in node.items)
    failing = [item for item in node.items if not _evaluate(item, positions, [])]
    return "; ".join(_why_not(item, positions) for item in failing)


def _fields_of(node: Node, positions: _Positions) -> list[str]:
    return [name for term in all_terms(node) for name in positions.fields_with(term)]


def _describe(node: Node) -> str:
    if isinstance(node, Term):
        return node.describe()
    if isinstance(node, Not):
        return "-" + _describe(node.item)
    joiner = " OR " if isinstance(node, Any) else " "
    return "(" + joiner.join(_describe(item) for item in node.items) + ")"
