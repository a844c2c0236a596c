"""Fetch one upstream document over HTTP, politely.

One shared ``httpx.AsyncClient`` (see :func:`make_client`) serves every source. A fetch sends the
stored validators back (conditional GET), follows redirects up to a limit, enforces an overall
deadline and a maximum body size while streaming (after content decoding, so a compression bomb
is cut off too), and turns every failure into a :class:`~sources.errors.FetchError` whose
``kind`` is stored on the source.
"""

from __future__ import annotations

import asyncio
import functools
import ssl
from collections.abc import Sequence
from dataclasses import replace
from typing import Any
from urllib.parse import urljoin

import aiohttp
import httpx
from httpx_aiohttp import AiohttpTransport

from sources.decode import ACCEPT_ENCODING, BodyDecoder, DecodeError
from sources.discovery import find_feed_links, looks_like_html
from sources.errors import ErrorKind, FetchError, ParseError
from sources.model import FetchResult, Validators
from sources.netguard import AddressPolicy
from sources.settings import FetchSettings
from sources.urls import url_problem

ACCEPT = (
    "application/atom+xml, application/rss+xml, application/rdf+xml, application/feed+json, "
    "application/xml;q=0.9, text/xml;q=0.9, application/json;q=0.8, */*;q=0.5"
)


def make_client(
    settings: FetchSettings, transport: httpx.AsyncBaseTransport | None = None
) -> httpx.AsyncClient:
    """The one client every fetch shares (connection pooling, one set of limits).

    Redirects are followed by :func:`fetch_document`, hop by hop, not by the client.
    """
    timeout = httpx.Timeout(
        settings.read_timeout, connect=settings.connect_timeout, pool=settings.deadline
    )
    if transport is None and settings.transport == "aiohttp":
        transport = _aiohttp_transport(settings)
    return httpx.AsyncClient(
        timeout=timeout,
        follow_redirects=False,
        headers={
            "User-Agent": settings.user_agent,
            "Accept": ACCEPT,
            "Accept-Encoding": ACCEPT_ENCODING,
        },
        transport=transport,
        limits=httpx.Limits(max_connections=settings.max_connections),
    )


class GuardedConnector(aiohttp.TCPConnector):
    """aiohttp's connector, refusing hosts whose addresses the policy blocks.

    The check runs where aiohttp resolves a host before connecting, for IP literals too, so
    it holds for every new connection, every redirect hop included.
    """

    def __init__(self, policy: AddressPolicy, **options: Any) -> None:
        super().__init__(**options)
        self._policy = policy

    async def _resolve_host(
        self, host: str, port: int, traces: Sequence[Any] | None = None
    ) -> list[Any]:
        results: list[Any] = await super()._resolve_host(host, port, traces=traces)
        for result in results:
            refusal = self._policy.refusal(host, str(result["host"]))
            if refusal:
                raise FetchError(ErrorKind.BLOCKED_ADDRESS, refusal)
        return results


def _aiohttp_transport(settings: FetchSettings) -> httpx.AsyncBaseTransport:
    def session() -> aiohttp.ClientSession:  # made on first use, inside the event loop
        connector = GuardedConnector(
            settings.addresses, limit=settings.max_connections, enable_cleanup_closed=False
        )
        # No cookie jar: cookies of one upstream must not follow us to another.
        return aiohttp.ClientSession(connector=connector, cookie_jar=aiohttp.DummyCookieJar())

    return AiohttpTransport(client=session)


def conditional_headers(validators: Validators) -> dict[str, str]:
    """If-None-Match / If-Modified-Since from the stored validators, verbatim."""
    headers = {}
    if validators.etag:
        headers["If-None-Match"] = validators.etag
    if validators.last_modified:
        headers["If-Modified-Since"] = validators.last_modified
    return headers


async def fetch_feed(
    client: httpx.AsyncClient,
    url: str,
    validators: Validators,
    settings: FetchSettings,
) -> FetchResult:
    """:func:`fetch_document`, and when ``url`` gives an HTML page, the first feed it links to
    (``<link rel="alternate">``), with ``discovered_from`` set to the page's URL."""
    result = await fetch_document(client, url, validators, settings)
    if result.not_modified or not looks_like_html(result.content, result.content_type):
        return result
    links = find_feed_links(result.content, result.url)
    if not links:
        raise ParseError(
            ErrorKind.NOT_A_FEED, "an HTML page without <link rel=alternate> feed links", url=url
        )
    found = await fetch_document(client, links[0], Validators(), settings)
    if not found.not_modified and looks_like_html(found.content, found.content_type):
        raise ParseError(ErrorKind.NOT_A_FEED, f"{links[0]} is an HTML page too", url=url)
    return replace(found, discovered_from=url)


