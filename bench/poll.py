"""Benchmark: one poll cycle of 1,000 sources against bare HTTP clients (issue 3).

Upstream: a uvicorn app (uvloop + httptools) in a separate process, so its CPU is not the
client's, listening on 127.0.0.1 .. 127.0.0.HOSTS (all of 127.0.0.0/8 is loopback on Linux),
so the sources spread over HOSTS host names as real polling does (the per-host limit stays at
its default of 2). It serves SOURCES feeds: 9 in 10 carry an ETag and answer 304 to a matching
If-None-Match; 1 in 10 changes on every request (a new item, a new ETag).

Measured, each in the same run at the same concurrency, on the same URLs and validators
(so 900 answers are 304 and 100 are changed feeds):

- floor, aiohttp: a bare ``aiohttp.ClientSession``;
- floor, httpx + httpx-aiohttp: a bare ``httpx.AsyncClient(transport=AiohttpTransport())``;
- floor, httpx default: a bare ``httpx.AsyncClient()`` (httpcore);
- feedmill fetch only: ``fetch_feed`` through ``make_client`` (no parse, no store);
- feedmill full cycle: ``Puller.pull_due()`` on a SQLite store holding the sources, primed
  by one earlier cycle so validators are stored, the clock moved on so every source is due:
  claim, fetch, parse and store the changed feeds, record the 304s; once per transport.

Client CPU is ``time.process_time()`` (every thread of this process: the parse executor and
SQLite's threads included). Each client is new in every round and makes one warm-up request
before the clock starts. Median and best of ROUNDS rounds are printed.

With ``--breakdown``, the cycle's parts are then measured one at a time (ROUNDS times, medians)
on a store like the cycle's: claiming every source in batches of the concurrency, recording
the 304s through the group commit, parsing the changed feeds (inline), ingesting them one at a
time, computing next poll times; the rest of the cycle (tasks, locks, thread hand-offs, the
GIL) is printed as the difference. Ratios are printed to both floors.

    python bench/poll.py [--rounds N] [--sources N] [--hosts N] [--concurrency N]
                         [--no-pin] [--profile FILE] [--breakdown]

Target (issue 3): full cycle client CPU per poll <= 2x the bare aiohttp floor.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

CHANGED_EVERY = 10  # source i with i % 10 == 9 changes on every request
ITEMS = 10
START = datetime(2026, 11, 1, tzinfo=UTC)


# -- the upstream (its own process) ----------------------------------------------------------


def feed_body(i: int, newest: int) -> bytes:
    """An RSS 2.0 feed of ITEMS items, the newest numbered ``newest``."""
    items = []
    for n in range(newest, newest - ITEMS, -1):
        published = format_datetime(START + timedelta(hours=n), usegmt=True)
        items.append(
            f"<item><title>Source {i}, item {n}</title>"
            f"<link>http://example.org/{i}/{n}</link><guid>urn:bench:{i}:{n}</guid>"
            f"<pubDate>{published}</pubDate>"
            f"<description>Item {n} of source {i}: a short summary of the story, "
            f"about as long as a real one.</description></item>"
        )
    return (
        '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel>'
        f"<title>Source {i}</title><link>http://example.org/{i}/</link>"
        f"<description>bench feed {i}</description>{''.join(items)}</channel></rss>"
    ).encode()


def static_etag(i: int) -> str:
    return f'"v1-{i}"'


def make_app(sources: int) -> Callable[..., Awaitable[None]]:
    static = {i: feed_body(i, ITEMS) for i in range(sources)}
    counters = dict.fromkeys(range(sources), ITEMS)
    xml = (b"content-type", b"application/rss+xml")

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        path = scope["path"]
        if not path.startswith("/f/") or not path.endswith(".xml"):
            await send({"type": "http.response.start", "status": 404, "headers": []})
            await send({"type": "http.response.body", "body": b""})
            return
        i = int(path[3:-4])
        match = next((v for k, v in scope["headers"] if k == b"if-none-match"), None)
        if i % CHANGED_EVERY == CHANGED_EVERY - 1:
            counters[i] += 1
            etag, body = f'"c{i}-{counters[i]}"', feed_body(i, counters[i])
        else:
            etag, body = static_etag(i), static[i]
        if match is not None and match.decode() == etag:
            headers = [(b"etag", etag.encode())]
            await send({"type": "http.response.start", "status": 304, "headers": headers})
            await send({"type": "http.response.body", "body": b""})
            return
        headers = [xml, (b"etag", etag.encode()), (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    return app


def bind_hosts(hosts: int) -> list[socket.socket]:
    """One listening socket per loopback address 127.0.0.1 .. 127.0.0.HOSTS, one port."""
    for _attempt in range(20):
        first = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        first.bind(("127.0.0.1", 0))
        port = first.getsockname()[1]
        socks = [first]
        try:
            for n in range(2, hosts + 1):
                sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                socks.append(sock)
                sock.bind((f"127.0.0.{n}", port))
        except OSError:  # that port is taken on one of the addresses: try another
            for sock in socks:
                sock.close()
            continue
        return socks
    raise SystemExit("no port free on every loopback address")


def serve(sources: int, hosts: int, cpu: int | None, app: Any = None) -> None:
    """The upstream: ``app`` (by default :func:`make_app`) on every loopback host."""
    import uvicorn

    if cpu is not None:
        os.sched_setaffinity(0, {cpu})
    socks = bind_hosts(hosts)
    for sock in socks:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.listen(2048)
    print(socks[0].getsockname()[1], flush=True)
    config = uvicorn.Config(
        app or make_app(sources),
        loop="uvloop",
        http="httptools",
        lifespan="off",
        access_log=False,
        log_level="warning",
        timeout_keep_alive=60,
        backlog=2048,
    )
    uvicorn.Server(config).run(sockets=socks)


class UpstreamProcess:
    def __init__(self, sources: int, hosts: int, cpu: int | None) -> None:
        command = [sys.executable, __file__, "--serve", f"--sources={sources}", f"--hosts={hosts}"]
        if cpu is not None:
            command.append(f"--cpu={cpu}")
        self.process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line.strip().isdigit():
            self.process.kill()
            raise SystemExit(f"upstream did not start: {line!r}")
        self.port = int(line)
        self.hosts = hosts

    def url(self, i: int) -> str:
        return f"http://127.0.0.{1 + i % self.hosts}:{self.port}/f/{i}.xml"

    def close(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)


# -- the client side ------------------------------------------------------------------------


@dataclass
class Run:
    """One round of one contender: wall and client CPU seconds for ``polls`` polls."""

    wall: float
    cpu: float
    polls: int


async def measured(body: Callable[[], Awaitable[int]]) -> Run:
    wall, cpu = time.perf_counter(), time.process_time()
    polls = await body()
    return Run(time.perf_counter() - wall, time.process_time() - cpu, polls)


def etags(sources: int) -> list[str]:
    """What a poller would send: the static ETag; for a changing feed, one it has outgrown."""
    return [
        f'"c{i}-0"' if i % CHANGED_EVERY == CHANGED_EVERY - 1 else static_etag(i)
        for i in range(sources)
    ]


def check_statuses(statuses: list[int], sources: int) -> int:
    changed = sources // CHANGED_EVERY
    expected = {304: sources - changed, 200: changed}
    got = {status: statuses.count(status) for status in set(statuses)}
    assert got == expected, got
    return len(statuses)


async def floor_aiohttp(upstream: UpstreamProcess, sources: int, concurrency: int) -> Run:
    import aiohttp

    tags, limit = etags(sources), asyncio.Semaphore(concurrency)
    async with aiohttp.ClientSession() as session:

        async def one(i: int) -> int:
            async with limit, session.get(upstream.url(i), headers={"If-None-Match": tags[i]}) as r:
                await r.read()
                return r.status

        await one(0)  # warm-up

        async def cycle() -> int:
            statuses = await asyncio.gather(*(one(i) for i in range(sources)))
            return check_statuses(list(statuses), sources)

        return await measured(cycle)


async def floor_httpx(
    upstream: UpstreamProcess, sources: int, concurrency: int, *, aiohttp_transport: bool
) -> Run:
    import httpx
    from httpx_aiohttp import AiohttpTransport

    tags, limit = etags(sources), asyncio.Semaphore(concurrency)
    transport = AiohttpTransport() if aiohttp_transport else None
    async with httpx.AsyncClient(transport=transport) as client:

        async def one(i: int) -> int:
            async with limit:
                response = await client.get(upstream.url(i), headers={"If-None-Match": tags[i]})
                return response.status_code

        await one(0)

        async def cycle() -> int:
            statuses = await asyncio.gather(*(one(i) for i in range(sources)))
            return check_statuses(list(statuses), sources)

        return await measured(cycle)


def feedmill_settings(concurrency: int) -> Any:
    """feedmill's own configuration path, with loopback allowed and the given concurrency."""
    from feedmill.config import Settings

    return Settings.model_validate(
        {"fetch": {"concurrency": concurrency, "allow_addresses": ["127.0.0.0/8"]}}
    )


