"""Turn the bytes of an upstream document into a frozen :class:`ParsedFeed`.

RSS 0.9x/1.0/2.0 and Atom go through feedparser (which also repairs encodings); JSON Feed
1.0/1.1 is read here, since feedparser 6 does not know it. HTML is sanitised with nh3, which
also makes relative links absolute (against xml:base, else the site's link, else the document
URL); entry links are made absolute and limited to http(s); dates become UTC. Every string
is cleaned and every list and field bounded (sources.text); plain-text fields have their tags
stripped. The work is CPU-bound: callers run it off the event loop, in a worker process with
a deadline (sources.parsing).
"""

from __future__ import annotations

import calendar
import html
import json
import re
import time
import xml.sax
from collections.abc import Iterable, Mapping
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urljoin, urlsplit

import feedparser
import feedparser.mixin
import nh3

from sources.errors import ErrorKind, ParseError
from sources.model import Author, Enclosure, ParsedEntry, ParsedFeed
from sources.text import (
    MAX_AUTHORS,
    MAX_CATEGORIES,
    MAX_CONTENT_HTML,
    MAX_ENCLOSURES,
    MAX_ENTRIES,
    MAX_NAME,
    MAX_SUMMARY_HTML,
    MAX_TEXT,
    MAX_TITLE,
    MAX_URL,
    bounded_id,
    clean_text,
    plain_text,
    too_deep,
)

_HTML_TYPES = ("text/html", "application/xhtml+xml", "html", "xhtml")
_JSON_FEED_PREFIX = "https://jsonfeed.org/version/"


def parse_document(content: bytes, url: str, content_type: str | None = None) -> ParsedFeed:
    """Parse one document fetched from ``url``. Raises ParseError (kind parse or not_a_feed)."""
    if _looks_like_json(content, content_type):
        return parse_json_feed(content, url)
    return _parse_xml_feed(content, url, content_type)


def _looks_like_json(content: bytes, content_type: str | None) -> bool:
    if content_type and "json" in content_type.lower():
        return True
    return content.lstrip(b"\xef\xbb\xbf \t\r\n")[:1] == b"{"


# -- RSS and Atom, through feedparser -------------------------------------------------------


def _parse_xml_feed(content: bytes, url: str, content_type: str | None) -> ParsedFeed:
    # feedparser's own sanitiser and relative-URI resolution are off: nh3 sanitises, and
    # resolves links in the same pass (about a third of feedparser's time, measured).
    headers = {"content-type": content_type} if content_type else {}
    parsed = feedparser.parse(
        content, response_headers=headers, sanitize_html=False, resolve_relative_uris=False
    )
    if not parsed.get("version") and not parsed.entries:
        raise ParseError(*_why_not_a_feed(parsed, content), url=url)
    # Plain dict look-ups from here: FeedParserDict.get maps old key names and raises and
    # catches KeyError inside for every absent key, which was half the cost of the conversion
    # below (measured). Of the keys read here only ``enclosures`` is computed by it.
    info = dict(parsed.feed)
    # Relative links without an xml:base are taken from the site's link (as Miniflux does),
    # else from the document's URL.
    base = _http_url(info.get("link"), url) or url
    return ParsedFeed(
        url=url,
        version=parsed.get("version") or "unknown",
        title=_text(info.get("title")),
        link=_http_url(info.get("link"), url),
        subtitle=_plain(info.get("subtitle")),
        updated=_struct_time(dict.get(info, "updated_parsed")),
        entries=tuple(
            _bounded(_xml_entry(e, base, info, parsed.get("version")))
            for e in parsed.entries[:MAX_ENTRIES]
        ),
        ttl=_plain(info.get("ttl"), MAX_NAME),
        update_period=_plain(info.get("sy_updateperiod"), MAX_NAME),
        update_frequency=_plain(info.get("sy_updatefrequency"), MAX_NAME),
    )


def _why_not_a_feed(parsed: Any, content: bytes) -> tuple[ErrorKind, str]:
    head = content[:2048].lower()
    if b"<html" in head or b"<!doctype html" in head:
        return ErrorKind.NOT_A_FEED, "the document is an HTML page, not a feed"
    problem = parsed.get("bozo_exception")
    if isinstance(problem, xml.sax.SAXException):  # not an encoding or content-type note
        return ErrorKind.PARSE, f"not well-formed: {problem}"
    return ErrorKind.NOT_A_FEED, "no RSS, Atom or JSON Feed found in the document"