async def fetch_document(
    client: httpx.AsyncClient,
    url: str,
    validators: Validators,
    settings: FetchSettings,
) -> FetchResult:
    """GET ``url`` conditionally; a 304 comes back as ``FetchResult.not_modified``.

    Raises FetchError for every failure, with the foreign exception as its cause.
    """
    try:
        async with asyncio.timeout(settings.deadline):
            return await _get(client, url, validators, settings)
    except TimeoutError as exc:
        raise FetchError(
            ErrorKind.TIMEOUT, f"no complete response within {settings.deadline:g}s", url=url
        ) from exc
    except (httpx.HTTPError, aiohttp.ClientError) as exc:
        raise _classify(exc, url) from exc


async def _get(
    client: httpx.AsyncClient, url: str, validators: Validators, settings: FetchSettings
) -> FetchResult:
    """Follow redirects hop by hop: each hop connects anew through the address check; the
    leading 301/308 hops give ``permanent_redirect``; a URL seen twice is a loop."""
    headers = conditional_headers(validators)
    seen = [url]
    permanent: str | None = None
    still_permanent = True
    current = url
    for _hop in range(settings.max_redirects + 1):
        request = client.build_request("GET", _checked_url(current, url), headers=headers)
        try:
            response = await client.send(request, stream=True)
        except httpx.InvalidURL as exc:  # httpx parses a redirect's Location in send()
            message = f"redirect to an invalid URL: {exc}"
            raise FetchError(ErrorKind.BAD_URL, message, url=url) from exc
        try:
            found = _header_map(response)
            target = _redirect_target(response.status_code, found, current)
            if target is None:
                return await _finish(response, found, current, validators, settings, permanent)
        finally:
            await response.aclose()
        if still_permanent and response.status_code in (301, 308):
            permanent = target
        else:
            still_permanent = False
        if target in seen:
            raise FetchError(ErrorKind.REDIRECT_LOOP, f"redirect loop back to {target}", url=url)
        seen.append(target)
        current = target
    raise FetchError(
        ErrorKind.REDIRECT_LOOP, f"more than {settings.max_redirects} redirects", url=url
    )


# httpx parses a URL string in about 20 us, half of building a request; a source's URL is
# the same on every poll, so the parsed (immutable) httpx.URL is kept.
_parsed_url = functools.lru_cache(maxsize=16384)(httpx.URL)


def _checked_url(current: str, url: str) -> httpx.URL:
    """``current`` parsed, or FetchError ``bad_url`` when it is not a URL we fetch
    (sources.urls): a redirect or a discovered link may point anywhere."""
    problem = url_problem(current)
    if problem:
        where = "" if current == url else " (redirected or discovered)"
        raise FetchError(ErrorKind.BAD_URL, f"{current!r}{where} {problem}", url=url)
    return _parsed_url(current)


def _header_map(response: httpx.Response) -> dict[str, str]:
    """The response's headers by lower-case name, a repeated one joined with ", " as
    ``Headers.get`` does, read in one pass (each ``Headers.get`` scans and decodes them all)."""
    found: dict[str, str] = {}
    for name, value in response.headers.multi_items():
        found[name] = f"{found[name]}, {value}" if name in found else value
    return found


def _redirect_target(status: int, headers: dict[str, str], url: str) -> str | None:
    location = headers.get("location")
    if status not in (301, 302, 303, 307, 308) or not location:
        return None
    try:
        target: str = urljoin(url, str(location).strip())
    except ValueError as exc:  # urljoin parses the Location: "Invalid IPv6 URL" and the like
        raise FetchError(ErrorKind.BAD_URL, f"redirect to {location!r}: {exc}", url=url) from exc
    problem = url_problem(target)
    if problem:
        raise FetchError(ErrorKind.BAD_URL, f"redirect to {target!r}, which {problem}", url=url)
    return target


async def _finish(
    response: httpx.Response,
    headers: dict[str, str],
    url: str,
    validators: Validators,
    settings: FetchSettings,
    permanent: str | None,
) -> FetchResult:
    facts: dict[str, Any] = {
        "permanent_redirect": permanent,
        "cache_control": headers.get("cache-control"),
        "expires": headers.get("expires"),
        "date": headers.get("date"),
    }
    if response.status_code == 304:
        got = _validators(headers)
        etag = got.etag or validators.etag
        kept = Validators(etag, got.last_modified or validators.last_modified)
        return FetchResult(url=url, status=304, validators=kept, **facts)
    _raise_for_status(response, headers, url)
    content = await _read_limited(response, headers, settings.max_body_bytes, url)
    return FetchResult(
        url=url,
        status=response.status_code,
        validators=_validators(headers),
        content=content,
        content_type=headers.get("content-type"),
        **facts,
    )