async def feedmill_fetch_only(
    upstream: UpstreamProcess, sources: int, concurrency: int, transport: str
) -> Run:
    from sources import Validators, fetch_feed, make_client

    config = feedmill_settings(concurrency)
    settings = replace(config.fetch_settings(), transport=transport)
    tags, limit = etags(sources), asyncio.Semaphore(concurrency)
    async with make_client(settings) as client:

        async def one(i: int) -> int:
            async with limit:
                result = await fetch_feed(client, upstream.url(i), Validators(tags[i]), settings)
                return result.status

        await one(0)

        async def cycle() -> int:
            statuses = await asyncio.gather(*(one(i) for i in range(sources)))
            return check_statuses(list(statuses), sources)

        return await measured(cycle)


class Cycle:
    """feedmill's real poll path on a fresh SQLite store, primed once."""

    def __init__(self, upstream: UpstreamProcess, sources: int, concurrency: int, folder: Path):
        self.upstream, self.sources, self.concurrency = upstream, sources, concurrency
        self.config = feedmill_settings(concurrency)
        self.database = f"sqlite:///{folder / 'poll.db'}"
        self.now = START
        self.store: Any = None

    async def open(self) -> None:
        from store import SourceDefinition, Store, ensure_schema

        self.store = Store.open(self.database)
        await ensure_schema(self.store)
        await self.store.sync_sources(
            [
                SourceDefinition(f"s{i:04d}", self.upstream.url(i), None, timedelta(minutes=30))
                for i in range(self.sources)
            ],
            self.now,
        )
        primed = await self.run("aiohttp")  # stores validators, body hashes, entries
        assert primed.polls == self.sources, primed

    async def run(self, transport: str) -> Run:
        from feedmill.pull import Puller
        from sources import make_client

        settings = replace(self.config.fetch_settings(), transport=transport)
        self.now += timedelta(days=2)  # past fetch.max_interval: every source is due
        now = self.now
        async with make_client(settings) as client:
            puller = Puller(
                self.store,
                client,
                settings,
                lambda: now,
                concurrency=self.config.fetch.concurrency,
                polling=self.config.poll_settings(),
                hosts=self.config.host_limits(),
            )
            await client.get(self.upstream.url(0))  # warm-up

            async def cycle() -> int:
                results = await puller.pull_due()
                failed = [str(r.error) for r in results if r.error]
                assert not failed, failed[:3]
                assert len(results) == self.sources, len(results)
                return len(results)

            return await measured(cycle)

    async def close(self) -> None:
        await self.store.close()


