"""The client matrix: real feed readers subscribed to a real `feedmill run` on loopback each
see every entry exactly once, with its latest title, after every poll, while the upstream
changes under them: new entries, an entry back-filled with an older date, undated entries,
an edited entry, an entry removed upstream, and a second back-fill right after the first.

Each poll is real: the upstream changes, `feedmill fetch` pulls every source into the
database the service serves from, and every client polls the service once. The service
itself pulls nothing (its sources are not due). The matrix is in docs/http.md.
"""

from __future__ import annotations

import hashlib
import os
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import pytest

from feedmill.cli import main
from tests.app.clients import Client, Curl, Feedparser, Newsboat, Reader
from tests.app.configs import LOOPBACK, write_config
from tests.conftest import debian_tool
from tests.upstream import Upstream

Item = tuple[str, str, datetime | None]  # guid, title, date (None: undated)


def day(month: int, date: int, year: int = 2026) -> datetime:
    return datetime(year, month, date, 9, 0, tzinfo=UTC)


EP = {n: (f"ep{n}", f"Episode {n}", day(11, 10 + n)) for n in range(2, 5)}
EP[1] = ("ep1", "Episode 1", day(1, 31, 2019))  # back-filled: older than all the others
EP[0] = ("ep0", "Episode 0", day(6, 1, 2018))
EDITED = ("ep3", "Episode 3 (corrected)", EP[3][2])
WIRE = {n: (f"wire-{n}", f"Wire story {n}", None) for n in range(1, 6)}


@dataclass(frozen=True)
class Step:
    name: str
    pod: list[Item]
    wire: list[Item]


STEPS = [
    Step("first", [EP[3], EP[2]], [WIRE[2], WIRE[1]]),
    Step("unchanged", [EP[3], EP[2]], [WIRE[2], WIRE[1]]),
    Step("new", [EP[4], EP[3], EP[2]], [WIRE[3], WIRE[2], WIRE[1]]),
    Step("back-filled", [EP[4], EP[3], EP[2], EP[1]], [WIRE[3], WIRE[2], WIRE[1]]),
    Step("edited, one removed", [EP[4], EDITED, EP[2]], [WIRE[3], WIRE[2], WIRE[1]]),
    Step("undated only", [EP[4], EDITED, EP[2]], [WIRE[n] for n in (5, 4, 3, 2, 1)]),
    Step("back-filled again", [EP[4], EDITED, EP[2], EP[0]], [WIRE[n] for n in (5, 4, 3, 2, 1)]),
]

# (client, format): newsboat reads no JSON Feed, feedparser neither.
MATRIX = [
    ("newsboat", "atom"),
    ("newsboat", "rss"),
    ("reader", "atom"),
    ("reader", "rss"),
    ("reader", "json"),
    ("feedparser", "atom"),
    ("feedparser", "rss"),
    ("curl", "atom"),
    ("curl", "rss"),
    ("curl", "json"),
    # A search feed (docs/search.md) whose query every entry matches: the same entries.
    ("newsboat", "search.atom"),
    ("reader", "search.atom"),
    ("reader", "search.json"),
    ("curl", "search.rss"),
]
SEARCH = "?q=episode+OR+wire"


def rss(title: str, items: list[Item]) -> bytes:
    parts = [f"<item><title>{t}</title><guid isPermaLink='false'>{g}</guid>" for g, t, _ in items]
    for number, (_, _, date) in enumerate(items):
        if date is not None:
            parts[number] += f"<pubDate>{format_datetime(date, usegmt=True)}</pubDate>"
    body = "".join(part + "<description>Text.</description></item>" for part in parts)
    return (
        f'<?xml version="1.0"?><rss version="2.0"><channel><title>{title}</title>'
        f"<link>https://{title.lower()}.example/</link><description>{title}</description>"
        f"{body}</channel></rss>"
    ).encode()


def publish(upstream: Upstream, step: Step) -> dict[str, str]:
    """Serve the step's documents (a new ETag when a document changes); their URLs."""
    urls = {}
    for name, items in (("pod", step.pod), ("wire", step.wire)):
        document = rss(name.title(), items)
        etag = '"' + hashlib.sha256(document).hexdigest()[:16] + '"'
        urls[name] = upstream.add(f"/{name}.rss", document, content_type="text/xml", etag=etag)
    return urls


@dataclass
class Outcome:
    """What one client held after each step, or the error that stopped it."""

    held: list[tuple[str, list[str]]] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)
    error: str | None = None


