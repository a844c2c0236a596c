"""Many sources on one machine: which costs grow with the number of sources.

Upstream: bench/poll.py's generated feeds (10 items each; 9 in 10 answer 304 to their ETag,
1 in 10 changes on every request) in a process of their own, on 127.0.0.1 .. 127.0.0.HOSTS
so the per-host limit works as it does against real hosts; /slow/I.xml answers only after
``--slow-seconds`` (the fetch deadline of the flow phase).

The config has SOURCES sources and two curated feeds: `all` (every source) and `ten` (ten
sources). Phases (``--phases``, in this order; each prints its figures and ratios measured in
the same run, rounds interleaved):

    config    load_config in-process, and `feedmill check-config` as a user runs it
    pull      first full pull (all 200), then poll cycles at 90% 304, CPU per poll, against
              the same cycle over a 1,000-source store (interleaved)
    serve     CPU per feed request in-process (FeedApp, no HTTP): `all` vs `ten`, 200s and 304s
    status    the status page (first page, in-process) and `feedmill sources` (the CLI)
    startup   `feedmill run` on the filled database: seconds to the first served feed request
    memory    entries copied to reach --entries, then `feedmill run`'s RSS after serving
    flow      a cycle with 1% of the sources answering only at the deadline against one
              without: how late the due sources start
    ingest    `feedmill run` with --ingest-sources changing sources: wrk p99 on a feed while
              they are ingested vs idle (rounds interleaved)
    workers   (PostgreSQL) 4 `feedmill worker` processes pull every source: pulls per worker

    python bench/scale.py [--sources 10000] [--database sqlite|postgres] [--phases ...]

The machine may be shared: every ratio is from one run. Figures go to BENCHMARKS.md by hand.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import re
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import poll  # noqa: E402  (the generated upstream feeds)

FEEDMILL = [sys.executable, "-m", "feedmill"]  # this checkout's, whichever is installed
os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
PG_SERVER = os.environ.get("FEEDMILL_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
ALL_PHASES = ("config", "pull", "serve", "status", "startup", "memory", "flow", "ingest")


# -- upstream ------------------------------------------------------------------------------


def make_upstream_app(sources: int, slow_seconds: float) -> Any:
    inner = poll.make_app(sources)
    changing = dict.fromkeys(range(sources), 0)

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        path = scope["path"]
        if path.startswith("/slow/"):
            await asyncio.sleep(slow_seconds)
            scope = {**scope, "path": "/f/" + path[6:]}
        elif path.startswith("/c/"):  # changes on every request
            i = int(path[3:-4])
            changing[i] += 1
            body = poll.feed_body(i, poll.ITEMS + changing[i])
            headers = [(b"content-type", b"application/rss+xml")]
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            await send({"type": "http.response.body", "body": body})
            return
        await inner(scope, receive, send)

    return app


def serve_upstream(sources: int, hosts: int, slow_seconds: float) -> None:
    poll.serve(sources, hosts, None, make_upstream_app(sources, slow_seconds))


class Upstream:
    def __init__(self, sources: int, hosts: int, slow_seconds: float) -> None:
        command = [sys.executable, __file__, "--upstream", str(sources), str(hosts)]
        command.append(str(slow_seconds))
        self.process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
        assert self.process.stdout is not None
        self.port = int(self.process.stdout.readline())
        self.hosts = hosts

    def url(self, i: int, kind: str = "f") -> str:
        return f"http://127.0.0.{1 + i % self.hosts}:{self.port}/{kind}/{i}.xml"

    def close(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)


# -- the config and the database ---------------------------------------------------------------


def write_config(
    path: Path, database: str, port: int, urls: list[str], extra: dict[str, Any] | None = None
) -> None:
    """YAML written by hand: yaml.dump of 50,000 sources is slower than the bench itself."""
    lines = [
        f"database: {json.dumps(database)}",
        "server:",
        "  host: 127.0.0.1",
        f"  port: {port}",
        "  base_url: https://news.example.org/",
        "fetch:",
        "  concurrency: 50",
        "  block_private_addresses: false",
    ]
    for key, value in (extra or {}).items():
        lines.append(f"{key}: {json.dumps(value)}")
    lines.append("sources:")
    for i, url in enumerate(urls):
        lines += [f"  - id: s{i:05d}", f"    url: {url}"]
    lines += [
        "feeds:",
        "  - id: all",
        "    title: Everything",
        "    limit: 50",
        "  - id: ten",
        "    title: Ten sources",
        "    limit: 50",
        "    sources: [" + ", ".join(f"s{i:05d}" for i in range(10)) + "]",
    ]
    path.write_text("\n".join(lines) + "\n")


class Database:
    """A fresh SQLite file or PostgreSQL database for one run."""

    def __init__(self, kind: str, folder: Path, name: str = "scale") -> None:
        self.kind = kind
        if kind == "sqlite":
            self.url = f"sqlite:///{folder / (name + '.db')}"
            return
        import psycopg

        self.name = f"feedmill_{name}_{os.getpid()}"
        with psycopg.connect(PG_SERVER, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{self.name}"')
            admin.execute(f'CREATE DATABASE "{self.name}"')
        base = PG_SERVER.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://", 1)
        self.url = f"{base}/{self.name}"

    def sql(self, statement: str) -> None:
        """One statement from outside feedmill (the bench's own changes to the data)."""
        if self.kind == "sqlite":
            with sqlite3.connect(self.url.removeprefix("sqlite:///"), timeout=60) as conn:
                conn.execute(statement)
            return
        import psycopg

        with psycopg.connect(self.url.replace("+psycopg", ""), autocommit=True) as conn:
            conn.execute(statement)

    def drop(self) -> None:
        if self.kind == "postgres":
            import psycopg

            with psycopg.connect(PG_SERVER, autocommit=True) as admin:
                admin.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')


def settings_of(config: Path) -> Any:
    from feedmill.config import load_config

    return load_config(config)


# -- helpers -------------------------------------------------------------------------------


def cpu_of(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(c) for c in (task / "children").read_text().split()]
    return found


def http_get(url: str, timeout: float = 30.0) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as answer:
            return answer.status, answer.read()
    except urllib.error.HTTPError as exc:
        return exc.code, b""


def wait_served(url: str, limit: float = 600.0) -> float:
    started = time.perf_counter()
    while time.perf_counter() - started < limit:
        try:
            status, _ = http_get(url, timeout=5)
            if status == 200:
                return time.perf_counter() - started
        except OSError:
            pass
        time.sleep(0.05)
    raise SystemExit(f"{url} not served within {limit:.0f}s")


class Feedmill:
    """`feedmill COMMAND` in a process of its own."""

    def __init__(self, config: Path, command: str = "run", *args: str) -> None:
        self.started = time.perf_counter()
        self.process = subprocess.Popen(
            [*FEEDMILL, "--config", str(config), command, *args],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def median(values: list[float]) -> float:
    return statistics.median(values)


# -- phases --------------------------------------------------------------------------------


def phase_config(run: Run) -> None:
    loads, checks = [], []
    for _ in range(3):
        started = time.perf_counter()
        settings_of(run.config)
        loads.append(time.perf_counter() - started)
        started = time.perf_counter()
        subprocess.run(
            [*FEEDMILL, "--config", str(run.config), "check-config"],
            check=True,
            capture_output=True,
        )
        checks.append(time.perf_counter() - started)
    size = run.config.stat().st_size / 1e6
    print(
        f"config: {run.sources} sources, {size:.1f} MB; load_config {median(loads):.2f}s, "
        f"`feedmill check-config` {median(checks):.2f}s (medians of 3)"
    )


async def open_store(url: str, settings: Any, now: datetime) -> Any:
    from store import Store, ensure_schema

    store = Store.open(url)
    await ensure_schema(store)
    await store.sync_sources(settings.source_definitions(), now)
    return store


async def pull_cycle(store: Any, settings: Any, now: datetime) -> tuple[float, float, int, list]:
    """One heartbeat's pull at ``now``: (wall, CPU, polls, [(start delay, source id)])."""
    from feedmill.pull import Puller
    from sources import make_client

    fetch = settings.fetch_settings()
    async with make_client(fetch) as client:
        puller = Puller(
            store,
            client,
            fetch,
            lambda: now,
            concurrency=settings.fetch.concurrency,
            polling=settings.poll_settings(),
            hosts=settings.host_limits(),
        )
        loop = asyncio.get_running_loop()
        starts: list[tuple[float, str]] = []
        began = loop.time()
        puller.observe = lambda r: starts.append((loop.time() - r.seconds - began, r.source_id))
        wall, cpu = time.perf_counter(), time.process_time()
        results = await puller.pull_due()
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    failed = [str(r.error) for r in results if r.error and "slow" not in r.source_id]
    if failed:
        print(f"  {len(failed)} failed, e.g. {failed[:2]}")
    return wall, cpu, len(results), starts


async def phase_pull(run: Run) -> None:
    settings = settings_of(run.config)
    store = await open_store(run.db.url, settings, run.now)
    wall, cpu, polls, _ = await pull_cycle(store, settings, run.now)
    print(
        f"pull: first full pull of {polls} sources (all 200): {wall:.1f}s wall, "
        f"{cpu:.1f}s CPU, {cpu / polls * 1e3:.2f} ms CPU a poll"
    )
    small_config = run.folder / "small.yaml"
    small_db = Database(run.db.kind, run.folder, "small")
    write_config(small_config, small_db.url, 0, [run.upstream.url(i) for i in range(1000)])
    small_settings = settings_of(small_config)
    small = await open_store(small_db.url, small_settings, run.now)
    await pull_cycle(small, small_settings, run.now)
    per_poll: dict[str, list[float]] = {"big": [], "small": []}
    for _ in range(run.rounds):
        run.now += timedelta(days=2)  # past max_interval: every source is due
        for name, target, target_settings in (
            ("big", store, settings),
            ("small", small, small_settings),
        ):
            wall, cpu, polls, _ = await pull_cycle(target, target_settings, run.now)
            per_poll[name].append(cpu / polls * 1e3)
            print(f"  cycle {name}: {polls} polls, {wall:.1f}s wall, {cpu:.1f}s CPU")
    big, little = median(per_poll["big"]), median(per_poll["small"])
    print(
        f"pull: 90% 304 cycle, CPU a poll: {big:.3f} ms at {run.sources} sources, "
        f"{little:.3f} ms at 1,000: ratio {big / little:.2f} (target <= 1.3)"
    )
    share = big / 1e3 * run.sources / 1800
    print(
        f"pull: one worker keeping {run.sources} sources at a 30-minute interval needs "
        f"{share:.1%} of a core (this CPU a poll x sources / 1800 s)"
    )
    await small.close()
    await store.close()
    small_db.drop()


class Receiver:
    def __init__(self) -> None:
        self.status = 0
        self.headers: dict[bytes, bytes] = {}

    async def __call__(self, message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            self.status = message["status"]
            self.headers = dict(message["headers"])


async def _receive() -> dict[str, Any]:
    return {"type": "http.request", "body": b""}


def scope_of(path: str, headers: list[tuple[bytes, bytes]]) -> dict[str, Any]:
    return {"type": "http", "method": "GET", "path": path, "headers": headers, "query_string": b""}


async def phase_serve(run: Run) -> None:
    from feedmill.service import make_publisher
    from feeds import create_app
    from store import Store

    settings = settings_of(run.config)
    store = Store.open(run.db.url)
    app = create_app(make_publisher(settings, store, lambda: run.now))
    etags = {}
    for feed in ("all", "ten"):
        receiver = Receiver()
        await app(scope_of(f"/feeds/{feed}.atom", []), _receive, receiver)
        assert receiver.status == 200, receiver.status
        etags[feed] = receiver.headers[b"etag"]
    gc.collect()
    gc.freeze()  # as the service does after start-up: no full collection walks it all again
    cpu: dict[tuple[str, int], list[float]] = {}
    for turn in range(run.rounds * 2):  # each feed first in half of the rounds
        for feed in ("all", "ten") if turn % 2 == 0 else ("ten", "all"):
            for status, headers in ((200, []), (304, [(b"if-none-match", etags[feed])])):
                receiver = Receiver()
                scope = scope_of(f"/feeds/{feed}.atom", headers)
                started = time.process_time()
                for _ in range(run.requests):
                    await app(scope, _receive, receiver)
                spent = time.process_time() - started
                assert receiver.status == status, (feed, receiver.status)
                cpu.setdefault((feed, status), []).append(spent / run.requests * 1e6)
    for status in (200, 304):
        every, ten = median(cpu[("all", status)]), median(cpu[("ten", status)])
        print(
            f"serve {status}: {every:.1f} us CPU a request for the feed over all "
            f"{run.sources} sources, {ten:.1f} us over ten: ratio {every / ten:.2f} "
            "(target <= 1.2)"
        )
    await store.close()


def phase_status(run: Run) -> None:
    asyncio.run(status_page(run))
    cli = []
    for _ in range(3):
        started = time.perf_counter()
        subprocess.run(
            [*FEEDMILL, "--config", str(run.config), "sources"], check=True, capture_output=True
        )
        cli.append(time.perf_counter() - started)
    print(f"`feedmill sources`: {median(cli):.2f}s (median of 3)")


async def status_page(run: Run) -> None:
    from feedmill.service import make_publisher
    from feeds import create_app
    from store import Store

    settings = settings_of(run.config)
    store = Store.open(run.db.url)
    app = create_app(make_publisher(settings, store, lambda: run.now))
    took, size = [], 0
    for _ in range(3):
        receiver, body = Receiver(), bytearray()

        async def send(
            message: dict[str, Any], receiver: Receiver = receiver, body: bytearray = body
        ) -> None:
            await receiver(message)
            body.extend(message.get("body", b""))

        started = time.perf_counter()
        await app(scope_of("/", []), _receive, send)
        took.append(time.perf_counter() - started)
        size = len(body)
    await store.close()
    print(
        f"status page: {median(took):.2f}s, {size / 1e3:.0f} kB, HTTP {receiver.status} "
        "(median of 3)"
    )


def phase_startup(run: Run) -> None:
    url = f"http://127.0.0.1:{run.port}/feeds/ten.atom"
    took, loads, cpu = [], [], []
    for _ in range(3):
        started = time.perf_counter()
        settings_of(run.config)
        loads.append(time.perf_counter() - started)
        service = Feedmill(run.config, "run")
        try:
            took.append(wait_served(url))
            cpu.append(cpu_of(service.process.pid))
        finally:
            service.stop()
    print(
        f"startup: first feed request served {median(took):.2f}s after `feedmill run` "
        f"started, {median(cpu):.2f}s of its CPU (the config alone loads in "
        f"{median(loads):.2f}s in-process; medians of 3)"
    )


def phase_memory(run: Run) -> None:
    if run.entries:
        copy_entries(run)
    service = Feedmill(run.config, "run")
    base = f"http://127.0.0.1:{run.port}"
    try:
        wait_served(f"{base}/feeds/ten.atom")
        for path in (
            "/feeds/all.atom",
            "/feeds/all.rss",
            "/feeds/ten.json",
            "/",
            "/?page=3",
            "/status.json",
            "/sources.opml",
        ):
            http_get(base + path)
        time.sleep(2)
        main = rss_mb(service.process.pid)
        workers = [rss_mb(p) for p in children(service.process.pid)]
        counted = count_entries(run)
        print(
            f"memory: `feedmill run`, {run.sources} sources, {counted} stored entries: "
            f"{main:.0f} MB RSS after serving (target <= 500 MB); its {len(workers)} parse "
            f"worker processes {sum(workers):.0f} MB more"
        )
    finally:
        service.stop()


def count_entries(run: Run) -> int:
    if run.db.kind == "sqlite":
        with sqlite3.connect(run.db.url.removeprefix("sqlite:///")) as conn:
            return int(conn.execute("SELECT count(*) FROM entries").fetchone()[0])
    import psycopg

    with psycopg.connect(run.db.url.replace("+psycopg", "")) as conn:
        row = conn.execute("SELECT count(*) FROM entries").fetchone()
        return int(row[0]) if row else 0


def copy_entries(run: Run) -> None:
    """Copies of the stored entries (new ids, uids and keys) until there are --entries."""
    have = count_entries(run)
    copy = 0
    while have < run.entries:
        copy += 1
        take = min(have, run.entries - have)
        columns = entry_columns(run)
        chosen = ", ".join(
            f"{c} || '-c{copy}'" if c in ("uid", "entry_key") else c for c in columns
        )
        run.db.sql(
            f"INSERT INTO entries ({', '.join(columns)}) SELECT {chosen} FROM entries "
            f"WHERE id IN (SELECT id FROM entries ORDER BY id LIMIT {take})"
        )
        have = count_entries(run)
    print(f"memory: the database holds {have} entries")


def entry_columns(run: Run) -> list[str]:
    if run.db.kind == "sqlite":
        with sqlite3.connect(run.db.url.removeprefix("sqlite:///")) as conn:
            rows = conn.execute("PRAGMA table_info(entries)").fetchall()
        return [r[1] for r in rows if r[1] != "id"]
    import psycopg

    with psycopg.connect(run.db.url.replace("+psycopg", "")) as conn:
        rows = conn.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_name = 'entries' "
            "ORDER BY ordinal_position"
        ).fetchall()
    return [r[0] for r in rows if r[0] != "id"]


async def phase_flow(run: Run) -> None:
    count = min(run.sources, run.flow_sources)
    slow = max(1, count // 100)
    timing: dict[str, list[float]] = {}
    for label, slow_count in (("no slow upstream", 0), ("1% at the deadline", slow)):
        config = run.folder / f"flow-{slow_count}.yaml"
        db = Database(run.db.kind, run.folder, f"flow{slow_count}")
        # Every 101st source is slow: 101 is prime to the number of hosts, so the slow ones
        # spread over all the hosts; with --slow-host every 100th (all on one host, behind
        # its per-host limit: a congested host).
        step = (100 if run.slow_host else 101) if slow_count else count + 1
        urls = [run.upstream.url(i, "slow" if i % step == step - 1 else "f") for i in range(count)]
        deadline = run.slow_seconds
        write_config(config, db.url, 0, urls)
        text = config.read_text().replace(
            "  concurrency: 50\n", f"  concurrency: 50\n  deadline: {deadline:g}s\n"
        )
        config.write_text(text)
        settings = settings_of(config)
        store = await open_store(db.url, settings, run.now)
        wall, _, polls, starts = await pull_cycle(store, settings, run.now)
        delays = sorted(d for d, _ in starts)
        timing[label] = [
            wall,
            delays[len(delays) // 2],
            delays[int(len(delays) * 0.99)],
            delays[-1],
        ]
        print(
            f"flow ({label}): {polls} sources due at once, cycle {wall:.1f}s; a due source "
            f"starts after p50 {timing[label][1]:.1f}s, p99 {timing[label][2]:.1f}s, last "
            f"{timing[label][3]:.1f}s (deadline {deadline:g}s)"
        )
        await store.close()
        db.drop()
    fast, slowed = timing["no slow upstream"], timing["1% at the deadline"]
    print(
        f"flow: cycle with 1% slow / without: {slowed[0] / fast[0]:.2f}x; p99 start delay "
        f"{slowed[2]:.1f}s vs {fast[2]:.1f}s"
    )


def phase_ingest(run: Run) -> None:
    ensure_wrk()
    count = run.ingest_sources
    config = run.folder / "ingest.yaml"
    db = Database(run.db.kind, run.folder, "ingest")
    urls = [run.upstream.url(i, "c") for i in range(count)]
    write_config(config, db.url, run.port, urls)
    text = config.read_text().replace("fetch:\n", "scheduler:\n  heartbeat: 1s\nfetch:\n")
    config.write_text(text)
    service = Feedmill(config, "run")
    base = f"http://127.0.0.1:{run.port}"
    try:
        wait_served(f"{base}/feeds/ten.atom")
        wait_idle(db, run)
        rows: dict[str, list[dict[str, float]]] = {"idle": [], "ingesting": []}
        for _ in range(run.rounds):
            for label in ("idle", "ingesting"):
                if label == "ingesting":
                    db.sql("UPDATE sources SET next_poll_at = '2000-01-01 00:00:00'")
                for kind, headers in (("200", []), ("304", etag_header(f"{base}/feeds/all.atom"))):
                    result = wrk(f"{base}/feeds/all.atom", run.wrk_seconds, headers)
                    rows[label].append({"kind": float(kind), **result})
                if label == "ingesting":
                    wait_idle(db, run)
        for kind in (200.0, 304.0):
            idle = median([r["p99_ms"] for r in rows["idle"] if r["kind"] == kind])
            busy = median([r["p99_ms"] for r in rows["ingesting"] if r["kind"] == kind])
            rps_idle = median([r["rps"] for r in rows["idle"] if r["kind"] == kind])
            rps_busy = median([r["rps"] for r in rows["ingesting"] if r["kind"] == kind])
            print(
                f"ingest {int(kind)}: p99 {busy:.1f} ms while {count} sources are ingested, "
                f"{idle:.1f} ms idle: ratio {busy / idle:.2f} (target <= 3); "
                f"{rps_busy:.0f} vs {rps_idle:.0f} requests/s"
            )
    finally:
        service.stop()
        db.drop()


def wait_idle(db: Database, run: Run, limit: float = 300) -> None:
    """Until no source is due (the running service pulled them all)."""
    started = time.perf_counter()
    while time.perf_counter() - started < limit:
        if db.kind == "sqlite":
            with sqlite3.connect(db.url.removeprefix("sqlite:///"), timeout=60) as conn:
                due = conn.execute(
                    "SELECT count(*) FROM sources WHERE next_poll_at < '2001-01-01'"
                ).fetchone()[0]
        else:
            import psycopg

            with psycopg.connect(db.url.replace("+psycopg", "")) as conn:
                row = conn.execute(
                    "SELECT count(*) FROM sources WHERE next_poll_at < '2001-01-01'"
                ).fetchone()
                due = row[0] if row else 0
        if not due:
            return
        time.sleep(0.2)
    raise SystemExit("the service did not pull the due sources in time")


def etag_header(url: str) -> list[str]:
    with urllib.request.urlopen(url) as answer:
        return [f"If-None-Match: {answer.headers['etag']}"]


def ensure_wrk() -> None:
    if not shutil.which("wrk"):
        subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], check=True)


def wrk(url: str, seconds: int, headers: list[str]) -> dict[str, float]:
    args = ["wrk", "-t1", "-c20", f"-d{seconds}s", "--latency"]
    for header in headers:
        args += ["-H", header]
    out = subprocess.run([*args, url], capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)\b", out)
    assert p99 is not None, out
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}[p99.group(2)]
    return {"rps": rps, "p99_ms": float(p99.group(1)) * scale}


def phase_workers(run: Run) -> None:
    if run.db.kind != "postgres":
        print("workers: PostgreSQL only (--database postgres)")
        return
    import socket

    ports = []
    for _ in range(4):
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            ports.append(sock.getsockname()[1])
    run.db.sql("UPDATE sources SET next_poll_at = '2000-01-01 00:00:00+00'")
    workers = [Feedmill(run.config, "worker", "--metrics", f"127.0.0.1:{p}") for p in ports]
    try:
        for port in ports:
            wait_served(f"http://127.0.0.1:{port}/metrics")
        started = time.perf_counter()
        wait_idle(run.db, run, limit=3600)
        wall = time.perf_counter() - started
        pulls = [metric_sum(f"http://127.0.0.1:{p}/metrics", "feedmill_pulls_total") for p in ports]
        cpu = [cpu_of(w.process.pid) for w in workers]
    finally:
        for worker in workers:
            worker.stop()
    share = ", ".join(f"{p:.0f}" for p in pulls)
    print(
        f"workers: 4 workers pulled {sum(pulls):.0f} sources in {wall:.1f}s: {share} each "
        f"(max/min {max(pulls) / max(min(pulls), 1):.2f}); "
        f"CPU {', '.join(f'{c:.0f}s' for c in cpu)}"
    )


def metric_sum(url: str, name: str) -> float:
    _, body = http_get(url)
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in body.decode().splitlines()
        if line.startswith(name)
    )