CONTENDERS = [
    "floor: aiohttp",
    "floor: httpx + httpx-aiohttp",
    "floor: httpx default (httpcore)",
    "feedmill fetch only, aiohttp transport",
    "feedmill full cycle, aiohttp transport",
    "feedmill full cycle, httpcore transport",
]


async def cpu_of(body: Callable[[], Awaitable[Any]]) -> float:
    """Client CPU seconds of one awaited piece of work."""
    start = time.process_time()
    await body()
    return time.process_time() - start


async def breakdown(
    args: argparse.Namespace, upstream: UpstreamProcess, folder: Path
) -> dict[str, float]:
    """The cycle's parts measured one at a time on a store like the cycle's, ROUNDS times:
    the median of each, as client CPU per poll of a cycle (its total divided by SOURCES)."""
    from feedmill.pull import CLAIM_LEASE
    from sources import Validators, parse_document
    from sources.policy import PollState, header_hint, next_poll_after_success
    from store import PollingUpdate

    n, c = args.sources, args.concurrency
    cycle = Cycle(upstream, n, c, folder)
    await cycle.open()
    store = cycle.store
    changed = [i for i in range(n) if i % CHANGED_EVERY == CHANGED_EVERY - 1]
    unchanged = [i for i in range(n) if i % CHANGED_EVERY != CHANGED_EVERY - 1]
    tags = etags(n)
    polling = PollingUpdate(None, None, 0, "x" * 64, timedelta(hours=1), None)
    settings = cycle.config.poll_settings()
    # Item numbers of the changed feeds. In the rounds every contender's request adds an item
    # to each changing feed, so a full cycle finds len(CONTENDERS) of its ITEMS items new.
    base, step = 10_000, min(len(CONTENDERS), ITEMS)
    parts: dict[str, list[float]] = {}

    def parse_all(newest: int) -> list[Any]:
        return [
            parse_document(feed_body(i, newest), upstream.url(i), "application/rss+xml")
            for i in changed
        ]

    async def ingest_all(feeds: list[Any], now: datetime) -> None:
        later = now + timedelta(hours=1)
        for i, feed in zip(changed, feeds, strict=True):
            await store.ingest(f"s{i:04d}", feed, Validators('"x"'), now, later, polling)

    async def one_round(number: int) -> None:
        cycle.now += timedelta(days=2)
        now = later = cycle.now

        async def claim_all() -> None:
            while await store.claim_due_sources(now, CLAIM_LEASE, limit=c, owner="bench"):
                pass

        async def record_304s() -> None:
            for start in range(0, len(unchanged), c):
                await asyncio.gather(
                    *(
                        store.record_not_modified(
                            f"s{i:04d}", Validators(tags[i]), now, later, polling
                        )
                        for i in unchanged[start : start + c]
                    )
                )

        feeds: list[Any] = []

        async def parse() -> None:
            feeds.extend(parse_all(base + number * step))

        async def policy() -> None:
            for i in range(n):
                state = PollState(f"s{i:04d}", timedelta(minutes=30))
                hint = header_hint(None, None, None, now)
                next_poll_after_success(now, state, settings, [hint])

        measured_parts = {
            "claim (batches of concurrency)": claim_all,
            "record 304s (group commit)": record_304s,
            "parse changed feeds (inline, no thread)": parse,
            "ingest changed feeds (one at a time)": lambda: ingest_all(feeds, now),
            "policy (next poll time)": policy,
        }
        for name, part in measured_parts.items():
            parts.setdefault(name, []).append(await cpu_of(part))

    try:
        await ingest_all(parse_all(base), cycle.now)  # the changed feeds' items, stored once
        for number in range(1, args.rounds + 1):
            await one_round(number)
    finally:
        await cycle.close()
    return {name: statistics.median(cpus) / n * 1e3 for name, cpus in parts.items()}


