"""Signals to a real `feedmill run` process: SIGHUP reloads the config, SIGTERM stops it
within `server.shutdown_timeout`; systemd hears of both; the log is one JSON object a line."""

from __future__ import annotations

import asyncio
import json
import signal
import socket
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import feedparser
import httpx
import pytest

from tests.app.child import Child
from tests.app.configs import outlets_config, serve_outlets, write_config
from tests.conftest import fixture_bytes
from tests.upstream import Upstream


@pytest.fixture
def notify_socket(tmp_path: Path) -> Iterator[socket.socket]:
    """What systemd listens on for a Type=notify service (NOTIFY_SOCKET)."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(tmp_path / "notify"))
    sock.setblocking(False)
    yield sock
    sock.close()


async def notified(sock: socket.socket, field: str) -> bool:
    """Read what the service told systemd until a message carries ``field``."""
    loop = asyncio.get_running_loop()
    while True:
        data = await asyncio.wait_for(loop.sock_recv(sock, 4096), 60)
        if field in data.decode().split("\n"):
            return True


async def titles(port: int, feed: str) -> set[str]:
    async with httpx.AsyncClient() as client:
        response = await client.get(f"http://127.0.0.1:{port}/feeds/{feed}.atom")
    assert response.status_code == 200, feed
    return {e.title for e in feedparser.parse(response.content).entries}


async def status_of(port: int, feed: str) -> int:
    async with httpx.AsyncClient() as client:
        return (await client.get(f"http://127.0.0.1:{port}/feeds/{feed}.atom")).status_code


def events(child: Child) -> list[dict[str, Any]]:
    return [json.loads(line) for line in child.log]  # every line is one JSON object


async def test_sighup_reloads_sources_and_feeds_and_refuses_a_bad_config(
    tmp_path: Path, upstream: Upstream, notify_socket: socket.socket
) -> None:
    outlets = serve_outlets(upstream)
    sources = {"outlet-a": outlets["outlet-a"], "outlet-b": outlets["outlet-b"]}
    sources["missing"] = upstream.url("/missing.rss")
    config = outlets_config(sources, tmp_path)
    config["server"]["access_log"] = True
    # the rules change below, the feed's sources do not: its source versions stay the same
    config["feeds"][0].update(sources=["outlet-a"], tags=[])
    path = write_config(tmp_path / "config.yaml", config)
    env = {"NOTIFY_SOCKET": str(tmp_path / "notify")}
    args = ["--log-format", "json", "--config", str(path), "run"]
    async with Child(args, env) as child:
        port = int((await child.read_until(r"listening on http://127\.0\.0\.1:(\d+)/")).group(1))
        assert await notified(notify_socket, "READY=1")
        await child.read_until(r"heartbeat: pulled 3 sources, 1 failed")
        assert await titles(port, "ai-infrastructure") == {
            "Lenovo expands its Tianjin AI server hub, mass production by 2027"
        }
        assert await status_of(port, "everything") == 200

        # outlet-b out, outlet-c in; a feed removed, one added, one with other rules
        config["sources"] = [s for s in config["sources"] if s["id"] != "outlet-b"]
        config["sources"].append({"id": "outlet-c", "url": outlets["outlet-c"], "tags": ["x"]})
        config["feeds"][0]["include"] = ["bike lanes"]
        config["feeds"][1] = {"id": "from-c", "title": "From C", "sources": ["outlet-c"]}
        write_config(path, config)
        child.signal(signal.SIGHUP)
        assert await notified(notify_socket, "RELOADING=1")
        assert await notified(notify_socket, "READY=1")
        await child.read_until(
            r"config reloaded: 3 sources \(1 added, 1 removed\), "
            r"2 feeds \(1 added, 1 removed, 1 changed\)"
        )
        assert await titles(port, "ai-infrastructure") == {
            "City council approves protected bike lanes downtown"
        }
        assert await status_of(port, "everything") == 404
        await child.read_until(r"heartbeat: pulled 1 sources, 0 failed")  # outlet-c, due at once
        assert len(await titles(port, "from-c")) == 2

        bad = {**config, "feeds": [*config["feeds"], {"id": "nope", "title": "N", "tags": ["?"]}]}
        bad["surprise"] = 1
        write_config(path, bad)
        child.signal(signal.SIGHUP)
        refused = await child.read_until(r"reload refused, still running the previous config")
        assert "surprise: unknown key" in refused.string
        assert "no source has tag '?'" in refused.string  # every problem, in the one line
        assert await status_of(port, "from-c") == 200
        assert await status_of(port, "nope") == 404
        child.signal(signal.SIGTERM)
        assert await child.wait() == 0
    assert await notified(notify_socket, "STOPPING=1")
    logged = events(child)
    errors = [e["message"] for e in logged if e["level"] == "error"]
    assert len(errors) == 1 and "reload refused" in errors[0]
    failure = next(e for e in logged if e.get("source") == "missing")
    assert (failure["level"], failure["status"]) == ("info", "error")
    assert failure["error_kind"] == "http_4xx" and failure["bytes"] == 0
    # routine pulls are DEBUG: not in an INFO log
    assert not [e for e in logged if e.get("source") == "outlet-a"]
    access = [e["message"] for e in logged if e["logger"] == "uvicorn.access"]
    assert any('"GET /feeds/everything.atom HTTP/1.1" 404' in line for line in access), access


async def test_sigterm_abandons_a_write_still_blocked_at_the_shutdown_timeout(
    tmp_path: Path, upstream: Upstream
) -> None:
    """A store write that cannot finish (another process holds the SQLite write lock) does
    not hold up the exit past `server.shutdown_timeout`, and leaves nothing half-written."""
    gate = threading.Event()
    upstream.add("/slow.rss", fixture_bytes("outlet-a.rss"), hold=gate)
    config = outlets_config({"slow": upstream.url("/slow.rss")}, tmp_path)
    config["server"]["shutdown_timeout"] = "1s"
    path = write_config(tmp_path / "config.yaml", config)
    database = tmp_path / "feedmill.db"
    async with Child(["-v", "--config", str(path), "run"]) as child:
        await child.read_until(r"listening on")
        await asyncio.to_thread(upstream.wait_for_requests, 1)
        blocker = sqlite3.connect(database, isolation_level=None)
        blocker.execute("BEGIN IMMEDIATE")  # hold the write lock, as a stuck writer would
        try:
            gate.set()
            await child.read_until(r"pull slow: storing 3 entries")
            child.signal(signal.SIGTERM)
            # The busy timeout (10 s) would hold the old shutdown well past this bound.
            assert await child.wait(within=7) == 0
        finally:
            gate.set()
            blocker.execute("ROLLBACK")
            blocker.close()
    assert "store writes still running after 1s are abandoned" in child.text
    assert "Traceback" not in child.text
    with sqlite3.connect(database) as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert db.execute("SELECT count(*) FROM entries").fetchone() == (0,)
        assert db.execute("SELECT last_success_at FROM sources").fetchone() == (None,)
