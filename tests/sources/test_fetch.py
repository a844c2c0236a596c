from __future__ import annotations

import gzip
import socket
from collections.abc import AsyncIterator

import httpx
import pytest

from sources import (
    AddressPolicy,
    ErrorKind,
    FetchError,
    FetchSettings,
    Validators,
    fetch_document,
    make_client,
)
from tests.upstream import Upstream

LOOPBACK = AddressPolicy.from_allowlist(True, ["127.0.0.0/8"])
SETTINGS = FetchSettings(deadline=10, max_body_bytes=64 * 1024, addresses=LOOPBACK)


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with make_client(SETTINGS) as shared:
        yield shared


async def test_a_200_returns_the_body_and_its_validators(
    upstream: Upstream, client: httpx.AsyncClient
) -> None:
    url = upstream.add(
        "/feed", b"<rss/>", etag='W/"abc"', last_modified="Tue, 24 Nov 2026 08:00:00 GMT"
    )
    result = await fetch_document(client, url, Validators(), SETTINGS)
    assert result.status == 200
    assert result.content == b"<rss/>"
    assert result.validators == Validators('W/"abc"', "Tue, 24 Nov 2026 08:00:00 GMT")
    sent = upstream.requests_for("/feed")[0].headers
    assert sent["User-Agent"].startswith("feedmill/")
    assert "If-None-Match" not in sent
    assert "application/atom+xml" in sent["Accept"]


async def test_stored_validators_are_sent_back_verbatim_and_304_keeps_them(
    upstream: Upstream, client: httpx.AsyncClient
) -> None:
    url = upstream.add(
        "/feed", b"<rss/>", etag='W/"abc"', last_modified="Tue, 24 Nov 2026 08:00:00 GMT"
    )
    stored = Validators('W/"abc"', "Tue, 24 Nov 2026 08:00:00 GMT")
    result = await fetch_document(client, url, stored, SETTINGS)
    assert result.not_modified
    assert result.validators == stored
    sent = upstream.requests_for("/feed")[0].headers
    assert sent["If-None-Match"] == 'W/"abc"'
    assert sent["If-Modified-Since"] == "Tue, 24 Nov 2026 08:00:00 GMT"


async def test_a_304_without_validators_keeps_the_stored_ones(client: httpx.AsyncClient) -> None:
    transport = httpx.MockTransport(lambda request: httpx.Response(304))
    async with make_client(SETTINGS, transport=transport) as bare:
        result = await fetch_document(
            bare, "http://example.test/f", Validators('"x"', None), SETTINGS
        )
    assert result.not_modified
    assert result.validators == Validators('"x"', None)


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (404, ErrorKind.HTTP_4XX),
        (403, ErrorKind.HTTP_4XX),
        (410, ErrorKind.GONE),
        (429, ErrorKind.HTTP_429),
        (500, ErrorKind.HTTP_5XX),
        (503, ErrorKind.HTTP_5XX),
    ],
)
async def test_http_errors_are_classified(
    upstream: Upstream, client: httpx.AsyncClient, status: int, kind: ErrorKind
) -> None:
    url = upstream.add("/feed", b"nope", status=status)
    with pytest.raises(FetchError) as raised:
        await fetch_document(client, url, Validators(), SETTINGS)
    assert raised.value.kind is kind
    assert str(status) in raised.value.message


async def test_redirects_are_followed(upstream: Upstream, client: httpx.AsyncClient) -> None:
    upstream.add("/old", status=301, headers={"Location": "/new"})
    upstream.add("/new", b"<rss/>")
    result = await fetch_document(client, upstream.url("/old"), Validators(), SETTINGS)
    assert result.content == b"<rss/>"
    assert result.url == upstream.url("/new")


async def test_a_redirect_loop_is_an_error(upstream: Upstream, client: httpx.AsyncClient) -> None:
    upstream.add("/a", status=302, headers={"Location": "/b"})
    upstream.add("/b", status=302, headers={"Location": "/a"})
    with pytest.raises(FetchError) as raised:
        await fetch_document(client, upstream.url("/a"), Validators(), SETTINGS)
    assert raised.value.kind is ErrorKind.REDIRECT_LOOP


async def test_a_body_over_the_limit_is_cut_off(
    upstream: Upstream, client: httpx.AsyncClient
) -> None:
    url = upstream.add("/big", b"x" * (SETTINGS.max_body_bytes + 1))
    with pytest.raises(FetchError) as raised:
        await fetch_document(client, url, Validators(), SETTINGS)
    assert raised.value.kind is ErrorKind.TOO_LARGE