def report_breakdown(parts: dict[str, float], runs: dict[str, list[Run]]) -> None:
    def median(name: str) -> float:
        return statistics.median(r.cpu / r.polls for r in runs[name]) * 1e3

    fetch, full = median(CONTENDERS[3]), median(CONTENDERS[4])
    print()
    print("breakdown of the full cycle (aiohttp transport), client CPU ms per poll, medians:")
    print(f"  {'fetch (feedmill fetch only, median above)':50} {fetch:7.3f}")
    for name, cpu in parts.items():
        print(f"  {name:50} {cpu:7.3f}")
    rest = full - fetch - sum(parts.values())
    print(f"  {'rest: tasks, locks, thread hand-offs, GIL (by difference)':50} {rest:7.3f}")
    print(f"  {'full cycle (median above)':50} {full:7.3f}")


async def rounds(args: argparse.Namespace, upstream: UpstreamProcess, folder: Path) -> dict:
    runs: dict[str, list[Run]] = {name: [] for name in CONTENDERS}
    cycle = Cycle(upstream, args.sources, args.concurrency, folder)
    await cycle.open()
    n, c = args.sources, args.concurrency
    contenders: dict[str, Callable[[], Awaitable[Run]]] = {
        CONTENDERS[0]: lambda: floor_aiohttp(upstream, n, c),
        CONTENDERS[1]: lambda: floor_httpx(upstream, n, c, aiohttp_transport=True),
        CONTENDERS[2]: lambda: floor_httpx(upstream, n, c, aiohttp_transport=False),
        CONTENDERS[3]: lambda: feedmill_fetch_only(upstream, n, c, "aiohttp"),
        CONTENDERS[4]: lambda: cycle.run("aiohttp"),
        CONTENDERS[5]: lambda: cycle.run("httpcore"),
    }
    profiler = cProfile.Profile() if args.profile else None
    try:
        for number in range(args.rounds):
            line = []
            for name, contender in contenders.items():
                profiling = profiler is not None and name == CONTENDERS[4]
                if profiling:
                    profiler.enable()
                run = await contender()
                if profiling:
                    profiler.disable()
                runs[name].append(run)
                line.append(f"{run.cpu / run.polls * 1e3:.3f}")
            print(f"round {number + 1}: client CPU ms/poll " + " | ".join(line), flush=True)
    finally:
        await cycle.close()
    if profiler is not None:
        profiler.dump_stats(args.profile)
        print(f"profile of the full cycle (aiohttp transport) written to {args.profile}")
    return runs


