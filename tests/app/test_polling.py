"""Polite fetching end to end: Puller + real SQLite + the loopback upstream, asserting on the
wire (what we sent) and on the stored state (next poll, validators, error kind, URL)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from datetime import timedelta

import httpx
import pytest

from feedmill.pull import Puller, PullResult
from sources import AddressPolicy, FetchSettings, PollSettings, make_client
from sources.hosts import HostLimits
from store import SourceDefinition, Store, StoredSource
from tests.conftest import FakeClock, fixture_bytes
from tests.upstream import Upstream

LOOPBACK = AddressPolicy.from_allowlist(True, ["127.0.0.0/8"])
SETTINGS = FetchSettings(deadline=5, max_body_bytes=64 * 1024, addresses=LOOPBACK)
POLLING = PollSettings(jitter=0, permanent_redirect_polls=3)
ROOMY = FetchSettings(deadline=30, addresses=LOOPBACK)  # pulls of slow loopback upstreams
RSS = fixture_bytes("outlet-a.rss")
TINY_RSS = (
    b'<rss version="2.0"><channel><title>t</title><item><guid>1</guid></item></channel></rss>'
)


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with make_client(SETTINGS) as shared:
        yield shared


async def pull(
    store: Store, clock: FakeClock, client: httpx.AsyncClient, url: str, **options: object
) -> StoredSource:
    existing = {s.id for s in await store.list_sources()}
    if "s" not in existing:
        await store.sync_sources([SourceDefinition("s", url, None, timedelta(hours=1))], clock())
    puller = Puller(store, client, SETTINGS, clock, polling=POLLING, **options)  # type: ignore[arg-type]
    await puller.pull_source(await store.get_source("s"))
    return await store.get_source("s")


async def test_ttl_and_max_age_set_the_next_poll(
    store: Store, clock: FakeClock, client: httpx.AsyncClient, upstream: Upstream
) -> None:
    url = upstream.add(
        "/a.rss",
        RSS,
        content_type="application/rss+xml",
        headers={"Cache-Control": "max-age=172800"},
    )
    source = await pull(store, clock, client, url)
    assert source.estimated_interval is not None  # the fixture posts about twice a day
    assert source.estimated_interval < timedelta(days=1)
    # max-age (2 days) wins over the posting rate, bounded by hint_ceiling (1 day)
    assert source.next_poll_at == clock() + POLLING.hint_ceiling
    assert source.feed_hint == timedelta(minutes=60)  # the fixture's <ttl>


async def test_a_permanent_redirect_moves_the_source_after_three_polls(
    store: Store, clock: FakeClock, client: httpx.AsyncClient, upstream: Upstream
) -> None:
    upstream.add("/old", status=301, headers={"Location": "/new"})
    upstream.add("/new", RSS, content_type="application/rss+xml")
    upstream.add("/temp", status=302, headers={"Location": "/new"})
    url = upstream.url("/old")
    for count in (1, 2):
        source = await pull(store, clock, client, url)
        assert (source.redirect_count, source.effective_url) == (count, None)
    source = await pull(store, clock, client, url)
    assert source.effective_url == upstream.url("/new")
    assert source.fetch_url == upstream.url("/new")
    await pull(store, clock, client, url)
    assert len(upstream.requests_for("/old")) == 3  # the fourth poll went straight to /new


async def test_a_temporary_redirect_never_moves_the_source(
    store: Store, clock: FakeClock, client: httpx.AsyncClient, upstream: Upstream
) -> None:
    upstream.add("/temp", status=307, headers={"Location": "/new"})
    upstream.add("/new", RSS, content_type="application/rss+xml")
    for _ in range(4):
        source = await pull(store, clock, client, upstream.url("/temp"))
    assert (source.effective_url, source.redirect_count) == (None, 0)


async def test_gone_stops_polling(
    store: Store, clock: FakeClock, client: httpx.AsyncClient, upstream: Upstream
) -> None:
    source = await pull(store, clock, client, upstream.add("/gone", status=410))
    assert source.gone and source.error_kind == "gone"
    clock.advance(timedelta(days=30))
    assert await store.claim_due_sources(clock(), timedelta(minutes=10)) == []


async def test_retry_after_holds_the_source_and_its_host(
    store: Store, clock: FakeClock, client: httpx.AsyncClient, upstream: Upstream
) -> None:
    url = upstream.add("/busy", status=429, headers={"Retry-After": "7200"})
    hosts = HostLimits(2, share_retry_after=True)
    source = await pull(store, clock, client, url, hosts=hosts)
    assert source.error_kind == "http_429"
    assert source.next_poll_at == clock() + timedelta(hours=2)
    assert hosts.held_until("127.0.0.1", clock()) == clock() + timedelta(hours=2)


async def test_discovery_follows_the_pages_feed_link(
    store: Store, clock: FakeClock, client: httpx.AsyncClient, upstream: Upstream
) -> None:
    page = upstream.add("/", fixture_bytes("page.html"), content_type="text/html")
    upstream.add("/feed.rss", RSS, content_type="application/rss+xml")
    source = await pull(store, clock, client, page)
    assert source.error_kind is None
    assert source.effective_url == upstream.url("/feed.rss")


async def test_private_addresses_are_refused_by_default(
    store: Store, clock: FakeClock, upstream: Upstream
) -> None:
    url = upstream.add("/a.rss", RSS)
    async with make_client(FetchSettings(deadline=5)) as guarded:
        source = await pull(store, clock, guarded, url)
    assert source.error_kind == "blocked_address"
    assert upstream.requests_for("/a.rss") == []


async def test_every_redirect_hop_is_checked(
    store: Store, clock: FakeClock, upstream: Upstream
) -> None:
    """localhost is allowed by name; its redirect to 127.0.0.1 is refused at connect time."""
    port = upstream.base_url.rsplit(":", 1)[1]
    upstream.add("/hop", status=302, headers={"Location": f"http://127.0.0.1:{port}/a.rss"})
    upstream.add("/a.rss", RSS)
    policy = AddressPolicy.from_allowlist(True, ["localhost"])
    async with make_client(FetchSettings(deadline=5, addresses=policy)) as guarded:
        source = await pull(store, clock, guarded, f"http://localhost:{port}/hop")
    assert source.error_kind == "blocked_address"
    assert len(upstream.requests_for("/hop")) == 1
    assert upstream.requests_for("/a.rss") == []


async def test_a_dripping_server_is_cut_off_by_the_deadline(
    store: Store, clock: FakeClock, upstream: Upstream
) -> None:
    url = upstream.add("/drip", RSS, drip=0.05)
    settings = FetchSettings(deadline=0.5, read_timeout=5, addresses=LOOPBACK)
    async with make_client(settings) as quick:
        puller = Puller(store, quick, settings, clock, polling=POLLING)
        await store.sync_sources([SourceDefinition("s", url, None, timedelta(hours=1))], clock())
        await puller.pull_source(await store.get_source("s"))
    source = await store.get_source("s")
    assert source.error_kind == "timeout" and source.error_count == 1


async def test_an_unchanged_body_is_not_parsed_again(
    store: Store,
    clock: FakeClock,
    client: httpx.AsyncClient,
    upstream: Upstream,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import feedmill.pull

    parsed: list[str] = []
    real = feedmill.pull.parse_document

    def counting(content: bytes, url: str, content_type: str | None = None) -> object:
        parsed.append(url)
        return real(content, url, content_type)

    monkeypatch.setattr(feedmill.pull, "parse_document", counting)
    url = upstream.add("/a.rss", RSS, content_type="application/rss+xml")  # no validators
    await pull(store, clock, client, url)
    clock.advance(timedelta(hours=2))
    source = await pull(store, clock, client, url)
    assert len(upstream.requests_for("/a.rss")) == 2
    assert parsed == [url]  # the second 200 carried the same bytes: not parsed
    assert source.error_kind is None
    assert source.last_success_at == clock()


async def test_a_503_with_retry_after_waits_at_least_that_long(
    store: Store, clock: FakeClock, client: httpx.AsyncClient, upstream: Upstream
) -> None:
    url = upstream.add("/down", status=503, headers={"Retry-After": "5400"})
    source = await pull(store, clock, client, url)
    assert source.error_kind == "http_5xx"
    assert source.next_poll_at >= clock() + timedelta(seconds=5400)


async def test_a_brotli_bomb_is_cut_off(upstream: Upstream, client: httpx.AsyncClient) -> None:
    import brotli

    from sources import ErrorKind, FetchError, Validators, fetch_document

    bomb = brotli.compress(b"\0" * (SETTINGS.max_body_bytes * 50))
    assert len(bomb) < SETTINGS.max_body_bytes // 10
    url = upstream.add("/bomb", bomb, headers={"Content-Encoding": "br"})
    with pytest.raises(FetchError) as raised:
        await fetch_document(client, url, Validators(), SETTINGS)
    assert raised.value.kind is ErrorKind.TOO_LARGE


async def test_at_most_two_fetches_run_at_once_per_host(
    store: Store, clock: FakeClock, client: httpx.AsyncClient, upstream: Upstream
) -> None:
    port = upstream.base_url.rsplit(":", 1)[1]
    definitions = []
    for n in range(6):  # six slow sources on one host, six on another name for the same server
        upstream.add(f"/slow{n}.rss", TINY_RSS, content_type="application/rss+xml", drip=0.002)
        for host in ("127.0.0.1", "localhost"):
            url = f"http://{host}:{port}/slow{n}.rss"
            definitions.append(SourceDefinition(f"{host[:5]}-{n}", url, None, timedelta(hours=1)))
    await store.sync_sources(definitions, clock())
    loopback = ROOMY
    async with make_client(loopback) as roomy:
        puller = Puller(
            store, roomy, loopback, clock, polling=POLLING, concurrency=12, hosts=HostLimits(2)
        )
        results = await puller.pull_due()
    assert [r.error for r in results] == [None] * 12
    assert upstream.most_in_flight == {f"127.0.0.1:{port}": 2, f"localhost:{port}": 2}


async def test_a_slow_upstream_holds_only_its_own_slot(
    store: Store, clock: FakeClock, upstream: Upstream
) -> None:
    """Pulls flow: with two slots and one upstream that does not answer, the other sources
    are all pulled through the second slot meanwhile (in batches they would wait for it)."""
    held = threading.Event()
    upstream.add("/held.rss", TINY_RSS, content_type="application/rss+xml", hold=held)
    definitions = [SourceDefinition("a-held", upstream.url("/held.rss"), None, timedelta(hours=1))]
    for n in range(6):
        upstream.add(f"/quick{n}.rss", TINY_RSS, content_type="application/rss+xml")
        url = upstream.url(f"/quick{n}.rss")
        definitions.append(SourceDefinition(f"b-quick{n}", url, None, timedelta(hours=1)))
    await store.sync_sources(definitions, clock())
    loopback = ROOMY
    async with make_client(loopback) as client:
        puller = Puller(
            store, client, loopback, clock, polling=POLLING, concurrency=2, hosts=HostLimits(4)
        )
        results, done = await _pull_while_held(puller, held, {f"b-quick{n}" for n in range(6)})
    assert done[-1] == "a-held"
    assert sorted(r.source_id for r in results) == sorted(d.id for d in definitions)
    assert [r.error for r in results] == [None] * 7


async def test_a_congested_host_does_not_hold_the_pulls_of_the_others(
    store: Store, clock: FakeClock, upstream: Upstream
) -> None:
    """One host that does not answer, with many sources due: its pulls take its slot and
    the places that may wait for it, its next sources are postponed, and every source of the
    other host is pulled meanwhile (waiting, they would fill every place in flight)."""
    held = threading.Event()
    port = upstream.base_url.rsplit(":", 1)[1]
    definitions = []
    for n in range(8):  # 127.0.0.1: all held
        upstream.add(f"/held{n}.rss", TINY_RSS, content_type="application/rss+xml", hold=held)
        url = f"http://127.0.0.1:{port}/held{n}.rss"
        definitions.append(SourceDefinition(f"a-held{n}", url, None, timedelta(hours=1)))
    for n in range(6):  # localhost: quick
        upstream.add(f"/quick{n}.rss", TINY_RSS, content_type="application/rss+xml")
        url = f"http://localhost:{port}/quick{n}.rss"
        definitions.append(SourceDefinition(f"b-quick{n}", url, None, timedelta(hours=1)))
    await store.sync_sources(definitions, clock())
    async with make_client(ROOMY) as client:
        puller = Puller(
            store, client, ROOMY, clock, polling=POLLING, concurrency=4, hosts=HostLimits(1)
        )
        pulled, _ = await _pull_while_held(puller, held, {f"b-quick{n}" for n in range(6)})
        results = {r.source_id: r for r in pulled}
    postponed = sorted(i for i, r in results.items() if r.postponed)
    assert len(postponed) == 6  # one pulled, one waiting for the slot, the rest later
    assert all(i.startswith("a-held") for i in postponed)
    later = clock() + timedelta(seconds=ROOMY.deadline)
    polls = [(await store.get_source(i)).next_poll_at for i in postponed]
    assert polls == [later] * len(postponed)
    assert [r.error for r in results.values()] == [None] * 14


async def test_fetch_pulls_every_source_it_is_given_however_busy_the_host(
    store: Store, clock: FakeClock, upstream: Upstream
) -> None:
    """`feedmill fetch` (pull_many) never postpones: one host, one slot, four sources."""
    port = upstream.base_url.rsplit(":", 1)[1]
    definitions = []
    for n in range(4):
        upstream.add(f"/one{n}.rss", TINY_RSS, content_type="application/rss+xml", drip=0.01)
        url = f"http://127.0.0.1:{port}/one{n}.rss"
        definitions.append(SourceDefinition(f"one{n}", url, None, timedelta(hours=1)))
    await store.sync_sources(definitions, clock())
    async with make_client(ROOMY) as client:
        puller = Puller(
            store, client, ROOMY, clock, polling=POLLING, concurrency=4, hosts=HostLimits(1)
        )
        results = await puller.pull_many(await store.list_sources())
    assert [(r.postponed, r.error) for r in results] == [(False, None)] * 4
    assert all(len(upstream.requests_for(f"/one{n}.rss")) == 1 for n in range(4))


async def _pull_while_held(
    puller: Puller, held: threading.Event, quick: set[str]
) -> tuple[list[PullResult], list[str]]:
    """A heartbeat's pulls, the held upstream released once every ``quick`` source was
    pulled (or after 20 s: then the test fails); the results, and the ids in pull order."""
    done: list[str] = []
    quick_done = asyncio.Event()

    def observe(result: PullResult) -> None:
        done.append(result.source_id)
        if quick <= set(done):
            quick_done.set()

    puller.observe = observe
    cycle = asyncio.ensure_future(puller.pull_due())
    try:
        await asyncio.wait_for(quick_done.wait(), timeout=20)
    finally:
        held.set()
    return await cycle, done
