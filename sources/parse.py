"""Turn the bytes of an upstream document into a frozen :class:`ParsedFeed`.

RSS 0.9x/1.0/2.0 and Atom go through feedparser (which also repairs encodings); JSON Feed
1.0/1.1 is read here, since feedparser 6 does not know it. HTML is sanitised with nh3, which
also makes relative links absolute (against xml:base, else the site's link, else the document
URL); entry links are made absolute and limited to http(s); dates become UTC.
The work is CPU-bound: callers run it off the event loop.
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
import nh3

from sources.errors import ErrorKind, ParseError
from sources.model import Author, Enclosure, ParsedEntry, ParsedFeed

_TAG = re.compile(r"<[^>]*>")
_SPACE = re.compile(r"\s+")
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
        title=_text(info.get("title"), info.get("title_detail")),
        link=_http_url(info.get("link"), url),
        subtitle=_text(info.get("subtitle"), info.get("subtitle_detail")),
        updated=_struct_time(dict.get(info, "updated_parsed")),
        entries=tuple(_xml_entry(e, base, info, parsed.get("version")) for e in parsed.entries),
        ttl=_plain(info.get("ttl")),
        update_period=_plain(info.get("sy_updateperiod")),
        update_frequency=_plain(info.get("sy_updatefrequency")),
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
    summary = _html(e.get("summary"), e.get("summary_detail"), site)
    return ParsedEntry(
        id=_clean_id(e.get("id")),
        link=_http_url(e.get("link"), base),
        title=_text(e.get("title"), e.get("title_detail")),
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


def _language(value: Any) -> str | None:
    if not isinstance(value, str) or not value.strip():
        return None
    return value.strip().lower().replace("_", "-")[:35]


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
    return urljoin(site, xml_base) if xml_base else site


def _authors(e: Any, site: str) -> tuple[Author, ...]:
    found = [(a.get("name") or a.get("email"), a.get("href")) for a in e.get("authors") or ()]
    if not any(name for name, _ in found) and e.get("author"):
        found = [(e.get("author"), None)]
    return _unique_authors((name, _http_url(url, site)) for name, url in found)


def _unique_authors(found: Iterable[tuple[Any, str | None]]) -> tuple[Author, ...]:
    """Authors with a name, the first of each name kept (with its URL, if any)."""
    authors: dict[str, Author] = {}
    for name, url in found:
        text = _plain(name)
        if text and text not in authors:
            authors[text] = Author(text, url)
    return tuple(authors.values())


def _enclosures(items: Iterable[Mapping[str, Any]], base: str) -> Iterable[Enclosure]:
    for item in items:
        href = _http_url(item.get("href") or item.get("url"), base)
        if href:
            yield Enclosure(href, item.get("type") or None, _int(item.get("length")))


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
        document = json.loads(content.decode("utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ParseError(ErrorKind.PARSE, f"invalid JSON: {exc}", url=url) from exc
    if not isinstance(document, dict) or not str(document.get("version", "")).startswith(
        _JSON_FEED_PREFIX
    ):
        raise ParseError(ErrorKind.NOT_A_FEED, "JSON document is not a JSON Feed", url=url)
    base = _http_url(document.get("home_page_url"), url) or url
    items = [i for i in document.get("items") or () if isinstance(i, dict)]
    return ParsedFeed(
        url=url,
        version="json" + document["version"].removeprefix(_JSON_FEED_PREFIX).replace(".", ""),
        title=_plain(document.get("title")),
        link=_http_url(document.get("home_page_url"), url),
        subtitle=_plain(document.get("description")),
        entries=tuple(
            _with_language(
                _json_item(item, base),
                _language(item.get("language")) or _language(document.get("language")),
            )
            for item in items
        ),
    )


def _json_item(item: Mapping[str, Any], base: str) -> ParsedEntry:
    if item.get("content_html"):
        content = _sanitise(str(item["content_html"]), base)
    elif item.get("content_text"):
        content = _escape_text(str(item["content_text"]))
    else:
        content = None
    authors = item.get("authors") or ([item["author"]] if item.get("author") else [])
    attachments = item.get("attachments") or ()
    return ParsedEntry(
        id=_clean_id(item.get("id")),
        link=_http_url(item.get("url"), base) or _http_url(item.get("external_url"), base),
        title=_plain(item.get("title")),
        summary=_escape_text(str(item["summary"])) if item.get("summary") else None,
        content=content,
        published=_iso_date(item.get("date_published")),
        updated=_iso_date(item.get("date_modified")),
        authors=_unique_authors(
            (a.get("name"), _http_url(a.get("url"), base)) for a in authors if isinstance(a, dict)
        ),
        categories=_unique(str(t) for t in item.get("tags") or ()),
        enclosures=tuple(
            Enclosure(href, a.get("mime_type"), _int(a.get("size_in_bytes")))
            for a in attachments
            if isinstance(a, dict) and (href := _http_url(a.get("url"), base))
        ),
    )


def _iso_date(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed.astimezone(UTC) if parsed.tzinfo else parsed.replace(tzinfo=UTC)


# -- small helpers ------------------------------------------------------------------------


def _html(value: str | None, detail: Mapping[str, Any] | None, site: str) -> str | None:
    """Sanitised HTML from a feedparser value, escaping it first when it is plain text."""
    if not value:
        return None
    kind = (detail or {}).get("type", "text/html")
    if kind == "text/plain":
        return _escape_text(value)
    return _sanitise(value, _base(detail, site)) or None


# What nh3 (html5ever) changes in text: markup, entities, CR (newlines are normalised), NUL
# (dropped) and the no-break space (written as &nbsp;). Text without them comes back as is.
_MARKUP = re.compile("[<>&\r\x00\xa0]")
_URL_ATTRIBUTES = frozenset({"href", "src", "cite", "poster", "longdesc"})


def _sanitise(value: str, base: str) -> str:
    """nh3's allow-list of tags and attributes, with relative links made absolute."""

    def absolute(element: str, attribute: str, url: str) -> str:
        if attribute in _URL_ATTRIBUTES:
            return urljoin(base, url.strip())
        return url

    if not _MARKUP.search(value):  # plain text: nh3 would give it back unchanged
        return value.strip()
    if "=" not in value:  # no attributes at all: nothing to resolve
        return nh3.clean(value).strip()
    return nh3.clean(value, attribute_filter=absolute).strip()


def _escape_text(value: str) -> str:
    return html.escape(value.strip(), quote=False)


def _text(value: str | None, detail: Mapping[str, Any] | None = None) -> str | None:
    """Plain text for titles: tags dropped and entities decoded when the value is HTML."""
    if not value:
        return None
    if (detail or {}).get("type", "text/plain") in _HTML_TYPES:
        value = html.unescape(_TAG.sub(" ", value))
    return _plain(value)


def _plain(value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    return _SPACE.sub(" ", value).strip() or None


def _clean_id(value: Any) -> str | None:
    if value is None:
        return None
    return str(value).strip() or None


def _http_url(value: Any, base: str) -> str | None:
    if not isinstance(value, str) or not value.strip():
        return None
    absolute = urljoin(base, value.strip())
    parts = urlsplit(absolute)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return None
    return absolute


def _int(value: Any) -> int | None:
    try:
        number = int(str(value).strip())
    except (TypeError, ValueError):
        return None
    return number if number >= 0 else None


def _unique(values: Iterable[Any]) -> tuple[str, ...]:
    seen: dict[str, None] = {}
    for value in values:
        text = _plain(value)
        if text:
            seen.setdefault(text, None)
    return tuple(seen)