async def test_the_limit_applies_after_decompression(
    upstream: Upstream, client: httpx.AsyncClient
) -> None:
    bomb = gzip.compress(b"\0" * (SETTINGS.max_body_bytes * 20))
    assert len(bomb) < SETTINGS.max_body_bytes
    url = upstream.add("/bomb", bomb, headers={"Content-Encoding": "gzip"})
    with pytest.raises(FetchError) as raised:
        await fetch_document(client, url, Validators(), SETTINGS)
    assert raised.value.kind is ErrorKind.TOO_LARGE


async def test_a_refused_connection_is_a_connect_error(client: httpx.AsyncClient) -> None:
    with socket.socket() as probe:  # a port that was free a moment ago, with nobody listening
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(FetchError) as raised:
        await fetch_document(client, f"http://127.0.0.1:{port}/feed", Validators(), SETTINGS)
    assert raised.value.kind is ErrorKind.CONNECT
    assert isinstance(raised.value.__cause__, httpx.TransportError)


@pytest.mark.parametrize(
    ("exception", "kind"),
    [
        (httpx.ReadTimeout("timed out"), ErrorKind.TIMEOUT),
        (httpx.ConnectTimeout("timed out"), ErrorKind.TIMEOUT),
        (httpx.ConnectError("[Errno -2] Name or service not known"), ErrorKind.DNS),
        (httpx.ConnectError("[SSL: CERTIFICATE_VERIFY_FAILED]"), ErrorKind.CONNECT),
        (httpx.RemoteProtocolError("peer closed connection"), ErrorKind.CONNECT),
    ],
)
async def test_transport_failures_are_classified(exception: Exception, kind: ErrorKind) -> None:
    def fail(request: httpx.Request) -> httpx.Response:
        raise exception

    async with make_client(SETTINGS, transport=httpx.MockTransport(fail)) as bare:
        with pytest.raises(FetchError) as raised:
            await fetch_document(bare, "http://example.test/feed", Validators(), SETTINGS)
    assert raised.value.kind is kind
    assert raised.value.__cause__ is exception


async def test_tls_failures_are_classified() -> None:
    import ssl

    def fail(request: httpx.Request) -> httpx.Response:
        try:
            raise ssl.SSLCertVerificationError("certificate verify failed")
        except ssl.SSLError as exc:
            raise httpx.ConnectError("TLS handshake failed") from exc

    async with make_client(SETTINGS, transport=httpx.MockTransport(fail)) as bare:
        with pytest.raises(FetchError) as raised:
            await fetch_document(bare, "https://example.test/feed", Validators(), SETTINGS)
    assert raised.value.kind is ErrorKind.TLS


async def test_repeated_response_headers_are_joined_and_names_are_case_insensitive() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        headers = [("cache-control", "public"), ("Cache-Control", "max-age=600"), ("ETAG", '"e"')]
        return httpx.Response(200, headers=headers, content=b"<rss/>")

    async with make_client(SETTINGS, transport=httpx.MockTransport(answer)) as bare:
        result = await fetch_document(bare, "http://example.test/f", Validators(), SETTINGS)
    assert result.cache_control == "public, max-age=600"
    assert result.validators == Validators('"e"', None)


async def test_the_address_check_holds_on_every_connection_and_per_policy(
    upstream: Upstream,
) -> None:
    """The decision is remembered per (policy, host, address): a second connection to a
    refused address is refused again, and another policy decides for itself."""
    url = upstream.add("/a.rss", b"<rss/>")
    guarded = FetchSettings(deadline=5)  # private addresses blocked, nothing allowed
    for _attempt in range(2):
        async with make_client(guarded) as client:
            with pytest.raises(FetchError) as raised:
                await fetch_document(client, url, Validators(), guarded)
        assert raised.value.kind is ErrorKind.BLOCKED_ADDRESS
    async with make_client(SETTINGS) as client:  # the same host and address, allowed
        assert (await fetch_document(client, url, Validators(), SETTINGS)).status == 200
    assert len(upstream.requests_for("/a.rss")) == 1


def test_address_decisions_depend_on_the_policy() -> None:
    blocking, open_ = AddressPolicy(), AddressPolicy(block_private=False)
    assert blocking.refusal("intranet.example", "10.1.2.3") is not None
    assert open_.refusal("intranet.example", "10.1.2.3") is None
    assert blocking.refusal("intranet.example", "10.1.2.3") is not None
    assert LOOPBACK.refusal("localhost", "127.0.0.1") is None
    assert blocking.refusal("localhost", "127.0.0.1") is not None
    assert blocking.refusal("example.org", "93.184.215.14") is None
