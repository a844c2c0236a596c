"""The tokeniser: what a word is, and that SQLite's FTS5 keeps each of our tokens whole."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime

from store.search.text import MAX_TOKEN_LENGTH, search_document, sort_key, tokens


def test_words_are_folded_and_split_like_a_reader_expects() -> None:
    assert tokens("Lenovo's AI-server hub, 2027!") == ["lenovo", "s", "ai", "server", "hub", "2027"]
    assert tokens("Café Zürich STRAẞE Ｆｕｌｌ ﬁnance") == [
        "cafe",
        "zurich",
        "strasse",
        "full",
        "finance",
    ]
    assert tokens("联想扩大天津AI服务器") == [
        "联",
        "想",
        "扩",
        "大",
        "天",
        "津",
        "ai",
        "服",
        "务",
        "器",
    ]
    assert tokens("snake_case e-mail @user #tag") == ["snake", "case", "e", "mail", "user", "tag"]
    assert tokens("x" * MAX_TOKEN_LENGTH + " " + "y" * (MAX_TOKEN_LENGTH + 1)) == ["x" * 100]


def test_a_document_strips_html_and_does_not_repeat_a_summary_equal_to_the_content() -> None:
    doc = search_document(
        "T", "<p>Fish &amp; chips</p>", "<p>Fish &amp; chips</p>", ["A B"], [], "s S"
    )
    assert doc.fields["body"] == ["fish", "chips"]
    assert doc.tsvector() == (
        "'t':1 ':t:t':1 'a':3 ':a:a':3 'b':4 ':a:b':4 's':7,8 ':s:s':7,8 'fish':10 'chips':11"
    )


def test_the_sort_key_orders_by_time_then_row_and_clamps() -> None:
    early = datetime(2026, 11, 1, 12, 0, 0, 900_000, tzinfo=UTC)
    assert (
        sort_key(early, 7)
        < sort_key(early, 8)
        < sort_key(datetime(2026, 11, 1, 12, 0, 1, tzinfo=UTC), 1)
    )
    assert sort_key(datetime(1900, 1, 1, tzinfo=UTC), 5) == 5


def test_fts5_keeps_every_token_whole_and_distinct() -> None:
    """Every code point our tokeniser keeps, in a word, is one FTS5 token, and no two of our
    tokens fold to the same FTS5 term: FTS5 then finds exactly what PostgreSQL finds."""
    words = set()
    for code in range(0x110000):
        if not 0xD800 <= code <= 0xDFFF:
            words.update(tokens(f"x{chr(code)}y"))
    db = sqlite3.connect(":memory:")
    db.execute("CREATE VIRTUAL TABLE t USING fts5(x, tokenize = 'unicode61 remove_diacritics 0')")
    db.execute("CREATE VIRTUAL TABLE v USING fts5vocab(t, 'row')")
    ordered = sorted(words)
    for start in range(0, len(ordered), 2000):
        db.execute("INSERT INTO t (x) VALUES (?)", (" ".join(ordered[start : start + 2000]),))
    terms = {row[0] for row in db.execute("SELECT term FROM v")}
    assert len(words) > 250_000
    assert terms == words
