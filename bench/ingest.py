"""Benchmark: the ingest pipeline against bare feedparser, on ../shared/corpus/real/.

Pipeline: the 127 documents served by a loopback HTTP server in another process (Python's
http.server, so the upstream's work is not counted), pulled by feedmill's Puller
(fetch with httpx, parse + sanitise off the loop, store in a fresh SQLite file, one transaction
per source). Baseline, in the same run: ``feedparser.parse`` (default options) over the same
bytes. Each is run ROUNDS times; the best round of each is compared.

    python bench/ingest.py [--rounds N] [--corpus PATH]

The pipeline runs twice a round, interleaved: parsing in a thread (no deadline possible) and
in the worker processes of sources.parsing.ParsePool (the service's way, a deadline per
document; the workers are started before the clock runs, as a running service has them).

Target (issue 2): pipeline time / bare parse time <= 1.5.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import feedparser

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from feedmill.pull import Puller  # noqa: E402
from sources import AddressPolicy, FetchSettings, make_client  # noqa: E402
from sources.parsing import ParsePool  # noqa: E402
from store import SourceDefinition, Store, ensure_schema  # noqa: E402


def documents(corpus: Path) -> dict[str, bytes]:
    real = corpus / "real"
    return {p.name: p.read_bytes() for p in sorted(real.iterdir()) if p.suffix != ".tsv"}


def bare_parse(docs: dict[str, bytes]) -> tuple[float, int]:
    start = time.perf_counter()
    entries = sum(len(feedparser.parse(body).entries) for body in docs.values())
    return time.perf_counter() - start, entries


@contextmanager
def file_server(folder: Path) -> Iterator[str]:
    """``python -m http.server`` on an ephemeral loopback port, serving ``folder``."""
    server = subprocess.Popen(
        [sys.executable, "-u", "-m", "http.server", "0", "--bind", "127.0.0.1", "-d", str(folder)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert server.stdout is not None
        found = re.search(r"port (\d+)", server.stdout.readline())
        assert found, "http.server did not say its port"
        yield f"http://127.0.0.1:{found.group(1)}"
    finally:
        server.terminate()
        server.wait()


async def pipeline(
    docs: dict[str, bytes], base: str, folder: Path, in_pool: bool
) -> tuple[float, int]:
    store = Store.open(f"sqlite:///{folder / 'bench.db'}")
    await ensure_schema(store)
    now = datetime(2026, 11, 24, tzinfo=UTC)
    await store.sync_sources(
        [
            SourceDefinition(f"s{i}", f"{base}/{name}", None, timedelta(hours=1))
            for i, name in enumerate(docs)
        ],
        now,
    )
    settings = FetchSettings(addresses=AddressPolicy(block_private=False))  # loopback
    async with ParsePool() as pool, make_client(settings) as client:
        if in_pool:  # start every worker, as a running service has them
            small = next(iter(docs.values()))
            await asyncio.gather(*(pool.parse(small, base, None) for _ in range(pool.size)))
        start = time.perf_counter()
        puller = Puller(
            store,
            client,
            settings,
            lambda: now,
            concurrency=8,
            parse_pool=pool if in_pool else None,
        )
        results = await puller.pull_due()
        elapsed = time.perf_counter() - start
    entries = sum(r.counts.new for r in results if r.counts)
    assert not [r for r in results if r.error], [str(r.error) for r in results if r.error]
    await store.close()
    return elapsed, entries


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument(
        "--corpus",
        type=Path,
        default=Path(os.environ.get("FEEDMILL_CORPUS") or ROOT.parent / "shared" / "corpus"),
    )
    args = parser.parse_args()
    docs = documents(args.corpus)
    size = sum(len(b) for b in docs.values())
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cpus, Python {platform.python_version()}"
    )
    print(f"corpus: {len(docs)} documents, {size / 1e6:.1f} MB")
    bare_times, pipe_times, pool_times = [], [], []
    with file_server(args.corpus / "real") as base:
        for round_number in range(args.rounds):
            bare, bare_entries = bare_parse(docs)
            with tempfile.TemporaryDirectory() as folder:
                piped, pipe_entries = asyncio.run(pipeline(docs, base, Path(folder), False))
            with tempfile.TemporaryDirectory() as folder:
                pooled, pool_entries = asyncio.run(pipeline(docs, base, Path(folder), True))
            assert pipe_entries == bare_entries == pool_entries, (pipe_entries, bare_entries)
            bare_times.append(bare)
            pipe_times.append(piped)
            pool_times.append(pooled)
            print(
                f"round {round_number + 1}: bare parse {bare:.3f}s, pipeline {piped:.3f}s, "
                f"with parse workers {pooled:.3f}s"
            )
    bare, piped, pooled = min(bare_times), min(pipe_times), min(pool_times)
    print(f"entries: {bare_entries}")
    print(f"bare feedparser.parse: {bare:.3f}s, {bare_entries / bare:,.0f} entries/s")
    print(f"feedmill pipeline:     {piped:.3f}s, {pipe_entries / piped:,.0f} entries/s")
    print(f"  with parse workers:  {pooled:.3f}s, {pool_entries / pooled:,.0f} entries/s")
    print(f"ratio pipeline / bare parse: {piped / bare:.2f} (target <= 1.5)")
    print(f"ratio with parse workers / bare parse: {pooled / bare:.2f}")
    print(f"ratio parse workers / parse thread: {pooled / piped:.2f}")


if __name__ == "__main__":
    main()
