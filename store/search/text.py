"""How entries become searchable words: one tokeniser for documents and queries, both databases.

    text    = NFKD, case-folded, diacritics (combining marks) removed; HTML tags dropped
    tokens  = runs of letters, digits and private-use characters; each Han, Hiragana or
              Katakana letter is a token of its own (those scripts put no spaces between words)
    fields  = title, author, category, source (its id and title), body (summary and content),
              each capped (FIELD_CAPS) so a document has fewer than 16,383 positions

The databases never tokenise text themselves, so they cannot disagree: SQLite's FTS5 gets the
tokens joined by spaces (its unicode61 tokeniser splits exactly there and folds nothing that
is not already folded), PostgreSQL gets a ``tsvector`` literal with the same tokens at the same
positions, fields one position apart so that a phrase never runs from one field into the next.
Characters that SQLite's Unicode tables (6.1) do not count as letters although Python's do
are separators here too (``_NOT_IN_SQLITE``); tests/store/test_search_text.py checks every
code point.
"""

from __future__ import annotations

import html
import math
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import regex

FIELDS = ("title", "author", "category", "source", "body")
FIELD_CAPS = {"title": 200, "author": 100, "category": 200, "source": 50, "body": 15_000}
MAX_TOKEN_LENGTH = 100  # longer "words" (base64, hashes) are not indexed
MAX_POSITIONS_PER_WORD = 256  # PostgreSQL keeps no more positions of one lexeme

_CJK = r"[[\p{Han}\p{Hiragana}\p{Katakana}]&&\p{L}]"
# Letters to Python, not to SQLite; and the private-use characters that mark field words
# (FTS_MARKERS), so that no word of a text or a query contains them.
_NOT_IN_SQLITE = r"\u19b0-\u19c0\u19c8\u19c9\u1cf2\u1cf3\U0010fff0-\U0010fffd"
_TOKEN = regex.compile(
    rf"{_CJK}|[[\p{{L}}\p{{N}}\p{{Co}}]--{_CJK}--[{_NOT_IN_SQLITE}]]+", regex.VERSION1
)
_MARKS = regex.compile(r"\p{Mn}+")
_TAG = re.compile(r"<[^>]*>")

# Key bits: the sort time's whole seconds above, the entry's row id below.
ROW_ID_BITS = 31
ROW_ID_MASK = (1 << ROW_ID_BITS) - 1
_MAX_SECONDS = (1 << 32) - 1


def tokens(text: str) -> list[str]:
    """The searchable words of ``text``, normalised, in order (over-long ones left out)."""
    found = all_tokens(text)
    if found and len(max(found, key=len)) > MAX_TOKEN_LENGTH:
        return [t for t in found if len(t) <= MAX_TOKEN_LENGTH]
    return found


# Punctuation common in English text; all separators, so replacing them with spaces changes
# no token, and lets such text take the quick ASCII path.
_TYPOGRAPHY = ("\u2019", "\u2018", "\u201c", "\u201d", "\u2013", "\u2014", "\u2026", "\xa0")
_ASCII_SEPARATORS = bytes(b if chr(b).isalnum() and b < 128 else 32 for b in range(256))
# The same for UTF-8 text: bytes of non-ASCII characters are kept.
_ASCII_ONLY_SEPARATORS = bytes(b if chr(b).isalnum() or b >= 128 else 32 for b in range(256))


def all_tokens(text: str) -> list[str]:
    """The words of ``text``, normalised, in order, however long."""
    if not text.isascii():
        for mark in _TYPOGRAPHY:
            if mark in text:
                text = text.replace(mark, " ")
    if text.isascii():
        return text.lower().encode().translate(_ASCII_SEPARATORS).decode().split()
    folded = unicodedata.normalize("NFKD", unicodedata.normalize("NFKD", text).casefold())
    plain: str = _MARKS.sub("", folded)
    if plain.isascii():  # Latin letters with accents: plain ASCII once the marks are gone
        return plain.encode().translate(_ASCII_SEPARATORS).decode().split()
    # ASCII separators end every token: split there (quick), look closer only at the pieces
    # that are not ASCII.
    found: list[str] = []
    for piece in plain.encode().translate(_ASCII_ONLY_SEPARATORS).split():
        if piece.isascii():
            found.append(piece.decode())
        else:
            found += _TOKEN.findall(piece.decode())
    return found


