"""Full-text search over the stored entries: the query language, the index on both databases.

text.py     the tokeniser and the document of an entry (shared by both databases)
query.py    the query language: parse, check, evaluate in memory (explanations)
compile.py  a query tree as FTS5 (SQLite) or tsquery (PostgreSQL) text
index.py    the index tables, keeping them in step with entries, reading them
reader.py   pages of matching entries, newest first, within a time budget
"""

from typing import TYPE_CHECKING

from sources.lazy import lazy_exports

if TYPE_CHECKING:
    from store.search.evaluate import explain_match, matches
    from store.search.query import Limits, QueryError, SearchQuery, Term, parse_query, wanted_terms
    from store.search.reader import SearchTimeoutError
    from store.search.text import SearchDocument, html_text, search_document, tokens

__all__ = [
    "Limits",
    "QueryError",
    "SearchDocument",
    "SearchQuery",
    "SearchTimeoutError",
    "Term",
    "explain_match",
    "html_text",
    "matches",
    "parse_query",
    "search_document",
    "tokens",
    "wanted_terms",
]

# Each name is imported on first use (sources/lazy.py); the type checker reads the imports above.
if not TYPE_CHECKING:
    __getattr__, __dir__ = lazy_exports(__name__)
