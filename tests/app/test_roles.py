"""`feedmill serve` serves without pulling; `feedmill prune` applies retention on demand."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import feedparser
import httpx
import pytest

from feedmill.cli import main
from tests.app.configs import outlets_config, serve_outlets, write_config
from tests.conftest import fixture_bytes
from tests.upstream import Upstream

NEW_ITEM = b"""    <item>
      <title>Rack maker ships liquid-cooled GPU racks</title>
      <link>https://serverdesk.example/2026/11/racks</link>
      <guid isPermaLink="false">serverdesk-20261125-001</guid>
      <pubDate>Wed, 25 Nov 2026 08:00:00 +0000</pubDate>
    </item>
  </channel>"""


async def test_serve_answers_from_the_store_and_pulls_nothing(
    tmp_path: Path, upstream: Upstream
) -> None:
    config = write_config(
        tmp_path / "config.yaml", outlets_config(serve_outlets(upstream), tmp_path)
    )
    assert await asyncio.to_thread(main, ["--config", str(config), "fetch"]) == 0
    pulled = len(upstream.requests)
    # Every source is due again: a process that pulls would fetch all three at start.
    with sqlite3.connect(tmp_path / "feedmill.db") as db:
        db.execute("UPDATE sources SET next_poll_at = '2000-01-01 00:00:00.000000'")
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "feedmill", "--config", str(config), "serve",
        stderr=subprocess.PIPE, env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )  # fmt: skip
    assert process.stderr is not None
    log = []
    try:
        while not (
            found := re.search(r"listening on http://127\.0\.0\.1:(\d+)/", log[-1] if log else "")
        ):
            line = (await asyncio.wait_for(process.stderr.readline(), timeout=60)).decode()
            assert line, "feedmill serve exited early:\n" + "".join(log)
            log.append(line)
        port = int(found.group(1))
        async with httpx.AsyncClient() as client:
            response = await client.get(f"http://127.0.0.1:{port}/feeds/ai-infrastructure.atom")
            health = await client.get(f"http://127.0.0.1:{port}/healthz")
    finally:
        process.send_signal(signal.SIGTERM)
        rest = (await asyncio.wait_for(process.stderr.read(), timeout=60)).decode()
        code = await process.wait()
    assert code == 0, "".join(log) + rest
    assert response.status_code == health.status_code == 200
    titles = {e.title for e in feedparser.parse(response.content).entries}
    assert "Lenovo expands its Tianjin AI server hub, mass production by 2027" in titles
    assert len(upstream.requests) == pulled  # serve pulled nothing
    assert "heartbeat" not in "".join(log) + rest


def test_prune_applies_retention_and_tombstones_keep_entries_out(
    tmp_path: Path, upstream: Upstream, capsys: pytest.CaptureFixture[str]
) -> None:
    feed = fixture_bytes("outlet-a.rss")
    sources = {"outlet-a": upstream.add("/a.rss", feed, content_type="application/rss+xml")}
    config = outlets_config(sources, tmp_path)
    path = write_config(tmp_path / "config.yaml", config)
    assert main(["--config", str(path), "fetch"]) == 0
    write_config(path, {**config, "retention": {"max_entries": 1}})
    capsys.readouterr()
    assert main(["--config", str(path), "prune"]) == 0
    assert capsys.readouterr().out.splitlines() == ["outlet-a\t2", "removed 2 entries"]
    database = tmp_path / "feedmill.db"
    with sqlite3.connect(database) as db:
        assert db.execute("SELECT title FROM entries").fetchall() == [
            ("Lenovo expands its Tianjin AI server hub, mass production by 2027",)
        ]
        assert db.execute("SELECT count(*) FROM tombstones").fetchone() == (2,)
    # The upstream still lists the pruned entries, plus a new one: only the new one comes in,
    # and retention keeps the newest.
    upstream.add(
        "/a.rss", feed.replace(b"  </channel>", NEW_ITEM), content_type="application/rss+xml"
    )
    assert main(["--config", str(path), "fetch"]) == 0
    assert "new" in capsys.readouterr().out
    with sqlite3.connect(database) as db:
        assert db.execute("SELECT title FROM entries").fetchall() == [
            ("Rack maker ships liquid-cooled GPU racks",)
        ]
        assert db.execute("SELECT count(*) FROM tombstones").fetchone() == (3,)