def _validators(headers: dict[str, str]) -> Validators:
    return Validators(headers.get("etag"), headers.get("last-modified"))


def _raise_for_status(response: httpx.Response, headers: dict[str, str], url: str) -> None:
    status = response.status_code
    if status < 300:
        return
    message = f"HTTP {status} {response.reason_phrase}".rstrip()
    if status == 410:
        kind = ErrorKind.GONE
    elif status == 429:
        kind = ErrorKind.HTTP_429
    elif status >= 500:
        kind = ErrorKind.HTTP_5XX
    else:  # 4xx, and a 3xx that came without a Location to follow
        kind = ErrorKind.HTTP_4XX
    raise FetchError(kind, message, url=url, retry_after=headers.get("retry-after"))


async def _read_limited(
    response: httpx.Response, headers: dict[str, str], limit: int, url: str
) -> bytes:
    """The decoded body, refusing more than ``limit`` bytes as they arrive. Decoding is
    bounded too (sources.decode): a small compressed body cannot expand past the limit in
    memory before it is counted."""
    declared = headers.get("content-length", "")
    encoded = "content-encoding" in headers  # the decoded size is what counts
    if declared.isdigit() and not encoded and int(declared) > limit:
        raise FetchError(ErrorKind.TOO_LARGE, f"body of {declared} bytes over {limit}", url=url)
    if response.is_stream_consumed:  # built in memory, already decoded (httpx.MockTransport)
        body = bytearray()
        _append_limited(body, response.content, limit, url)
        return response.content
    decoder = BodyDecoder.for_encodings(headers.get("content-encoding"))
    body = bytearray()
    try:
        async for chunk in response.aiter_raw():
            for piece in decoder.decode(chunk):
                _append_limited(body, piece, limit, url)
        for piece in decoder.finish():
            _append_limited(body, piece, limit, url)
    except DecodeError as exc:
        raise FetchError(ErrorKind.BAD_RESPONSE, str(exc), url=url) from exc
    return bytes(body)


def _append_limited(body: bytearray, piece: bytes, limit: int, url: str) -> None:
    if len(body) + len(piece) > limit:
        raise FetchError(ErrorKind.TOO_LARGE, f"body over {limit} bytes", url=url)
    body += piece


def _classify(exc: httpx.HTTPError | aiohttp.ClientError, url: str) -> FetchError:
    message = str(exc) or type(exc).__name__
    if isinstance(exc, httpx.TooManyRedirects):
        return FetchError(ErrorKind.REDIRECT_LOOP, message, url=url)
    if _caused_by(exc, httpx.InvalidURL):  # httpx reads a redirect's Location in send()
        return FetchError(ErrorKind.BAD_URL, f"redirect to an invalid URL: {message}", url=url)
    if _caused_by(exc, aiohttp.ClientResponseError) or isinstance(exc, httpx.DecodingError):
        # a status line or headers aiohttp will not read (too long, too many, malformed)
        return FetchError(ErrorKind.BAD_RESPONSE, f"invalid HTTP response: {message}", url=url)
    # httpx-aiohttp maps every aiohttp connection error to a timeout: look at the cause.
    from_aiohttp = _caused_by(exc, aiohttp.ClientError)
    if isinstance(exc, httpx.TimeoutException) and (
        not from_aiohttp or _caused_by(exc, TimeoutError)
    ):
        return FetchError(ErrorKind.TIMEOUT, message, url=url)
    if _caused_by(exc, ssl.SSLError) or _caused_by(exc, aiohttp.ClientSSLError):
        return FetchError(ErrorKind.TLS, message, url=url)
    if _caused_by(exc, aiohttp.ClientConnectorDNSError) or (
        isinstance(exc, httpx.ConnectError) and _looks_like_dns(message)
    ):
        return FetchError(ErrorKind.DNS, message, url=url)
    return FetchError(ErrorKind.CONNECT, message, url=url)


def _caused_by(exc: BaseException, kind: type[BaseException]) -> bool:
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, kind):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _looks_like_dns(message: str) -> bool:
    lowered = message.lower()
    return any(
        hint in lowered
        for hint in (
            "name or service not known",
            "nodename nor servname",
            "getaddrinfo",
            "no address",
        )
    )
