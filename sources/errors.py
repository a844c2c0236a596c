"""The exception tree of feedmill.

The root lives here, in the package every other one may import::

    FeedmillError                 root of everything feedmill raises on purpose
    └── SourceError               sources/: one upstream document could not be had
        ├── FetchError            the HTTP exchange failed (kind: timeout, dns, http_5xx, ...)
        └── ParseError            the bytes are not a feed we can read (kind: parse, not_a_feed,
                                  too_complex)

store/ adds ``StoreError`` and feeds/ adds ``FeedsError`` below the same root; the
composition root adds ``ConfigError`` and ``ServiceError``. A failing source is recorded on
that source as (kind, message): the ``kind`` attribute carries one of :class:`ErrorKind`.
"""

from __future__ import annotations

from enum import StrEnum


class ErrorKind(StrEnum):
    """Why a source failed, as stored on the source and shown to users."""

    TIMEOUT = "timeout"
    DNS = "dns"
    CONNECT = "connect"
    TLS = "tls"
    TOO_LARGE = "too_large"
    HTTP_4XX = "http_4xx"
    HTTP_429 = "http_429"
    HTTP_5XX = "http_5xx"
    GONE = "gone"
    REDIRECT_LOOP = "redirect_loop"
    BLOCKED_ADDRESS = "blocked_address"
    BAD_URL = "bad_url"
    BAD_RESPONSE = "bad_response"
    NOT_A_FEED = "not_a_feed"
    PARSE = "parse"
    TOO_COMPLEX = "too_complex"
    INTERNAL = "internal"


class FeedmillError(Exception):
    """Root of every exception feedmill raises on purpose."""


class SourceError(FeedmillError):
    """An upstream document could not be fetched or read. ``kind`` says why."""

    def __init__(self, kind: ErrorKind, message: str, *, url: str | None = None) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.url = url

    def __str__(self) -> str:
        return f"{self.kind.value}: {self.message}"


class FetchError(SourceError):
    """The HTTP exchange with the upstream failed. ``retry_after``: that header, verbatim."""

    def __init__(
        self,
        kind: ErrorKind,
        message: str,
        *,
        url: str | None = None,
        retry_after: str | None = None,
    ) -> None:
        super().__init__(kind, message, url=url)
        self.retry_after = retry_after


class ParseError(SourceError):
    """The document is not a feed, or not one we can read."""