def _xml_entry(item: Any, site: str, info: Mapping[str, Any], version: str | None) -> ParsedEntry:
    fields = dict(item)
    entry = _entry(fields, item.get("enclosures") or (), site)
    if not (version or "").startswith("atom") and "@" in str(fields.get("author") or ""):
        entry = replace(entry, authors=_rss_authors(fields))
    return _with_language(entry, _entry_language(fields, info))


# feedparser 6.0.x finds the e-mail address in an RSS author string ("alice@a.example (Alice
# A)") with a pattern that allows top-level domains of two to four letters, and cuts the rest
# of a longer one into the name ("ple (Alice A"). RSS keeps the last author's string as
# written ("author"): its name is taken from there.
_ADDRESS = re.compile(r"<?[\w.+-]+@[\w-]+(?:\.[\w-]+)+>?")


def _rss_authors(e: Mapping[str, Any]) -> tuple[Author, ...]:
    """Author names of an RSS entry without e-mail addresses: "alice@a.example (Alice A)"
    and "Alice A <alice@a.example>" give "Alice A"; a bare address stands for itself."""
    names = [a.get("name") or a.get("email") for a in e.get("authors") or ()]
    written = str(e["author"])
    rest = _ADDRESS.sub("", written).replace("()", "").strip()
    if rest.startswith("(") and rest.endswith(")"):
        rest = rest[1:-1]
    names[-1:] = [_plain(rest) or _plain(written)]
    repaired = (n.split("(", 1)[-1] if n and n.count("(") > n.count(")") else n for n in names)
    return _unique_authors((name, None) for name in repaired)


def _entry(e: dict[str, Any], enclosures: Iterable[Any], site: str) -> ParsedEntry:
    base = _base(e.get("title_detail") or e.get("summary_detail"), site)
    content = _content(e.get("content"), site)
    summary = _html(e.get("summary"), e.get("summary_detail"), site, MAX_SUMMARY_HTML)
    return ParsedEntry(
        id=_clean_id(e.get("id")),
        link=_http_url(e.get("link"), base),
        title=_text(e.get("title")),
        summary=summary,
        content=content,
        published=_struct_time(e.get("published_parsed")),
        updated=_struct_time(e.get("updated_parsed")),  # a plain dict: no fallback
        authors=_authors(e, site),
        categories=_unique(t.get("term") for t in e.get("tags") or ()),
        enclosures=tuple(_enclosures(enclosures, base)),
        origin_link=_http_url(e.get("feedburner_origlink"), base),
    )


def _entry_language(e: Mapping[str, Any], info: Mapping[str, Any]) -> str | None:
    """The entry's xml:lang (on its title, summary or content), else the feed's language."""
    details = [e.get("title_detail"), e.get("summary_detail"), *(e.get("content") or ())]
    for detail in details:
        if detail and detail.get("language"):
            return _language(detail["language"])
    return _language(info.get("language"))


_LANGUAGE = re.compile(r"[a-z0-9]{1,8}(-[a-z0-9]{1,8})*")


