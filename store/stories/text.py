"""The terms of an entry that tell news events apart, with what kind of word each is. Pure.

    terms = entry_terms(title, summary)   # {term: flags}
    flags: TITLE (it is in the headline), NAME (capitalised where a sentence does not start:
           a company, a place, a person), NUMBER (a figure, an amount, a date, a percentage)

Common words (function words, newsroom filler, weekdays) are left out: they are what two
different events' copy shares. A headline in Title Case capitalises every word, so its
words are names only where the summary capitalises them too (flags of a term are the union
of its occurrences). Numbers are normalised ("60,000" and "60000" are one term).
"""

from __future__ import annotations

import html
import re
import unicodedata
import zlib
from collections.abc import Iterable
from functools import lru_cache

TITLE, NAME, NUMBER = 1, 2, 4

_TAG = re.compile(r"<[^>]*>")
# A figure (with separators, a currency sign, a percent sign) or a word (letters first).
_TOKEN = re.compile(r"[$€£¥]?\d[\d,.]*\d%?|[$€£¥]?\d%?|[^\W\d_][\w'’-]*")
_SENTENCE_END = frozenset('.!?:;"“‘(«—–')
_COMMON_WORDS = """
a about above across after again against ago ahead all almost along already also although
always am amid among an and announced another any anyone are around as at away back be became
because become been before began being below best better between big billion both brief
briefly but by call called came can cannot chief city come comes coming company companies
could country cut day days deal did do does done down due during each early earlier east end
even ever every expected far few first five following for former four from full further gave
get gets give given go going good got government great group had half has have having he her
here high his home how however i if in include includes including into is it its just key
known large last late later least left less like little local long lower made main major make
makes making many market may me million more most move much must my national near nearly need
new news next no north not now number of off officials on once one only open or other others
our out over own part people per percent place plan plans points put rather report reported
reports said same say says second see seen set several she should show shows since six so
some south state states still such take taken talks than that the their them then there
these they third this those three through time times to today told too top two under until
up us use used very was way we week weeks well were west what when where whether which while
who whom why will with within without work world would year years yesterday yet you your
monday tuesday wednesday thursday friday saturday sunday morning afternoon evening night
overnight update updates latest breaking live exclusive according added spokesperson
spokesman spokeswoman statement via vs
ceo cfo cto coo ipo gdp tv uk eu un usa inc ltd corp co plc llc pm am ap afp
"""
COMMON = frozenset(_COMMON_WORDS.split())


def plain_text(text: str) -> str:
    """Tags dropped, entities decoded, Unicode compatibility form (case kept)."""
    if text.isascii() and "<" not in text and "&" not in text:
        return text  # what the rest would give back
    return unicodedata.normalize("NFKC", html.unescape(_TAG.sub(" ", text)))


def entry_terms(title: str, text: str) -> dict[str, int]:
    """Each term of the entry with its flags (see the module docstring)."""
    terms: dict[str, int] = {}
    for field, words in ((TITLE, plain_text(title)), (0, plain_text(text))):
        for term, flags in _field_terms(words, headline=field == TITLE):
            terms[term] = terms.get(term, 0) | flags | field
    return terms


def _field_terms(text: str, *, headline: bool) -> Iterable[tuple[str, int]]:
    found = [(m.group(), m.start()) for m in _TOKEN.finditer(text)]
    names_here = not (headline and _title_case(found))
    for word, start in found:
        if word.isascii() and word.isalnum() and word.islower():  # most words: plain ones
            if len(word) > 1 and word not in COMMON:
                yield word, 0
            continue
        if word[0].isdigit() or not word[0].isalpha():
            yield word.replace(",", "").rstrip("."), NUMBER
            continue
        word = word.replace("’", "'")
        if word.endswith("'s"):
            word = word[:-2]
        word = word.strip("'-")
        low = word.casefold()
        if len(low) < 2 or low in COMMON:
            continue
        yield low, NAME if _is_name(word, text, start, names_here) else 0


def _title_case(found: list[tuple[str, int]]) -> bool:
    """Whether a headline capitalises most of its uncommon words (then capitals say nothing)."""
    upper = lower = 0
    for word, _ in found:
        if word[0].isalpha() and word.casefold() not in COMMON:
            if word[0].isupper():
                upper += 1
            else:
                lower += 1
    return upper > lower


def _is_name(word: str, text: str, start: int, names_here: bool) -> bool:
    if len(word) > 1 and word.isupper():
        return True  # an acronym: ECB, HBM4, NASA
    if not names_here or not word[0].isupper():
        return False
    at = start - 1
    while at >= 0 and text[at].isspace():
        at -= 1
    return at >= 0 and text[at] not in _SENTENCE_END


@lru_cache(maxsize=1 << 16)
def term_hash(term: str) -> int:
    """A term's 32-bit key (CRC-32 of its UTF-8): what the index and the store keep."""
    return zlib.crc32(term.encode("utf-8", "surrogatepass"))
