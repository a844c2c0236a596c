"""Hostile upstreams beside a good one, through the real pipeline on SQLite and PostgreSQL.

Each case of ``CASES`` is one upstream trick (the documents are in tests/data/hostile/, the
big ones made here): it is served by the loopback upstream beside a good source, and
`feedmill fetch`, `sources` and `build` run as subprocesses. The good source's entries are
served; each hostile source has its recorded error kind or its entry stored cleaned; every
format of every feed renders (the Atom valid, the RSS well-formed, the JSON parseable); no
command prints a traceback; and the whole `fetch` (its parse workers included) stays under
``PEAK_BOUND`` of memory.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from lxml import etree

from feedmill.config import load_config
from feedmill.service import Service
from store import Store, StoredEntry, StoredSource
from tests.app.configs import LOOPBACK, write_config
from tests.conftest import DATA, FakeClock, fixture_bytes
from tests.postgres import database_url
from tests.upstream import Upstream

HOSTILE = DATA / "hostile"
PEAK_BOUND = 400 * 1024 * 1024  # bytes of resident memory, the fetch and its parse workers
BOMB_MARGIN = 64 * 1024 * 1024  # bytes over a plain fetch: the body limit (15 MiB) twice, and some
PARSE_DEADLINE = "5s"


def rss_item(inner: str) -> bytes:
    return (
        '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>t</title>'
        f"<link>https://hostile.example/</link><item><guid>https://hostile.example/g</guid>"
        f"<link>https://hostile.example/g</link>{inner}</item></channel></rss>"
    ).encode()


@cache
def generated(name: str) -> bytes:
    """The big documents, made rather than stored."""
    if name == "many-categories":  # feedparser compared each with all earlier ones
        return rss_item(
            "<title>many</title>" + "".join(f"<category>c{n}</category>" for n in range(20_000))
        )
    if name == "nested-divs":  # nh3 works in the square of the nesting depth
        return rss_item(
            "<title>deep</title><description>" + "&lt;div&gt;" * 100_000 + "</description>"
        )
    if name == "huge-title":
        return rss_item("<title>" + "word " * 2_000_000 + "</title>")
    if name == "slow-parse":  # 14 MB of elements: far longer than the deadline to parse
        return rss_item("<title>slow</title>" + "<x/>" * 3_500_000)
    raise KeyError(name)


Check = Callable[[StoredSource, list[StoredEntry]], None]


@dataclass(frozen=True)
class Case:
    id: str
    body: Callable[[], bytes]
    content_type: str = "application/xml"
    headers: dict[str, str] = field(default_factory=dict)
    status: int = 200
    error: str | None = None  # the error kind recorded on the source, or None: entries stored
    check: Check | None = None


def stored(entry_check: Callable[[StoredEntry], None]) -> Check:
    def check(source: StoredSource, entries: list[StoredEntry]) -> None:
        assert source.error_kind is None, (source.id, source.error_message)
        assert entries, source.id
        for entry in entries:
            entry_check(entry)

    return check


def clean(entry: StoredEntry) -> None:
    texts = [
        entry.title,
        entry.summary,
        entry.content,
        *(a.name for a in entry.authors),
        *entry.categories,
    ]
    for text in filter(None, texts):
        assert not any(ord(c) < 32 and c not in "\t\n\r" for c in text), repr(text)
        assert not any(0x7F <= ord(c) <= 0x9F or 0xD800 <= ord(c) <= 0xDFFF for c in text)


def plain(entry: StoredEntry) -> None:
    clean(entry)
    for text in filter(None, [entry.title, *(a.name for a in entry.authors), *entry.categories]):
        assert "<" not in text and ">" not in text, text
    assert "<script" not in (entry.summary or "")


def file(name: str) -> Callable[[], bytes]:
    return lambda: (HOSTILE / name).read_bytes()


def good_feed() -> bytes:
    return fixture_bytes("outlet-a.rss")


JSON = "application/feed+json"
CASES = [
    # decompression bombs: cut off at the body limit, in bounded memory
    Case(
        "brotli-bomb", file("brotli-2gib.br"), headers={"Content-Encoding": "br"}, error="too_large"
    ),
    Case(
        "gzip-gzip-bomb",
        file("gzip-gzip-1gib.gz.gz"),
        headers={"Content-Encoding": "gzip, gzip"},
        error="too_large",
    ),
    # what used to end a pull with a traceback
    Case("json-tags-number", file("json-tags-number.json"), JSON, check=stored(clean)),
    Case("json-authors-number", file("json-authors-number.json"), JSON, check=stored(clean)),
    Case(
        "json-attachments-number", file("json-attachments-number.json"), JSON, check=stored(clean)
    ),
    Case(
        "json-title-lone-surrogate",
        file("json-title-lone-surrogate.json"),
        JSON,
        check=stored(lambda e: (clean(e), assert_in("\ufffd", e.title))),
    ),
    Case("json-id-5000-digits", file("json-id-5000-digits.json"), JSON, check=stored(clean)),
    Case(
        "json-date-overflow",
        file("json-date-overflow.json"),
        JSON,
        check=stored(lambda e: assert_in(e.published, [None])),
    ),
    Case("json-nested-100k", file("json-nested-100k.json"), JSON, error="too_complex"),
    Case("header-over-8190", good_feed, headers={"X-Big": "a" * 9000}, error="bad_response"),
    Case(
        "twenty-thousand-headers",
        good_feed,
        headers={f"X-H{n}": "a" for n in range(20_000)},
        error="bad_response",
    ),
    Case(
        "redirect-javascript",
        bytes,
        status=302,
        headers={"Location": "javascript:x"},
        error="bad_url",
    ),
    Case(
        "redirect-userinfo",
        bytes,
        status=302,
        headers={"Location": "http://user:pass@127.0.0.1/feed"},
        error="bad_url",
    ),
    Case("json-nul-and-controls", file("json-nul-and-controls.json"), JSON, check=stored(clean)),
    # control characters in stored text
    Case("rss-control-chars", file("rss-control-chars.rss"), check=stored(clean)),
    # parsing cost: capped lists and fields, a deadline for the rest
    Case(
        "many-categories",
        lambda: generated("many-categories"),
        check=stored(lambda e: assert_in(len(e.categories), [50])),
    ),
    Case("nested-divs", lambda: generated("nested-divs"), check=stored(clean)),
    Case("slow-parse", lambda: generated("slow-parse"), error="too_complex"),
    # plain-text fields are plain text, and titles are capped
    Case("rss-markup-title", file("rss-markup-title.rss"), check=stored(plain)),
    Case("json-summary-markup", file("json-summary-markup.json"), JSON, check=stored(plain)),
    Case(
        "huge-title",
        lambda: generated("huge-title"),
        check=stored(lambda e: assert_in(len(e.title or ""), range(1, 1001))),
    ),
]


def assert_in(value: Any, allowed: Any) -> None:
    assert value in allowed, (value, allowed)


def serve(upstream: Upstream) -> dict[str, str]:
    urls = {"good": upstream.add("/good.rss", good_feed(), content_type="application/rss+xml")}
    for case in CASES:
        urls[case.id] = upstream.add(
            f"/{case.id}",
            case.body(),
            status=case.status,
            content_type=case.content_type,
            headers=case.headers,
        )
    return urls


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    with database_url(request.param, tmp_path) as url:
        yield url


def config_for(tmp_path: Path, database: str, urls: dict[str, str]) -> Path:
    config = {
        "database": database,
        "fetch": {"allow_addresses": LOOPBACK, "parse_deadline": PARSE_DEADLINE},
        "sources": [{"id": source_id, "url": url} for source_id, url in urls.items()],
        "feeds": [
            {"id": "everything", "title": "Everything"},
            {"id": "good-only", "title": "Good only", "sources": ["good"]},
        ],
    }
    return write_config(tmp_path / "config.yaml", config)


def feedmill(config: Path, *args: str) -> tuple[subprocess.CompletedProcess[str], int]:
    """Run the CLI; its result and the peak resident memory of it and its children."""
    process = subprocess.Popen(
        [sys.executable, "-m", "feedmill", "--config", str(config), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    watchdog = threading.Timer(300, process.kill)
    watchdog.start()
    with ThreadPoolExecutor(2) as readers:
        assert process.stdout is not None and process.stderr is not None
        out, err = readers.submit(process.stdout.read), readers.submit(process.stderr.read)
        # wait4, not wait: the rusage of this child, whose ru_maxrss (KiB) takes in the
        # largest of its own children it waited for (the parse workers)
        _, status, usage = os.wait4(process.pid, 0)
        watchdog.cancel()
        process.returncode = os.waitstatus_to_exitcode(status)
        result = subprocess.CompletedProcess(
            process.args, process.returncode, out.result(), err.result()
        )
    process.stdout.close()
    process.stderr.close()
    return result, usage.ru_maxrss * 1024


def no_traceback(result: subprocess.CompletedProcess[str], status: int = 0) -> None:
    """Exit ``status`` (`fetch` says 1 when a source failed) and no traceback anywhere."""
    assert result.returncode == status, result.stderr[-3000:]
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    assert "Traceback" not in result.stdout


async def stored_state(settings_path: Path) -> dict[str, tuple[StoredSource, list[StoredEntry]]]:
    settings = load_config(settings_path)
    store = Store.open(settings.database)
    try:
        state = {}
        for source in await store.list_sources():
            entries = [e async for page in store.newest_entries([source.id]) for e in page]
            state[source.id] = (source, entries)
        return state
    finally:
        await store.close()


def check_rendered(out: Path, validate_atom: Callable[[bytes], None]) -> None:
    for feed_id in ("everything", "good-only"):
        atom = (out / "feeds" / f"{feed_id}.atom").read_bytes()
        validate_atom(atom)
        etree.fromstring((out / "feeds" / f"{feed_id}.rss").read_bytes())
        document = json.loads((out / "feeds" / f"{feed_id}.json").read_bytes())
        assert document["items"], feed_id
        for item in document["items"]:
            assert "<" not in item.get("title", ""), item["title"]


def test_hostile_upstreams_are_recorded_and_the_good_one_served(
    tmp_path: Path, database: str, upstream: Upstream, validate_atom: Callable[[bytes], None]
) -> None:
    config = config_for(tmp_path, database, serve(upstream))
    fetched, peak = feedmill(config, "fetch")
    no_traceback(fetched, status=1)  # the hostile sources failed
    assert peak < PEAK_BOUND, f"peak resident memory {peak / 2**20:.0f} MiB"
    state = asyncio.run(stored_state(config))
    good, good_entries = state["good"]
    assert good.error_kind is None and len(good_entries) == 3
    for case in CASES:
        source, entries = state[case.id]
        if case.error is not None:
            assert source.error_kind == case.error, (case.id, source.error_message)
            assert source.lease_owner is None, case.id
        if case.check is not None:
            case.check(source, entries)
    listed, _ = feedmill(config, "sources")
    no_traceback(listed)
    built, _ = feedmill(config, "build", "--out", str(tmp_path / "site"))
    no_traceback(built)
    check_rendered(tmp_path / "site", validate_atom)
    good_only = json.loads((tmp_path / "site" / "feeds" / "good-only.json").read_bytes())
    assert len(good_only["items"]) == 3


def test_decompression_bombs_cost_no_more_memory_than_a_plain_fetch(
    tmp_path: Path, upstream: Upstream
) -> None:
    """A 1.7 KB brotli body that expands to 2 GiB and a gzip-in-gzip one of 1 GiB raise the
    peak of `feedmill fetch` by less than BOMB_MARGIN over fetching the good source alone
    (without bounded decoding the peak was gigabytes)."""
    urls = serve(upstream)
    database = f"sqlite:///{tmp_path / 'feedmill.db'}"
    alone = config_for(tmp_path, database, {"good": urls["good"]})
    fetched, baseline = feedmill(alone, "fetch")
    no_traceback(fetched)
    bombs = {key: urls[key] for key in ("good", "brotli-bomb", "gzip-gzip-bomb")}
    fetched, peak = feedmill(config_for(tmp_path, database, bombs), "fetch")
    no_traceback(fetched, status=1)  # the bombs failed
    assert "too_large" in fetched.stdout
    print(f"{baseline / 2**20:.0f} -> {peak / 2**20:.0f} MiB")
    assert peak - baseline < BOMB_MARGIN, f"{baseline / 2**20:.0f} -> {peak / 2**20:.0f} MiB"


async def test_a_slow_parse_holds_back_no_other_source(
    tmp_path: Path, upstream: Upstream, clock: FakeClock, listener: socket.socket
) -> None:
    """While one source's document parses (in a worker, up to its deadline), the service
    keeps pulling a good source each time it falls due."""
    good = upstream.add("/good.rss", good_feed(), content_type="application/rss+xml")
    slow = upstream.add("/slow-parse", generated("slow-parse"))
    config = {
        "database": f"sqlite:///{tmp_path / 'feedmill.db'}",
        "scheduler": {"heartbeat": "1s", "lease": "30d"},
        "fetch": {"allow_addresses": LOOPBACK, "parse_deadline": "10m"},
        "sources": [{"id": "good", "url": good, "interval": "5m"}, {"id": "slow", "url": slow}],
        "feeds": [{"id": "everything", "title": "Everything"}],
    }
    settings = load_config(write_config(tmp_path / "config.yaml", config))
    service = Service(settings, clock, sockets=[listener])
    running = asyncio.create_task(service.run())
    store = Store.open(settings.database)
    try:
        assert await asyncio.to_thread(upstream.wait_for_path, "/slow-parse", 1)
        for polls in (1, 2, 3):
            assert await asyncio.to_thread(upstream.wait_for_path, "/good.rss", polls)
            await recorded(store, "good", clock())  # its next poll is set from this time
            clock.advance(timedelta(days=2))  # past max_interval (1d) and jitter: due again
        assert await asyncio.to_thread(upstream.wait_for_path, "/good.rss", 4)
        slow_source = await store.get_source("slow")
        assert slow_source.lease_owner is not None  # still parsing: its pull has not ended
        assert (slow_source.last_success_at, slow_source.error_kind) == (None, None)
    finally:
        await store.close()
        service.stop()
        await asyncio.wait_for(running, timeout=60)


async def recorded(store: Store, source_id: str, polled_at: datetime) -> None:
    """Wait until the outcome of the source's poll at ``polled_at`` is stored."""
    async with asyncio.timeout(30):
        while (await store.get_source(source_id)).last_success_at != polled_at:  # noqa: ASYNC110
            await asyncio.sleep(0.05)