def _language(value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    tag = value.strip().lower().replace("_", "-")[:35].rstrip("-")
    return tag if _LANGUAGE.fullmatch(tag) else None


def _with_language(entry: ParsedEntry, language: str | None) -> ParsedEntry:
    return replace(entry, language=language) if language else entry


def _content(items: Iterable[Mapping[str, Any]] | None, site: str) -> str | None:
    if not items:
        return None
    chosen = sorted(items, key=lambda c: c.get("type") not in _HTML_TYPES)[0]
    return _html(chosen.get("value"), chosen, site)


def _base(detail: Mapping[str, Any] | None, site: str) -> str:
    """The base URL in effect for an element: its xml:base if any, else the site's."""
    xml_base = (detail or {}).get("base")
    return (_http_url(xml_base, site) or site) if xml_base else site


def _authors(e: Any, site: str) -> tuple[Author, ...]:
    found = [(a.get("name") or a.get("email"), a.get("href")) for a in e.get("authors") or ()]
    if not any(name for name, _ in found) and e.get("author"):
        found = [(e.get("author"), None)]
    return _unique_authors((name, _http_url(url, site)) for name, url in found)


def _unique_authors(found: Iterable[tuple[Any, str | None]]) -> tuple[Author, ...]:
    """Authors with a name, the first of each name kept (with its URL, if any)."""
    authors: dict[str, Author] = {}
    for name, url in found:
        text = _plain(name, MAX_NAME)
        if text and text not in authors:
            authors[text] = Author(text, url)
    return tuple(authors.values())


def _enclosures(items: Iterable[Mapping[str, Any]], base: str) -> Iterable[Enclosure]:
    for item in items:
        href = _http_url(item.get("href") or item.get("url"), base)
        if href:
            yield Enclosure(href, _media_type(item.get("type")), _int(item.get("length")))


def _struct_time(value: time.struct_time | None) -> datetime | None:
    """feedparser's UTC struct_time as an aware datetime. Callers read ``updated_parsed``
    with ``dict.get``: feedparser's own ``get`` falls back to the published date, warning."""
    if value is None:
        return None
    try:
        return datetime.fromtimestamp(calendar.timegm(value), UTC)
    except (OverflowError, ValueError, OSError):
        return None


# -- JSON Feed ------------------------------------------------------------------------------


def parse_json_feed(content: bytes, url: str) -> ParsedFeed:
    """JSON Feed 1.0 and 1.1 (https://jsonfeed.org/version/1.1)."""
    try:
        # Numbers as text: an id of thousands of digits is an id, not an int to convert.
        document = json.loads(content.decode("utf-8-sig"), parse_int=str)
    except (UnicodeDecodeError, ValueError) as exc:
        raise ParseError(ErrorKind.PARSE, f"invalid JSON: {exc}", url=url) from exc
    except RecursionError as exc:
        raise ParseError(ErrorKind.TOO_COMPLEX, "JSON nested too deeply", url=url) from exc
    version = document.get("version") if isinstance(document, dict) else None
    if not isinstance(version, str) or not version.startswith(_JSON_FEED_PREFIX):
        raise ParseError(ErrorKind.NOT_A_FEED, "JSON document is not a JSON Feed", url=url)
    base = _http_url(document.get("home_page_url"), url) or url
    items = [i for i in _list(document.get("items")) if isinstance(i, dict)][:MAX_ENTRIES]
    return ParsedFeed(
        url=url,
        version="json" + clean_text(version.removeprefix(_JSON_FEED_PREFIX)).replace(".", "")[:9],
        title=_text(document.get("title")),
        link=_http_url(document.get("home_page_url"), url),
        subtitle=_plain(document.get("description")),
        entries=tuple(
            _bounded(
                _with_language(
                    _json_item(item, base),
                    _language(item.get("language")) or _language(document.get("language")),
                )
            )
            for item in items
        ),
    )


def _json_item(item: Mapping[str, Any], base: str) -> ParsedEntry:
    if item.get("content_html"):
        content = _sanitise(str(item["content_html"]), base)
    elif item.get("content_text"):
        content = _escape_text(str(item["content_text"]), MAX_CONTENT_HTML)
    else:
        content = None
    authors = _list(item.get("authors")) or [item.get("author")]
    attachments = _list(item.get("attachments"))
    summary = _plain(item.get("summary"))
    return ParsedEntry(
        id=_clean_id(item.get("id")),
        link=_http_url(item.get("url"), base) or _http_url(item.get("external_url"), base),
        title=_text(item.get("title")),
        summary=html.escape(summary, quote=False) if summary else None,
        content=content,
        published=_iso_date(item.get("date_published")),
        updated=_iso_date(item.get("date_modified")),
        authors=_unique_authors(
            (a.get("name"), _http_url(a.get("url"), base)) for a in authors if isinstance(a, dict)
        ),
        categories=_unique(str(t) if isinstance(t, int) else t for t in _list(item.get("tags"))),
        enclosures=tuple(
            Enclosure(href, _media_type(a.get("mime_type")), _int(a.get("size_in_bytes")))
            for a in attachments[: MAX_ENCLOSURES * 2]
            if isinstance(a, dict) and (href := _http_url(a.get("url"), base))
        ),
    )


def _iso_date(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value)
        return parsed.astimezone(UTC) if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    except (ValueError, OverflowError):  # not ISO 8601; out of range once made UTC
        return None


def _list(value: Any) -> list[Any]:
    """A JSON array as a list; anything else (a number, a string, an object) as empty."""
    return value if isinstance(value, list) else []


def _bounded(entry: ParsedEntry) -> ParsedEntry:
    """``entry`` with its lists cut to the limits of sources.text."""
    return replace(
        entry,
        authors=entry.authors[:MAX_AUTHORS],
        categories=entry.categories[:MAX_CATEGORIES],
        enclosures=entry.enclosures[:MAX_ENCLOSURES],
    )


# -- small helpers ------------------------------------------------------------------------


def _html(
    value: str | None,
    detail: Mapping[str, Any] | None,
    site: str,
    limit: int = MAX_CONTENT_HTML,
) -> str | None:
    """Sanitised HTML from a feedparser value, escaping it first when it is plain text."""
    if not value:
        return None
    kind = (detail or {}).get("type", "text/html")
    if kind == "text/plain":
        return _escape_text(value, limit)
    return _sanitise(value, _base(detail, site), limit) or None


# What nh3 (html5ever) changes in text: markup, entities, CR (newlines are normalised), NUL
# (dropped) and the no-break space (written as &nbsp;). Text without them comes back as is.
_MARKUP = re.compile("[<>&\r\x00\xa0]")
_URL_ATTRIBUTES = frozenset({"href", "src", "cite", "poster", "longdesc"})


def _sanitise(value: str, base: str, limit: int = MAX_CONTENT_HTML) -> str:
    """nh3's allow-list of tags and attributes, with relative links made absolute. At most
    ``limit`` characters are read; markup nested too deeply is kept as its text only."""

    def absolute(element: str, attribute: str, url: str) -> str | None:
        if attribute in _URL_ATTRIBUTES:
            return _joined(base, url.strip())
        return url

    value = clean_text(value[:limit])
    if too_deep(value):
        return _escape_text(plain_text(value, limit) or "", limit)
    if not _MARKUP.search(value):  # plain text: nh3 would give it back unchanged
        return value.strip()
    if "=" not in value:  # no attributes at all: nothing to resolve
        return nh3.clean(value).strip()
    return nh3.clean(value, attribute_filter=absolute).strip()


def _escape_text(value: str, limit: int) -> str:
    return html.escape(clean_text(value.strip()[:limit]), quote=False)


def _text(value: Any) -> str | None:
    """Plain text for titles, whatever type the upstream declares: tags dropped, entities
    decoded once (as Miniflux does), at most MAX_TITLE characters."""
    return plain_text(value, MAX_TITLE)


def _plain(value: Any, limit: int = MAX_TEXT) -> str | None:
    """Plain text of at most ``limit`` characters (sources.text.plain_text)."""
    return plain_text(value, limit)


def _clean_id(value: Any) -> str | None:
    if value is None or isinstance(value, dict | list):
        return None
    text = clean_text(str(value)).strip()
    return bounded_id(text) if text else None


_URL_SPACE = re.compile(r"\s")


def _http_url(value: Any, base: str) -> str | None:
    if not isinstance(value, str) or not value.strip() or len(value) > MAX_URL:
        return None
    absolute = _joined(base, value.strip())
    if absolute is None or len(absolute) > MAX_URL or _URL_SPACE.search(absolute):
        return None
    parts = urlsplit(absolute)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return None
    return absolute


def _joined(base: str, url: str) -> str | None:
    """``url`` made absolute against ``base``; None when either cannot be parsed."""
    try:
        joined: str = urljoin(base, url)
        urlsplit(joined).port  # noqa: B018  (a ValueError for a bad port or IPv6 literal)
    except ValueError:
        return None
    return joined if clean_text(joined) == joined else None


_MEDIA_TYPE = re.compile(r"[\w.+-]+/[\w.+-]+(\s*;.*)?")


def _media_type(value: Any) -> str | None:
    """A MIME type (``type/subtype``, parameters allowed), else None."""
    text = _plain(value, MAX_NAME)
    return text if text and _MEDIA_TYPE.fullmatch(text) else None


def _int(value: Any) -> int | None:
    try:
        number = int(str(value).strip()[:20])
    except (TypeError, ValueError):
        return None
    return number if 0 <= number < 2**63 else None


def _unique(values: Iterable[Any]) -> tuple[str, ...]:
    seen: dict[str, None] = {}
    for value in values:
        text = _plain(value, MAX_NAME)
        if text:
            seen.setdefault(text, None)
    return tuple(seen)


# -- feedparser's category list ---------------------------------------------------------------

_TAGS_READ = 2 * MAX_CATEGORIES


def _bound_feedparser_tags() -> None:
    """feedparser compares each category of an entry with every earlier one before adding it
    (quadratic in their number); past ``_TAGS_READ`` it now ignores the rest, which are beyond
    MAX_CATEGORIES anyway."""
    mixin = feedparser.mixin._FeedParserMixin
    add_tag = mixin._add_tag

    def bounded(self: Any, term: Any, scheme: Any, label: Any) -> None:
        if len(self._get_context().get("tags") or ()) < _TAGS_READ:
            add_tag(self, term, scheme, label)

    mixin._add_tag = bounded


_bound_feedparser_tags()