# -- the run -------------------------------------------------------------------------------


class Run:
    def __init__(self, args: argparse.Namespace, folder: Path) -> None:
        self.sources: int = args.sources
        self.rounds: int = args.rounds
        self.requests: int = args.requests
        self.entries: int = args.entries
        self.flow_sources: int = args.flow_sources
        self.ingest_sources: int = args.ingest_sources
        self.slow_seconds: float = args.slow_seconds
        self.slow_host: bool = args.slow_host
        self.wrk_seconds: int = args.wrk_seconds
        self.folder = folder
        self.now = datetime.now(UTC).replace(microsecond=0)
        self.upstream = Upstream(args.sources, args.hosts, args.slow_seconds)
        self.db = Database(args.database, folder)
        import socket

        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        self.config = folder / "config.yaml"
        urls = [self.upstream.url(i) for i in range(self.sources)]
        write_config(self.config, self.db.url, self.port, urls)

    def close(self) -> None:
        self.upstream.close()
        self.db.drop()


PHASES: dict[str, Callable[[Run], Any]] = {
    "config": phase_config,
    "pull": phase_pull,
    "serve": phase_serve,
    "status": phase_status,
    "startup": phase_startup,
    "memory": phase_memory,
    "flow": phase_flow,
    "ingest": phase_ingest,
    "workers": phase_workers,
}


