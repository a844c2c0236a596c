"""Fetching under attack: bounded decoding, the URL rule, malformed responses, and the
address policy for IPv6 addresses that lead to IPv4 ones."""

from __future__ import annotations

import gzip
import ipaddress
import zlib

import brotli
import pytest

from sources import AddressPolicy, ErrorKind, FetchError, FetchSettings, Validators, make_client
from sources.decode import STEP, BodyDecoder, DecodeError
from sources.fetch import fetch_document
from sources.netguard import embedded_ipv4
from sources.urls import url_problem
from tests.upstream import Upstream

SETTINGS = FetchSettings(
    deadline=10, max_body_bytes=1024 * 1024, addresses=AddressPolicy(block_private=False)
)
BODY = b"<rss>" + b"x" * 300_000 + b"</rss>"


def decoded(decoder: BodyDecoder, data: bytes, piece: int = 4096) -> list[bytes]:
    out = []
    for start in range(0, len(data), piece):
        out += list(decoder.decode(data[start : start + piece]))
    return out + list(decoder.finish())


@pytest.mark.parametrize(
    ("header", "encode"),
    [
        ("gzip", gzip.compress),
        ("deflate", zlib.compress),
        ("deflate", lambda b: zlib.compress(b)[2:-4]),  # raw deflate, as some servers send
        ("br", brotli.compress),
        ("gzip, gzip", lambda b: gzip.compress(gzip.compress(b))),
        ("gzip, br", lambda b: brotli.compress(gzip.compress(b))),
        ("identity", lambda b: b),
        ("x-unknown", lambda b: b),  # passed through, as httpx does
    ],
)
def test_decoding_gives_the_body_back_in_bounded_pieces(header: str, encode: object) -> None:
    pieces = decoded(BodyDecoder.for_encodings(header), encode(BODY))  # type: ignore[operator]
    assert b"".join(pieces) == BODY
    assert max(len(p) for p in pieces) <= 2 * STEP


@pytest.mark.parametrize("header", ["br", "gzip, gzip"])
def test_a_bomb_comes_out_one_step_at_a_time(header: str) -> None:
    bomb = b"\0" * (64 * 1024 * 1024)
    data = brotli.compress(bomb) if header == "br" else gzip.compress(gzip.compress(bomb))
    assert len(data) < 100_000
    decoder = BodyDecoder.for_encodings(header)
    pieces = decoder.decode(data)  # a generator: nothing is decoded until asked for
    first = [next(pieces) for _ in range(3)]
    assert all(0 < len(p) <= 2 * STEP for p in first)


def test_invalid_compressed_data_is_a_decode_error() -> None:
    with pytest.raises(DecodeError):
        decoded(BodyDecoder.for_encodings("br"), b"not brotli at all")
    with pytest.raises(DecodeError):
        decoded(BodyDecoder.for_encodings("gzip"), b"not gzip at all")


async def test_the_limit_holds_for_stacked_and_brotli_bombs(upstream: Upstream) -> None:
    bomb = b"\0" * (SETTINGS.max_body_bytes * 20)
    upstream.add("/br", brotli.compress(bomb), headers={"Content-Encoding": "br"})
    stacked = gzip.compress(gzip.compress(bomb))
    upstream.add("/gz", stacked, headers={"Content-Encoding": "gzip, gzip"})
    upstream.add("/bad", b"garbage", headers={"Content-Encoding": "gzip"})
    async with make_client(SETTINGS) as client:
        for path, kind in [
            ("/br", ErrorKind.TOO_LARGE),
            ("/gz", ErrorKind.TOO_LARGE),
            ("/bad", ErrorKind.BAD_RESPONSE),
        ]:
            with pytest.raises(FetchError) as raised:
                await fetch_document(client, upstream.url(path), Validators(), SETTINGS)
            assert raised.value.kind is kind, path


async def test_malformed_responses_and_redirects_are_recorded_kinds(upstream: Upstream) -> None:
    upstream.add("/big-header", b"x", headers={"X-Big": "a" * 9000})
    upstream.add("/headers", b"x", headers={f"X-{n}": "a" for n in range(20_000)})
    upstream.add("/js", status=302, headers={"Location": "javascript:x"})
    upstream.add("/userinfo", status=302, headers={"Location": "http://u:p@127.0.0.1/x"})
    upstream.add("/ipv6", status=302, headers={"Location": "http://[::1/x"})
    upstream.add("/octal", status=302, headers={"Location": "http://0177.0.0.1/x"})
    async with make_client(SETTINGS) as client:
        for path, kind in [
            ("/big-header", ErrorKind.BAD_RESPONSE),
            ("/headers", ErrorKind.BAD_RESPONSE),
            ("/js", ErrorKind.BAD_URL),
            ("/userinfo", ErrorKind.BAD_URL),
            ("/ipv6", ErrorKind.BAD_URL),
            ("/octal", ErrorKind.BAD_URL),
        ]:
            with pytest.raises(FetchError) as raised:
                await fetch_document(client, upstream.url(path), Validators(), SETTINGS)
            assert raised.value.kind is kind, (path, raised.value)


@pytest.mark.parametrize(
    ("url", "refused"),
    [
        ("https://e.example/feed?a=1#f", False),
        ("http://[2001:db8::1]:8080/feed", False),
        ("http://bücher.example/feed", False),
        ("http://e.example/feed\nx", True),
        ("http://e.example/\u200bfeed", True),
        ("http://0177.0.0.1/", True),
        ("http://4294967295/", True),
        ("http://user@e.example/", True),
        ("ftp://e.example/", True),
        ("http:///feed", True),
    ],
)
def test_the_url_rule(url: str, refused: bool) -> None:
    assert (url_problem(url) is not None) is refused


@pytest.mark.parametrize(
    ("address", "private"),
    [
        ("2002:7f00:1::1", True),  # 6to4 of 127.0.0.1
        ("2002:a9fe:a9fe::1", True),  # 6to4 of 169.254.169.254
        ("2002:c0a8:0101::1", True),  # 6to4 of 192.168.1.1
        ("2002:0808:0808::1", False),  # 6to4 of 8.8.8.8
        ("64:ff9b::7f00:1", True),  # NAT64 of 127.0.0.1
        ("64:ff9b::a9fe:a9fe", True),  # NAT64 of 169.254.169.254
        ("64:ff9b::808:808", False),  # NAT64 of 8.8.8.8
        ("::ffff:10.0.0.1", True),  # IPv4-mapped
        ("2001:0:4136:e378:8000:63bf:3fff:fdd2", True),  # Teredo
        ("2606:4700::1", False),
    ],
)
def test_ipv6_addresses_are_judged_by_the_ipv4_they_lead_to(address: str, private: bool) -> None:
    refusal = AddressPolicy().refusal("feed.example", address)
    assert (refusal is not None) is private, refusal


def test_embedded_addresses() -> None:
    assert embedded_ipv4(ipaddress.ip_address("2002:7f00:1::1")) == (
        ipaddress.IPv4Address("127.0.0.1"),
    )
    assert embedded_ipv4(ipaddress.ip_address("64:ff9b::a9fe:a9fe")) == (
        ipaddress.IPv4Address("169.254.169.254"),
    )
    assert embedded_ipv4(ipaddress.ip_address("10.0.0.1")) == ()
