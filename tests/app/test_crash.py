"""Crash safety on SQLite: `feedmill fetch` killed with SIGKILL at random points while it
ingests; the database always opens, passes PRAGMA integrity_check, and after one more pull
holds exactly the expected entries."""

from __future__ import annotations

import multiprocessing
import os
import random
import signal
import sqlite3
from pathlib import Path

import pytest

from feedmill.cli import main
from tests.app.configs import LOOPBACK, write_config
from tests.upstream import Upstream

SOURCES = 8
ENTRIES = 40


def rss(source: int) -> str:
    items = "".join(
        f"<item><guid>s{source}-e{n}</guid><title>Story {n}</title>"
        f"<description>{'Long text. ' * 50}</description></item>"
        for n in range(ENTRIES)
    )
    return f'<rss version="2.0"><channel><title>s{source}</title>{items}</channel></rss>'


def fetch(config_path: str) -> None:
    raise SystemExit(main(["--config", config_path, "fetch"]))


@pytest.mark.skipif("fork" not in multiprocessing.get_all_start_methods(), reason="needs fork")
def test_sigkill_mid_ingest_never_corrupts_or_duplicates(
    tmp_path: Path, upstream: Upstream
) -> None:
    sources = {f"s{i}": upstream.add(f"/s{i}.rss", rss(i)) for i in range(SOURCES)}
    expected = {(f"s{i}", f"s{i}-e{n}") for i in range(SOURCES) for n in range(ENTRIES)}
    chance = random.Random(4)
    fork = multiprocessing.get_context("fork")
    killed = partial = 0
    for trial in range(20):
        db = tmp_path / f"trial-{trial}.db"
        config = write_config(
            tmp_path / f"trial-{trial}.yaml",
            {
                "database": f"sqlite:///{db}",
                "fetch": {"concurrency": chance.randint(1, 4), "allow_addresses": LOOPBACK},
                "sources": [{"id": s, "url": u} for s, u in sources.items()],
            },
        )
        child = fork.Process(target=fetch, args=(str(config),))
        already = len(upstream.requests)
        child.start()
        # A random point: after some of its requests, while others are parsed and stored.
        upstream.wait_for_requests(already + chance.randint(1, SOURCES), timeout=60)
        assert child.pid is not None
        os.kill(child.pid, signal.SIGKILL)  # a zombie until joined, so the pid is still ours
        child.join()
        killed += child.exitcode == -signal.SIGKILL
        if db.exists():
            with sqlite3.connect(db) as conn:
                assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
                tables = {name for (name,) in conn.execute("SELECT name FROM sqlite_master")}
                if "entries" in tables:
                    count = conn.execute("SELECT count(*) FROM entries").fetchone()[0]
                    partial += count < len(expected)
            conn.close()
        assert main(["--config", str(config), "fetch"]) == 0
        with sqlite3.connect(db) as conn:
            assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
            rows = conn.execute("SELECT source_id, entry_key FROM entries").fetchall()
        conn.close()
        assert len(rows) == len(expected)
        assert set(rows) == expected
    assert killed >= 15, "the child mostly finished before the kill: not a crash test"
    assert partial >= 5, "no kill landed mid-ingest"