def main() -> None:
    if len(sys.argv) == 5 and sys.argv[1] == "--upstream":
        serve_upstream(int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4]))
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sources", type=int, default=10_000)
    parser.add_argument("--database", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--phases", default=",".join(ALL_PHASES))
    parser.add_argument("--hosts", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--entries", type=int, default=0, help="memory: entries to hold")
    parser.add_argument("--flow-sources", type=int, default=5000)
    parser.add_argument("--slow-seconds", type=float, default=10.0)
    parser.add_argument("--slow-host", action="store_true", help="flow: the slow ones on one host")
    parser.add_argument("--ingest-sources", type=int, default=500)
    parser.add_argument("--wrk-seconds", type=int, default=5)
    args = parser.parse_args()
    load = os.getloadavg()
    print(
        f"scale: {args.sources} sources on {args.database}; load average {load[0]:.1f} "
        f"(2 cores, shared with other work)"
    )
    with tempfile.TemporaryDirectory() as tmp:
        run = Run(args, Path(tmp))
        try:
            for name in args.phases.split(","):
                started = time.perf_counter()
                result = PHASES[name](run)
                if asyncio.iscoroutine(result):
                    asyncio.run(result)
                print(f"  ({name} took {time.perf_counter() - started:.0f}s)", flush=True)
        finally:
            run.close()


if __name__ == "__main__":
    main()
