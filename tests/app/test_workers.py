"""Several `feedmill worker` processes on one PostgreSQL: each source pulled exactly once per
due period, nothing lost or doubled when a worker is killed holding leases."""

from __future__ import annotations

import functools
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.app.configs import LOOPBACK, write_config
from tests.conftest import ROOT
from tests.postgres import private_schema
from tests.upstream import Upstream

psycopg = pytest.importorskip("psycopg")


@pytest.fixture
def pg_url() -> Iterator[str]:
    with private_schema() as url:
        yield url


def rss(source: int, numbers: range) -> str:
    items = "".join(
        f"<item><guid>s{source}-e{n}</guid><title>Story {n} of {source}</title>"
        f"<link>https://outlet{source}.example/{n}?utm_source=rss</link></item>"
        for n in numbers
    )
    return f'<rss version="2.0"><channel><title>s{source}</title>{items}</channel></rss>'


def serve(upstream: Upstream, count: int, entries: int, **options: Any) -> dict[str, str]:
    return {
        f"s{i}": upstream.add(f"/s{i}.rss", rss(i, range(1, entries + 1)), **options)
        for i in range(count)
    }


def config(tmp_path: Path, url: str, sources: dict[str, str], concurrency: int = 10) -> Path:
    return write_config(
        tmp_path / "config.yaml",
        {
            "database": url,
            "scheduler": {"heartbeat": 0.2},
            "fetch": {
                "concurrency": concurrency,
                "allow_addresses": LOOPBACK,
                # every source is on the one loopback host: lift the per-host limit (2)
                "per_host": {"concurrency": concurrency},
            },
            "sources": [{"id": sid, "url": u} for sid, u in sources.items()],
        },
    )


class Workers:
    def __init__(self, config_path: Path, logs: Path) -> None:
        self.config_path = config_path
        self.logs = logs
        self.processes: list[subprocess.Popen[bytes]] = []

    def start(self) -> subprocess.Popen[bytes]:
        log = open(self.log_of(len(self.processes)), "wb")  # noqa: SIM115
        process = subprocess.Popen(
            [sys.executable, "-m", "feedmill", "--config", str(self.config_path), "worker"],
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            env={k: v for k, v in os.environ.items() if k != "FEEDMILL_DATABASE_URL"},
        )
        log.close()
        self.processes.append(process)
        return process

    def log_of(self, number: int) -> Path:
        return self.logs / f"worker-{number}.log"

    def started(self, number: int) -> bool:
        """The worker has exited, or logged its database check (its signal handlers are set
        before that)."""
        return self.processes[number].poll() is not None or b"database " in (
            self.log_of(number).read_bytes()
        )

    def stop(self) -> list[int | None]:
        """SIGTERM each worker still running, once it has started (a worker still importing
        on a loaded machine has no handler yet, and would die of the signal), and wait."""
        for number, process in enumerate(self.processes):
            wait_until(functools.partial(self.started, number), f"worker {number} to start")
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        return [process.wait(timeout=60) for process in self.processes]


@pytest.fixture
def workers(tmp_path: Path) -> Iterator[Callable[[Path], Workers]]:
    started: list[Workers] = []

    def make(config_path: Path) -> Workers:
        started.append(Workers(config_path, tmp_path))
        return started[-1]

    yield make
    for group in started:
        for process in group.processes:
            if process.poll() is None:
                process.kill()
                process.wait()


def sql(url: str, query: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://", 1)) as conn:
        cursor = conn.execute(query)
        return cursor.fetchall() if cursor.description else []


def wait_until(condition: Callable[[], bool], what: str, timeout: float = 120) -> None:
    """Poll a condition (not a timing assumption): fail with ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def settled(url: str, count: int) -> Callable[[], bool]:
    """Every source pulled, its outcome recorded, its lease released."""
    query = (
        "SELECT count(*) FROM sources WHERE lease_owner IS NULL AND next_poll_at > now() "
        "AND last_success_at IS NOT NULL"
    )
    return lambda: sql(url, query)[0][0] == count


def make_all_due(url: str) -> None:
    sql(url, "UPDATE sources SET next_poll_at = now() - interval '1 second'")


def stored_keys(url: str) -> list[tuple[str, str]]:
    return [(s, k) for s, k in sql(url, "SELECT source_id, entry_key FROM entries")]


def test_three_workers_pull_every_source_exactly_once_per_period(
    tmp_path: Path, upstream: Upstream, pg_url: str, workers: Callable[[Path], Workers]
) -> None:
    sources = serve(upstream, 300, entries=2)
    group = workers(config(tmp_path, pg_url, sources))
    for _ in range(3):
        group.start()
    for period in (1, 2, 3):
        assert upstream.wait_for_requests(300 * period, timeout=180)
        wait_until(settled(pg_url, 300), f"period {period} to settle")
        assert set(upstream.counts().values()) == {period}, "a source was pulled twice"
        if period < 3:  # the next period: one more entry each, and every source due again
            for i in range(300):
                upstream.add(f"/s{i}.rss", rss(i, range(1, period + 3)))
            make_all_due(pg_url)
    assert group.stop() == [0, 0, 0]
    counts = upstream.counts()
    assert len(counts) == 300
    assert set(counts.values()) == {3}
    keys = stored_keys(pg_url)
    expected = {(f"s{i}", f"s{i}-e{n}") for i in range(300) for n in range(1, 5)}
    assert len(keys) == len(expected)
    assert set(keys) == expected


def test_a_killed_workers_sources_are_pulled_by_the_others_after_its_lease_expires(
    tmp_path: Path, upstream: Upstream, pg_url: str, workers: Callable[[Path], Workers]
) -> None:
    hold = threading.Event()
    sources = serve(upstream, 30, entries=3, hold=hold)
    group = workers(config(tmp_path, pg_url, sources, concurrency=10))
    doomed = group.start()
    assert upstream.wait_for_requests(10)  # the first batch of 10 is in flight, leased
    doomed.send_signal(signal.SIGKILL)
    doomed.wait()
    hold.set()
    leased = {s for (s,) in sql(pg_url, "SELECT id FROM sources WHERE lease_owner IS NOT NULL")}
    assert len(leased) == 10
    assert {f"/{s}.rss" for s in leased} == set(upstream.counts())
    group.start()
    group.start()
    # The others pull the 20 free sources but leave the leased ones alone...
    assert upstream.wait_for_requests(30)
    wait_until(settled(pg_url, 20), "the free sources to be pulled")
    counts = upstream.counts()
    assert all(counts[f"/{s}.rss"] == 1 for s in leased)
    assert sum(counts.values()) == 30
    # ...until the leases expire (moved into the past here rather than waited for).
    sql(
        pg_url,
        "UPDATE sources SET lease_expires_at = now() - interval '1 second' "
        "WHERE lease_owner IS NOT NULL",
    )
    assert upstream.wait_for_requests(40)
    wait_until(settled(pg_url, 30), "the killed worker's sources to be pulled")
    assert group.stop()[1:] == [0, 0]
    counts = upstream.counts()
    assert {path: n for path, n in counts.items() if n != 1} == {f"/{s}.rss": 2 for s in leased}
    keys = stored_keys(pg_url)
    assert len(keys) == len(set(keys)) == 90
    assert set(keys) == {(f"s{i}", f"s{i}-e{n}") for i in range(30) for n in range(1, 4)}
