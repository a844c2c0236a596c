"""Fetch one upstream document over HTTP, politely.

One shared ``httpx.AsyncClient`` (see :func:`make_client`) serves every source. A fetch sends the
stored validators back (conditional GET), follows redirects up to a limit, enforces an overall
deadline and a maximum body size while streaming (after content decoding, so a compression bomb
is cut off too), and turns every failure into a :class:`~sources.errors.FetchError` whose
``kind`` is stored on the source.
"""

from __future__ import annotations

import asyncio
import ssl
from dataclasses import dataclass
from importlib import metadata

import httpx

from sources.errors import ErrorKind, FetchError
from sources.model import FetchResult, Validators

ACCEPT = (
    "application/atom+xml, application/rss+xml, application/rdf+xml, application/feed+json, "
    "application/xml;q=0.9, text/xml;q=0.9, application/json;q=0.8, */*;q=0.5"
)


def _version() -> str:
    try:
        return metadata.version("feedmill")
    except metadata.PackageNotFoundError:  # running from a checkout that is not installed
        return "0"


def default_user_agent(contact: str | None = None) -> str:
    """``feedmill/VERSION`` plus, when given, a URL where upstream admins can learn about us."""
    suffix = f" (+{contact})" if contact else ""
    return f"feedmill/{_version()}{suffix}"


@dataclass(frozen=True, slots=True)
class FetchSettings:
    """How to talk to upstreams. Times are seconds."""

    connect_timeout: float = 10.0
    read_timeout: float = 30.0
    deadline: float = 60.0
    max_redirects: int = 5
    max_body_bytes: int = 15 * 1024 * 1024
    user_agent: str = default_user_agent()


def make_client(
    settings: FetchSettings, transport: httpx.AsyncBaseTransport | None = None
) -> httpx.AsyncClient:
    """The one client every fetch shares (connection pooling, one set of limits)."""
    timeout = httpx.Timeout(
        settings.read_timeout, connect=settings.connect_timeout, pool=settings.deadline
    )
    return httpx.AsyncClient(
        timeout=timeout,
        follow_redirects=True,
        max_redirects=settings.max_redirects,
        headers={"User-Agent": settings.user_agent, "Accept": ACCEPT},
        transport=transport,
    )


def conditional_headers(validators: Validators) -> dict[str, str]:
    """If-None-Match / If-Modified-Since from the stored validators, verbatim."""
    headers = {}
    if validators.etag:
        headers["If-None-Match"] = validators.etag
    if validators.last_modified:
        headers["If-Modified-Since"] = validators.last_modified
    return headers


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
    except httpx.HTTPError as exc:
        raise _classify(exc, url) from exc


async def _get(
    client: httpx.AsyncClient, url: str, validators: Validators, settings: FetchSettings
) -> FetchResult:
    headers = conditional_headers(validators)
    async with client.stream("GET", url, headers=headers) as response:
        final_url = str(response.url)
        if response.status_code == 304:
            got = _validators(response)
            kept = Validators(
                got.etag or validators.etag, got.last_modified or validators.last_modified
            )
            return FetchResult(url=final_url, status=304, validators=kept)
        _raise_for_status(response, final_url)
        content = await _read_limited(response, settings.max_body_bytes, final_url)
        return FetchResult(
            url=final_url,
            status=response.status_code,
            validators=_validators(response),
            content=content,
            content_type=response.headers.get("Content-Type"),
        )


def _validators(response: httpx.Response) -> Validators:
    return Validators(response.headers.get("ETag"), response.headers.get("Last-Modified"))


def _raise_for_status(response: httpx.Response, url: str) -> None:
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
    raise FetchError(kind, message, url=url)


async def _read_limited(response: httpx.Response, limit: int, url: str) -> bytes:
    """The decoded body, refusing more than ``limit`` bytes as they arrive."""
    declared = response.headers.get("Content-Length", "")
    encoded = "Content-Encoding" in response.headers  # the decoded size is what counts
    if declared.isdigit() and not encoded and int(declared) > limit:
        raise FetchError(ErrorKind.TOO_LARGE, f"body of {declared} bytes over {limit}", url=url)
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():
        size += len(chunk)
        if size > limit:
            raise FetchError(ErrorKind.TOO_LARGE, f"body over {limit} bytes", url=url)
        chunks.append(chunk)
    return b"".join(chunks)


def _classify(exc: httpx.HTTPError, url: str) -> FetchError:
    message = str(exc) or type(exc).__name__
    if isinstance(exc, httpx.TooManyRedirects):
        return FetchError(ErrorKind.REDIRECT_LOOP, message, url=url)
    if isinstance(exc, httpx.TimeoutException):
        return FetchError(ErrorKind.TIMEOUT, message, url=url)
    if _caused_by(exc, ssl.SSLError):
        return FetchError(ErrorKind.TLS, message, url=url)
    if isinstance(exc, httpx.ConnectError) and _looks_like_dns(message):
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