@contextmanager
def feedmill_run(config: Path) -> Iterator[None]:
    """`feedmill run` as a subprocess, until it listens; stopped with SIGTERM."""
    process = subprocess.Popen(
        [sys.executable, "-m", "feedmill", "--config", str(config), "run"],
        stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )  # fmt: skip
    assert process.stderr is not None
    log: list[str] = []
    for line in process.stderr:
        log.append(line)
        if "listening on" in line:
            break
    else:
        process.wait()
        process.stderr.close()
        raise AssertionError("feedmill run exited early:\n" + "".join(log))
    drain = threading.Thread(target=lambda: log.extend(process.stderr or ()), daemon=True)
    drain.start()
    try:
        yield
    finally:
        process.send_signal(signal.SIGTERM)
        code = process.wait(timeout=60)
        drain.join(timeout=60)
        process.stderr.close()
    assert code == 0, "".join(log)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def make_clients(base: str, folder: Path) -> dict[tuple[str, str], Client]:
    newsboat, curl = debian_tool("newsboat", "newsboat"), debian_tool("curl", "curl")
    clients: dict[tuple[str, str], Client] = {}
    for name, extension in MATRIX:
        url, where = f"{base}feeds/all.{extension}", folder / f"{name}-{extension}"
        if extension.startswith("search."):
            url = f"{base}{extension}{SEARCH}"
        if name == "newsboat":
            clients[name, extension] = Newsboat(newsboat, url, where)
        elif name == "reader":
            clients[name, extension] = Reader(url, folder / f"{name}-{extension}.sqlite")
        elif name == "feedparser":
            clients[name, extension] = Feedparser(url)
        else:
            clients[name, extension] = Curl(curl, url, where)
    return clients


def expected_titles(steps: list[Step]) -> list[str]:
    """Every entry published so far, once, with its latest title (feedmill keeps entries
    removed upstream)."""
    latest: dict[str, str] = {}
    for step in steps:
        latest |= {guid: title for guid, title, _ in step.pod + step.wire}
    return sorted(latest.values())


@pytest.fixture(scope="module")
def matrix(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, str], Outcome]:
    folder = tmp_path_factory.mktemp("clients")
    port = free_port()
    base = f"http://127.0.0.1:{port}/"
    outcomes = {key: Outcome() for key in MATRIX}
    with Upstream() as upstream:
        urls = publish(upstream, STEPS[0])
        config: dict[str, Any] = {
            "database": f"sqlite:///{folder / 'feedmill.db'}",
            "server": {"host": "127.0.0.1", "port": port, "base_url": base},
            "scheduler": {"heartbeat": "1h"},  # the polls below are `feedmill fetch`
            "http": {"recheck": 0.001},  # see what fetch stored at once
            "fetch": {"allow_addresses": LOOPBACK, "interval": "1h"},
            "sources": [{"id": name, "url": url} for name, url in urls.items()],
            "feeds": [{"id": "all", "title": "All", "sources": ["pod", "wire"]}],
        }
        path = write_config(folder / "config.yaml", config)
        assert main(["--config", str(path), "fetch"]) == 0  # the service starts with them
        with feedmill_run(path):
            clients = make_clients(base, folder)
            for number, step in enumerate(STEPS):
                publish(upstream, step)
                if number:
                    assert main(["--config", str(path), "fetch"]) == 0
                for key, client in clients.items():
                    outcome = outcomes[key]
                    if outcome.error is None:
                        try:
                            client.poll()
                            outcome.held.append((step.name, sorted(client.titles())))
                        except Exception as exc:  # recorded: the other clients go on
                            outcome.error = f"{step.name}: {exc!r}"
                        outcome.statuses = client.statuses
            for client in clients.values():
                if isinstance(client, Reader):
                    client.close()
    return outcomes


@pytest.mark.parametrize(("client", "extension"), MATRIX, ids=[f"{c}-{x}" for c, x in MATRIX])
def test_the_client_sees_every_entry_once_after_every_poll(
    matrix: dict[tuple[str, str], Outcome], client: str, extension: str
) -> None:
    outcome = matrix[client, extension]
    assert outcome.error is None
    for number, (name, held) in enumerate(outcome.held):
        assert (name, held) == (name, expected_titles(STEPS[: number + 1]))
    assert len(outcome.held) == len(STEPS)
    if outcome.statuses:  # validators are sent and honoured: nothing changed, nothing sent
        assert outcome.statuses[1] == 304
