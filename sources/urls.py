"""Which URLs feedmill fetches: one rule for configured sources, OPML imports, redirects and
discovered feed links.

A URL is fetched only when it is http(s) with a host, has no user info (``user:pass@``), no
whitespace or control character anywhere, a port in range, and a host that is a name or a
canonical IP literal. Numeric hosts in the forms browsers and C libraries also read as IPv4
(``0177.0.0.1`` octal, ``2130706433`` decimal, ``0x7f.1`` hex, short forms) are refused: each
reader would take them for a different address, so no address policy could judge them.
"""

from __future__ import annotations

import ipaddress
import re
import unicodedata
from urllib.parse import SplitResult, urlsplit

# The last label of a host that WHATWG URL parsing treats as an IPv4 number.
_NUMERIC_LABEL = re.compile(r"^(0x[0-9a-f]*|[0-9]+)$", re.IGNORECASE)


def url_problem(url: str) -> str | None:
    """Why feedmill will not fetch ``url``, or None when it will."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018  (raises ValueError when out of range)
    except ValueError as exc:
        return f"cannot be parsed: {exc}"
    if parts.scheme.lower() not in ("http", "https"):
        return "is not an http(s) URL"
    if any(char.isspace() or unicodedata.category(char) in ("Cc", "Cf") for char in url):
        return "contains whitespace or a control character"
    if not parts.hostname:
        return "has no host"
    return _authority_problem(parts) or _httpx_problem(url)


def _authority_problem(parts: SplitResult) -> str | None:
    if "@" in parts.netloc:
        return "carries user info (user:password@); put credentials nowhere in a feed URL"
    host = (parts.hostname or "").rstrip(".")
    if not host:
        return "has no host"
    if ":" in host:  # an IPv6 literal; urlsplit checked its brackets
        return None
    if _NUMERIC_LABEL.match(host.rsplit(".", 1)[-1]):
        try:
            ipaddress.IPv4Address(host)
        except ValueError:
            return f"has a host {host!r} that is not a canonical IPv4 address (a.b.c.d)"
    return None


def _httpx_problem(url: str) -> str | None:
    import httpx  # on first use: importing this module (the config does) stays cheap

    try:
        httpx.URL(url)
    except (httpx.InvalidURL, ValueError) as exc:
        return f"cannot be parsed: {exc}"
    return None


def check_url(url: str) -> str:
    """``url`` when feedmill fetches it; else ValueError saying why (config validators)."""
    problem = url_problem(url)
    if problem:
        raise ValueError(f"{url!r} {problem}")
    return url
