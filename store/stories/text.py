"""Text features of an entry: normalised tokens, word shingles, content terms. Pure."""

from __future__ import annotations

import html
import re
import unicodedata

_TAG = re.compile(r"<[^>]*>")
_WORD = re.compile(r"\w+")
_POSSESSIVE = re.compile(r"['’]s\b")

# Words that carry no story identity (function words and newsroom filler).
_STOPWORDS = """a about after against all also amid an and any are as at be been before being but by
    can could did do does during each for from had has have he her here his how i if in into
    is it its just may more most new no not now of off on once one only or other our out over
    own said say says she should so some such than that the their them then there these they
    this those through to too under until up very via vs was we were what when where which
    while who why will with would you your"""
STOPWORDS = frozenset(_STOPWORDS.split())


def normalise_text(text: str) -> str:
    """Plain, case-folded text: tags dropped, entities decoded, Unicode compatibility form."""
    return unicodedata.normalize("NFKC", strip_tags(text)).casefold()


def strip_tags(text: str) -> str:
    return html.unescape(_TAG.sub(" ", text))


def normalise_spaces(text: str) -> str:
    return " ".join(text.split())


def tokenize(text: str) -> list[str]:
    return _WORD.findall(_POSSESSIVE.sub("", normalise_text(text)))


def shingles(tokens: list[str], size: int) -> set[str]:
    """Word ``size``-grams; a text shorter than that is its own single shingle."""
    if len(tokens) < size:
        return {" ".join(tokens)} if tokens else set()
    return {" ".join(tokens[i : i + size]) for i in range(len(tokens) - size + 1)}


def content_terms(tokens: list[str]) -> frozenset[str]:
    """The words that can tell one story from another: no stopwords, no single letters."""
    return frozenset(t for t in tokens if len(t) > 1 and t not in STOPWORDS)
