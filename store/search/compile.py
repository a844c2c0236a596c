"""A checked query tree (store.search.query) in each database's own query language.

Built from tokens only (letters and digits, store.search.text), each one quoted, so nothing a
user writes can be read as syntax by either database; the strings are passed as bound
parameters. The two translations mean the same thing term for term:

    word / phrase     FTS5  {title author category source body} : "w1 w2"      (* for a prefix)
                      PG    'w1' <-> 'w2'                                      (:* for a prefix)
    title: author: category: source:
                      FTS5 {fields} : "<U+10FFF0>w" (FTS_MARKERS)  PG lexemes ':t:w' (':a:',
                      the field's words as terms of their own      ':c:', ':s:'; text.py)
    a b / a OR b      FTS5 (a AND b) / (a OR b)                    PG (a & b) / (a | b)
    a -b              FTS5 (a) NOT (b)                             PG (a & !(b))
"""

from __future__ import annotations

from store.search.query import Any, Node, Not, Term
from store.search.text import FIELD_MARKERS, FTS_MARKERS

_ALL_COLUMNS = "{title author category source body}"


def to_fts5(node: Node) -> str:
    """An FTS5 MATCH expression (SQLite) for a positive node."""
    if isinstance(node, Term):
        columns, marker = _ALL_COLUMNS, ""
        if node.field is not None:
            columns, marker = "{fields}", FTS_MARKERS[node.field]
        phrase = '"' + " ".join(marker + w.replace('"', '""') for w in node.words) + '"'
        return f"{columns} : {phrase}{' *' if node.prefix else ''}"
    if isinstance(node, Any):
        return "(" + " OR ".join(to_fts5(item) for item in node.items) + ")"
    if isinstance(node, Not):
        raise ValueError("a negated node is compiled by the AND around it")
    wanted = [to_fts5(item) for item in node.items if not isinstance(item, Not)]
    unwanted = [to_fts5(item.item) for item in node.items if isinstance(item, Not)]
    text = "(" + " AND ".join(wanted) + ")"
    return text + "".join(f" NOT {item}" for item in unwanted)


def to_tsquery(node: Node) -> str:
    """A ``tsquery`` literal (PostgreSQL) for a positive node."""
    if isinstance(node, Term):
        return "(" + " <-> ".join(_lexeme(node, i) for i in range(len(node.words))) + ")"
    if isinstance(node, Any):
        return "(" + " | ".join(to_tsquery(item) for item in node.items) + ")"
    if isinstance(node, Not):
        return "!" + to_tsquery(node.item)
    return "(" + " & ".join(to_tsquery(item) for item in node.items) + ")"


def _lexeme(term: Term, index: int) -> str:
    word = FIELD_MARKERS[term.field] + term.words[index] if term.field else term.words[index]
    quoted = "'" + word.replace("\\", "\\\\").replace("'", "''") + "'"
    return f"{quoted}:*" if term.prefix and index == len(term.words) - 1 else quoted