def report(runs: dict[str, list[Run]], args: argparse.Namespace) -> None:
    def cpu_per_poll(name: str, pick: Callable[[list[float]], float]) -> float:
        return pick([r.cpu / r.polls for r in runs[name]]) * 1e3

    def polls_per_s(name: str, pick: Callable[[list[float]], float]) -> float:
        return pick([r.polls / r.wall for r in runs[name]])

    width = max(len(name) for name in runs)
    print()
    print(f"{args.sources} polls per round, concurrency {args.concurrency}, {args.rounds} rounds")
    print(f"{'':{width}}  {'client CPU ms/poll':>20}  {'polls/s':>15}")
    print(f"{'':{width}}  {'median':>9} {'best':>10}  {'median':>7} {'best':>7}")
    for name in runs:
        print(
            f"{name:{width}}  {cpu_per_poll(name, statistics.median):9.3f} "
            f"{cpu_per_poll(name, min):10.3f}  {polls_per_s(name, statistics.median):7.0f} "
            f"{polls_per_s(name, max):7.0f}"
        )
    floor = cpu_per_poll(CONTENDERS[0], statistics.median)
    floor_best = cpu_per_poll(CONTENDERS[0], min)
    print()
    for name in CONTENDERS[1:]:
        median = cpu_per_poll(name, statistics.median) / floor
        best = cpu_per_poll(name, min) / floor_best
        print(f"{name} / aiohttp floor, client CPU: {median:.2f} (median), {best:.2f} (best)")
    httpx_floor = cpu_per_poll(CONTENDERS[1], statistics.median)
    httpx_best = cpu_per_poll(CONTENDERS[1], min)
    for name in CONTENDERS[3:5]:
        median = cpu_per_poll(name, statistics.median) / httpx_floor
        best = cpu_per_poll(name, min) / httpx_best
        print(
            f"{name} / httpx + httpx-aiohttp floor, client CPU: {median:.2f} (median), "
            f"{best:.2f} (best)"
        )
    # The same ratios round by round (each pair measured minutes apart, not a run apart):
    # steadier than ratios of medians on a busy machine.
    for name in CONTENDERS[3:5]:
        for floor_name in CONTENDERS[:2]:
            pairs = zip(runs[name], runs[floor_name], strict=True)
            ratio = statistics.median((r.cpu / r.polls) / (f.cpu / f.polls) for r, f in pairs)
            print(f"{name} / {floor_name}, median of per-round ratios: {ratio:.2f}")
    full = cpu_per_poll(CONTENDERS[4], statistics.median) / floor
    print(f"target: full cycle (aiohttp transport) / aiohttp floor <= 2: {full:.2f}")
    aio = cpu_per_poll(CONTENDERS[4], statistics.median)
    core = cpu_per_poll(CONTENDERS[5], statistics.median)
    chosen = "aiohttp" if aio <= core else "httpcore"
    print(f"transport chosen by client CPU per poll of the full cycle: {chosen}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--sources", type=int, default=1000)
    parser.add_argument("--hosts", type=int, default=250, help="loopback addresses, max 254")
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--no-pin", action="store_true", help="do not pin client and upstream")
    parser.add_argument("--profile", metavar="FILE", help="cProfile the full cycle into FILE")
    parser.add_argument(
        "--breakdown", action="store_true", help="also measure the cycle's parts one by one"
    )
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--cpu", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.sources, args.hosts, args.cpu)
        return
    cpus = sorted(os.sched_getaffinity(0))
    pin = not args.no_pin and len(cpus) >= 2
    if pin:  # before any thread starts, so the executor and SQLite threads inherit it
        os.sched_setaffinity(0, {cpus[0]})
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cpus, Python {platform.python_version()}"
        f", load average {os.getloadavg()[0]:.2f}"
    )
    print(
        f"client on cpu {cpus[0]}, upstream on cpu {cpus[-1]}"
        if pin
        else "client and upstream not pinned"
    )
    upstream = UpstreamProcess(args.sources, args.hosts, cpus[-1] if pin else None)
    try:
        print(
            f"upstream: uvicorn on 127.0.0.1-127.0.0.{args.hosts}:{upstream.port}, "
            f"{args.sources} feeds, 1 in {CHANGED_EVERY} changing"
        )
        print("columns: " + " | ".join(CONTENDERS))
        with tempfile.TemporaryDirectory() as folder:
            runs = asyncio.run(rounds(args, upstream, Path(folder)))
        parts = {}
        if args.breakdown:
            with tempfile.TemporaryDirectory() as folder:
                parts = asyncio.run(breakdown(args, upstream, Path(folder)))
    finally:
        upstream.close()
    report(runs, args)
    if parts:
        report_breakdown(parts, runs)


if __name__ == "__main__":
    main()