def html_text(fragment: str | None) -> str:
    """The text of an HTML fragment: tags become spaces, entities characters."""
    if not fragment:
        return ""
    return (
        html.unescape(_TAG.sub(" ", fragment)) if "<" in fragment or "&" in fragment else fragment
    )


@dataclass(frozen=True, slots=True)
class SearchDocument:
    """The tokens of each field of one entry, as indexed (capped)."""

    fields: dict[str, list[str]]

    def fts_row(self) -> dict[str, str]:
        """The FTS5 columns: each field's tokens joined by single spaces; and ``fields``, the
        words of title, author, category and source again, each behind its field's marker
        (FTS_MARKERS): what a field search looks for, as PostgreSQL's ``:t:word``."""
        row = {name: " ".join(self.fields[name]) for name in FIELDS}
        row["fields"] = " ".join(
            marker + token for name, marker in FTS_MARKERS.items() for token in self.fields[name]
        )
        return row

    def tsvector(self) -> str:
        """A PostgreSQL ``tsvector`` literal. Every token is a lexeme at its position; a token
        of title, author, category or source is also the lexeme ``:t:word`` (``:a:``,
        ``:c:``, ``:s:``) at the same position, what a field search looks for: no query word
        reaches those (a word never starts with ``:``), and a field's words are found by the
        GIN index itself, not by reading each candidate's document. PostgreSQL keeps at most
        256 positions of a lexeme; so do we."""
        positions: dict[str, list[str]] = {}
        at = 0
        for name in FIELDS:
            marker = FIELD_MARKERS.get(name)
            for offset, token in enumerate(self.fields[name], start=at + 1):
                found = positions.get(token)
                if found is None:
                    positions[token] = [str(offset)]
                elif len(found) < MAX_POSITIONS_PER_WORD:
                    found.append(str(offset))
                if marker is not None:
                    positions.setdefault(marker + token, []).append(str(offset))
            at += len(self.fields[name]) + 1  # one empty position between fields
        return " ".join(f"{_quote(lexeme)}:{','.join(p)}" for lexeme, p in positions.items())


# The prefix of each field's words in a field search (store.search.compile): PostgreSQL
# lexemes ':t:word' (no word starts with ':'); FTS5 terms behind a private-use character (a
# token character to FTS5; a separator to our tokeniser, so no word contains one).
FIELD_MARKERS = {"title": ":t:", "author": ":a:", "category": ":c:", "source": ":s:"}
FTS_MARKERS = {
    "title": "\U0010fff0",
    "author": "\U0010fff1",
    "category": "\U0010fff2",
    "source": "\U0010fff3",
}


def _quote(lexeme: str) -> str:
    if "'" in lexeme or "\\" in lexeme:
        lexeme = lexeme.replace("\\", "\\\\").replace("'", "''")
    return f"'{lexeme}'"


def search_document(
    title: str | None,
    summary: str | None,
    content: str | None,
    authors: Sequence[Any],
    categories: Sequence[str],
    source: str,
) -> SearchDocument:
    """The document of one entry; ``source`` is its source's id and title."""
    summary_text, content_text = html_text(summary), html_text(content)
    body = content_text if summary_text in ("", content_text) else f"{summary_text}\n{content_text}"
    texts = {
        "title": title or "",
        "author": "\n".join(author_names(authors)),
        "category": "\n".join(categories),
        "source": source,
        "body": body,
    }
    return SearchDocument({name: tokens(texts[name])[: FIELD_CAPS[name]] for name in FIELDS})


def author_names(authors: Sequence[Any]) -> list[str]:
    """The names of ``authors``: sources.Author values, or as stored (a name alone, or a
    mapping with its name and URL; store.identity.authors_data)."""
    names = []
    for author in authors:
        if isinstance(author, str):
            names.append(author)
        elif isinstance(author, dict):
            names.append(str(author.get("name") or ""))
        else:
            names.append(str(getattr(author, "name", "") or ""))
    return names


def sort_key(sort_at: datetime, row_id: int) -> int:
    """The entry's place in newest-first order as one integer: whole seconds of its sort time
    (clamped to 1970..2106), then its row id. Unique, and the same on both databases."""
    seconds = min(max(math.floor(sort_at.timestamp()), 0), _MAX_SECONDS)
    return (seconds << ROW_ID_BITS) | (row_id & ROW_ID_MASK)


def key_of_time(moment: datetime) -> int:
    """The smallest key of an entry placed in the same whole second as ``moment`` or later:
    date filters compare whole seconds."""
    return sort_key(moment, 0)
