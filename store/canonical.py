"""Canonical links: one spelling per article URL, so the same article is recognised. Pure.

canonical_link(entry)  = normalise(unwrap(entry))
unwrap:     a FeedBurner/feedproxy redirect link is replaced by the publisher's URL when
            the document carries it (feedburner:origLink, or a guid that is a URL)
normalise:  w3lib's canonicalize_url (query sorted, percent-encoding
            normalised, host lower-cased) plus: scheme lower-cased, default port
            dropped, tracking parameters removed (``utm_*``, ``fbclid``... see
            DEFAULT_TRACKING_PARAMETERS; a trailing ``*`` matches a prefix); the fragment
            is kept when it names a post on the page (``.../24.html#a010650``: a blog
            whose posts share a day's page), dropped when it is navigation (``#comments``,
            ``#more-12``, a ``#:~:text=`` highlight) or empty

Most feed links are plain: an ASCII host, a path and a query of unreserved characters only
(no percent-escapes, dot segments, user info or IDNA). For those w3lib has nothing to
re-encode, and the same result is computed with string operations (``_simple_url``, about a
fifth of the cost); every other URL goes through w3lib. tests/store/test_canonical.py checks
that both give the same result on generated URLs of that shape and on the corpus's links.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import lru_cache
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from w3lib.url import canonicalize_url

from sources.model import ParsedEntry

DEFAULT_TRACKING_PARAMETERS: tuple[str, ...] = (
    "utm_*",
    "fbclid",
    "gclid",
    "dclid",
    "gbraid",
    "wbraid",
    "msclkid",
    "mc_cid",
    "mc_eid",
    "_hsenc",
    "_hsmi",
    "mkt_tok",
    "igshid",
    "yclid",
    "twclid",
    "ref_src",
    "oly_anon_id",
    "oly_enc_id",
    "vero_id",
    "wickedid",
    "__s",
)
REDIRECT_HOSTS = frozenset(
    {"feedproxy.google.com", "feeds.feedburner.com", "feedburner.google.com"}
)
_DEFAULT_PORTS = {"http": 80, "https": 443}
# Every redirect host has "feed" in its name: links without it skip the URL parsing.
_REDIRECT_HINT = re.compile("feed", re.IGNORECASE)


class TrackingFilter:
    """Which query parameters are tracking noise: exact names, or prefixes written ``utm_*``."""

    def __init__(self, patterns: Iterable[str] = DEFAULT_TRACKING_PARAMETERS) -> None:
        names = [p.lower() for p in patterns]
        self.exact = frozenset(n for n in names if not n.endswith("*"))
        self.prefixes = tuple(n[:-1] for n in names if n.endswith("*"))

    def is_tracking(self, name: str) -> bool:
        lowered = name.lower()
        return lowered in self.exact or lowered.startswith(self.prefixes)


DEFAULT_FILTER = TrackingFilter()


@lru_cache(maxsize=65536)
def normalize_url(url: str, tracking: TrackingFilter = DEFAULT_FILTER) -> str:
    """The canonical spelling of an http(s) URL; anything else is returned unchanged.

    Cached: a changed feed is re-read whole, so most of its links were normalised before
    (a quarter of ingest time when every link is new, measured)."""
    simple = _simple_url(url, tracking)
    canonical = simple if simple is not None else _canonicalize(url, tracking)
    return canonical + _identity_fragment(url) if canonical != url else canonical


# Fragments that move around one page rather than name a post on it.
_NAVIGATION = re.compile(
    r"(?:comments?|comment-?\d+|respond|reply|more(?:-\d+)?|disqus_thread|top|main"
    r"|(?:main-)?content|page|continue|read-?more|jump|start|utm_.*|xtor=.*|:~:.*)?",
    re.IGNORECASE | re.DOTALL,
)


def _identity_fragment(url: str) -> str:
    """``#fragment`` of the URL when it names something on the page, else ""."""
    _, hash_sign, fragment = url.strip().partition("#")
    if not hash_sign or _NAVIGATION.fullmatch(fragment):
        return ""
    return "#" + fragment


# scheme://host[:port][/path][?query][#fragment]: an ASCII host of LDH labels (no IDNA
# "xn--"), path segments and query of unreserved characters, no segment starting with ".".
_SIMPLE_URL = re.compile(
    r"(?P<scheme>https?)://"
    r"(?P<host>(?!(?:[^/?#]*\.)?xn--)[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
    r"(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*)"
    r"(?::(?P<port>[1-9][0-9]{0,3}))?"
    r"(?P<path>(?:/[a-z0-9_~-][a-z0-9._~-]*)*/?)"
    r"(?:\?(?P<query>[a-z0-9._~=&-]*))?"
    r"(?:#.*)?",
    re.IGNORECASE | re.DOTALL,
)
_SIMPLE_PAIR = re.compile(r"[a-z0-9._~-]+(?:=[a-z0-9._~-]*)?", re.IGNORECASE)


def _simple_url(url: str, tracking: TrackingFilter) -> str | None:
    """:func:`_canonicalize` of a plain URL (see the module docstring) by string operations;
    None when ``url`` is not plain."""
    match = _SIMPLE_URL.fullmatch(url.strip())
    if match is None:
        return None
    scheme, host, port, path, query = match.group("scheme", "host", "port", "path", "query")
    scheme = scheme.lower()
    netloc = host.lower()
    if port is not None and int(port) != _DEFAULT_PORTS[scheme]:
        netloc = f"{netloc}:{port}"
    pairs = []
    for pair in query.split("&") if query else ():
        if not pair:
            continue
        if not _SIMPLE_PAIR.fullmatch(pair):
            return None
        name, _, value = pair.partition("=")
        if not tracking.is_tracking(name):
            pairs.append((name, value))
    pairs.sort()
    canonical = f"{scheme}://{netloc}{path or '/'}"
    return canonical + "?" + "&".join(f"{n}={v}" for n, v in pairs) if pairs else canonical


def _canonicalize(url: str, tracking: TrackingFilter) -> str:
    """:func:`normalize_url` for any URL, through w3lib."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return url
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or not parts.hostname:
        return url
    host = parts.hostname.lower()
    if ":" in host:
        host = f"[{host}]"
    netloc = host if port in (None, _DEFAULT_PORTS[scheme]) else f"{host}:{port}"
    if parts.username or parts.password:
        netloc = parts.netloc.rsplit("@", 1)[0] + "@" + netloc
    query = urlencode(
        [
            (name, value)
            for name, value in parse_qsl(parts.query, keep_blank_values=True)
            if not tracking.is_tracking(name)
        ]
    )
    path = parts.path or "/"
    return canonicalize_url(urlunsplit((scheme, netloc, path, query, "")))


def unwrap_link(entry: ParsedEntry) -> str | None:
    """The publisher's URL of an entry whose link is a FeedBurner/feedproxy redirect."""
    link = entry.link
    if not link or not _REDIRECT_HINT.search(link) or not _is_redirect(link):
        return link
    for candidate in (entry.origin_link, entry.id):
        if candidate and _is_http(candidate) and not _is_redirect(candidate):
            return candidate
    return link


def canonical_link(entry: ParsedEntry, tracking: TrackingFilter = DEFAULT_FILTER) -> str | None:
    link = unwrap_link(entry)
    return normalize_url(link, tracking) if link else None


def _is_http(url: str) -> bool:
    return urlsplit(url).scheme.lower() in _DEFAULT_PORTS


def _is_redirect(url: str) -> bool:
    try:
        host = (urlsplit(url).hostname or "").lower()
    except ValueError:
        return False
    return host in REDIRECT_HOSTS
