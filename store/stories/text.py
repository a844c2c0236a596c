"""Text features of an entry: normalised tokens, word shingles, content terms. Pure."""

from __future__ import annotations

import html
import re
import unicodedata
import zlib
from array import array
from collections.abc import Iterator
from itertools import pairwise

_TAG = re.compile(r"<[^>]*>")
_WORD = re.compile(r"\w+")
_POSSESSIVE = re.compile(r"['’]s\b")
# Every byte that is not an ASCII word character (what \w matches in ASCII text) to a space.
_ASCII_WORDS = bytes(c if c < 128 and _WORD.fullmatch(chr(c)) else 32 for c in range(256))
# Non-word characters that often are the only non-ASCII ones in a text (quotes, dashes, ...,
# as NFKC leaves them): tokenising makes them spaces first (tests pin that none is a word's).
MARKS = "’‘“”„«»—–•·→€£©®°★"

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
    """The words of the normalised text (:func:`normalise_text`), possessive 's dropped."""
    words = _words(text)
    return words.decode("ascii").split() if isinstance(words, bytes) else words


def tokenize_utf8(text: str) -> list[bytes]:
    """``tokenize(text)``, each token UTF-8 encoded (what shingles are hashed as)."""
    words = _words(text)
    return words.split() if isinstance(words, bytes) else encode_tokens(words)


def tokenize_both(text: str) -> tuple[list[str], list[bytes]]:
    """``tokenize(text)`` and ``tokenize_utf8(text)``, for one normalisation of the text."""
    words = _words(text)
    if isinstance(words, bytes):
        return words.decode("ascii").split(), words.split()
    return words, encode_tokens(words)


def encode_tokens(tokens: list[str]) -> list[bytes]:
    """Each token UTF-8 encoded (surrogates passed), in one encode: tokens hold no spaces."""
    if not tokens:
        return []
    return " ".join(tokens).encode("utf-8", "surrogatepass").split(b" ")


def _words(text: str) -> bytes | list[str]:
    r"""The tokens of ``text``: ``\w+`` of the normalised text without possessive 's.

    Most texts take a short cut that gives the same tokens, as one byte string of words
    separated by spaces: a text in ASCII with no tag or entity is only lower-cased by
    :func:`normalise_text` (NFKC leaves ASCII alone; casefold is lower on it), and once the
    normalised text is ASCII (after the common non-word marks, which only ever separate
    words, are made spaces), ``\w`` is [0-9A-Za-z_]: mapping every other byte to a space
    and splitting finds the same words as ``\w+``. Else the tokens, as a list.
    """
    if text.isascii() and "<" not in text and "&" not in text:
        text = text.lower()
    else:
        text = normalise_text(text)
    if "'" in text or "’" in text:
        text = _POSSESSIVE.sub("", text)
    if not text.isascii():
        for mark in MARKS:
            if mark in text:
                text = text.replace(mark, " ")
        if not text.isascii():
            return _WORD.findall(text)
    return text.encode("ascii").translate(_ASCII_WORDS)


def shingles(tokens: list[str], size: int) -> set[str]:
    """Word ``size``-grams; a text shorter than that is its own single shingle."""
    if len(tokens) < size:
        return {" ".join(tokens)} if tokens else set()
    return {" ".join(tokens[i : i + size]) for i in range(len(tokens) - size + 1)}


def hash_shingles(tokens: list[bytes], size: int, into: array[int]) -> int:
    """Appends the CRC-32 of each of :func:`shingles` (of the UTF-8 tokens) to ``into``;
    returns how many. A shingle repeated in the text is hashed again: a MinHash only takes
    minimums, so repeats do not change it."""
    if len(tokens) < size:
        if not tokens:
            return 0
        into.append(zlib.crc32(b" ".join(tokens)))
        return 1
    if size == 2:  # the default, and the cheapest way to pair the words
        grams: Iterator[tuple[bytes, ...]] = pairwise(tokens)
    else:
        grams = zip(*(tokens[i:] for i in range(size)), strict=False)  # the shorter tails end it
    into.extend(map(zlib.crc32, map(b" ".join, grams)))
    return len(tokens) - size + 1


def content_terms(tokens: list[str]) -> frozenset[str]:
    """The words that can tell one story from another: no stopwords, no single letters."""
    return frozenset(t for t in tokens if len(t) > 1 and t not in STOPWORDS)
