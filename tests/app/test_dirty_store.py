"""Rendering cannot fail on stored data: rows written straight into the database (as an older
version could have stored them, bypassing today's ingest) hold XML-illegal characters, lone
surrogates, terminal escapes, markup in plain-text fields, unsafe links and a huge title.
Every format of every feed, every archive page, the OPML lists and the index page render,
the Atom validates, and the CLI prints them without a traceback or a raw escape."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import feedparser
import pytest
from lxml import etree
from sqlalchemy import insert, update

from feedmill.cli import main
from feedmill.config import load_config
from feedmill.service import open_store
from feeds.clean import MAX_TITLE
from store.identity import entry_uid
from store.tables import EntryRow, SourceRow
from tests.app.configs import write_config
from tests.postgres import private_schema

T0 = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
HUGE = "H" * 2_000_000
ESCAPES = "\x1b[2J\x1b]0;pwned\x07\x1b]8;;https://evil.example/\x1b\\click\x1b]8;;\x1b\\\x9b31m"


def dirty_rows(nul: bool) -> list[dict[str, Any]]:
    """Entries no ingest of today would store. PostgreSQL refuses NUL in text; the JSON
    columns carry lone surrogates as \\ud800 escapes, which both databases keep."""
    zero = "\x00" if nul else ""
    titles = [
        f"Control{zero}\x01\x02\x0b\x0c{ESCAPES} title\x7f\ufffe\uffff",
        HUGE,
        "<img src=x onerror=xss(1)>Markup [link=https://evil.example/]title[/link] [/]",
        "[bold]rich[/bold] markup <b",
        None,
    ]
    rows = []
    for number, title in enumerate(titles):
        key = f"dirty-{number}"
        rows.append(
            {
                "source_id": "dirty",
                "entry_key": key,
                "uid": entry_uid("dirty", key),
                "link": ["https://e.example/\x01a", "javascript:xss(2)", None][number % 3],
                "title": title,
                "summary": f"<p>bad{zero}\x01 summary\uffff &lt;img src=x onerror=xss(3)&gt;</p>",
                "content": f"<p>content {ESCAPES}\x08</p>" if number % 2 else None,
                "authors": [
                    "\ud800 lone",
                    "\x01ctl",
                    "",
                    "<b>x</b>",
                    {"name": "<i>Page</i>", "url": "javascript:xss(7)"},
                    {"name": "Me\x01", "url": "https://e.example/me"},
                ],
                "categories": ["\udfff", "ok", "<script>xss(4)</script>"],
                "enclosures": [
                    {"url": "javascript:xss(5)", "type": "audio/mpeg", "length": 5},
                    {"url": "https://e.example/a.mp3\x01", "type": "audio\x02/mpeg", "length": -3},
                ],
                "published": T0 - timedelta(minutes=number),
                "updated": None,
                "sort_at": T0 - timedelta(minutes=number),
                "first_seen_at": T0,
                "changed_at": T0,
                "content_hash": "0" * 64,
                "language": "en\x01",
                "canonical_link": "https://e.example/same",
            }
        )
    return rows


async def store_dirty_rows(config: Path, nul: bool) -> None:
    settings = load_config(config)
    zero = "\x00" if nul else ""
    store = await open_store(settings, lambda: T0)
    try:
        async with store.engine.begin() as conn:
            await conn.execute(insert(EntryRow), dirty_rows(nul))
            await conn.execute(
                update(SourceRow)
                .where(SourceRow.id == "dirty")
                .values(
                    feed_title=f"Feed{zero}\x01 {ESCAPES}<i>title</i>",
                    feed_link="javascript:xss(6)",
                    error_kind="parse",
                    error_message=f"upstream says {ESCAPES}[link=https://evil.example/]x[/link]",
                    error_count=1,
                )
            )
    finally:
        await store.close()


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'feedmill.db'}"
    else:
        with private_schema() as url:
            yield url


@pytest.fixture
def dirty_config(tmp_path: Path, database: str) -> Path:
    config = {
        "database": database,
        "sources": [{"id": "dirty", "url": "https://dirty.example/feed", "title": None}],
        "feeds": [
            {"id": "everything", "title": "Everything \x01", "limit": 2},
            {"id": "ruled", "title": "Ruled", "include": [{"regex": "title|H+"}]},
            {"id": "linked", "title": "Linked", "dedupe": "link"},
        ],
    }
    path = write_config(tmp_path / "config.yaml", config)
    asyncio.run(store_dirty_rows(path, nul=database.startswith("sqlite")))
    return path


def test_every_format_of_every_feed_renders_stored_dirt(
    dirty_config: Path,
    tmp_path: Path,
    validate_atom: Callable[[bytes], None],
    capsys: pytest.CaptureFixture[str],
) -> None:
    out = tmp_path / "public"
    assert main(["--config", str(dirty_config), "build", "--out", str(out)]) == 0
    files = {p.relative_to(out).as_posix(): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert "feeds/everything/before/" + entry_uid("dirty", "dirty-1") + ".atom" in files
    for name, body in files.items():
        for unsafe in (b"\x01", b"\x1b", b"\\u0001", b"\\u001b", b"javascript:", b"xss(1)"):
            assert unsafe not in body, (name, unsafe)
        if name.endswith(".atom"):
            validate_atom(body)
            assert not feedparser.parse(body).bozo, name
        elif name.endswith((".rss", ".opml")):
            etree.fromstring(body)  # well-formed XML
            assert not feedparser.parse(body).bozo or name.endswith(".opml"), name
        elif name.endswith(".json"):
            check_json_items(json.loads(body))
        else:
            body.decode("utf-8")
    atom = feedparser.parse(files["feeds/ruled.atom"])
    titles = [e.title for e in atom.entries]
    assert titles[0].startswith("Control") and "title" in titles[0]
    assert len(titles[1]) == MAX_TITLE and titles[1].endswith("…")
    assert titles[2] == "Markup [link=https://evil.example/]title[/link] [/]"
    assert titles[3] == "[bold]rich[/bold] markup"
    authors = [(a.name, a.get("href")) for a in atom.entries[0].authors]
    assert authors == [
        ("\ufffd lone", None),
        ("ctl", None),
        ("x", None),
        ("Page", None),
        ("Me", "https://e.example/me"),
    ]
    assert [t.term for t in atom.entries[0].tags] == ["\ufffd", "ok", "xss(4)"]
    assert [link.href for link in atom.entries[0].links] == [
        "https://e.example/a",
        "https://e.example/a.mp3",
    ]
    links = atom.entries[1].get("links", [])  # the javascript: link is not published
    assert [link.rel for link in links] == ["enclosure"]
    assert len(files["index.html"]) < 50_000  # the huge title is not on the index page


def check_json_items(document: dict[str, Any]) -> None:
    for item in document["items"]:
        assert "\ud800" not in json.dumps(item, ensure_ascii=False)
        assert "url" not in item or item["url"].startswith("https://")
        assert "<" not in item["title"] and "<" not in item.get("summary", "")
        assert all("<" not in tag for tag in item.get("tags", ()))


def test_the_cli_prints_stored_dirt_as_plain_text(
    dirty_config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    uid = entry_uid("dirty", "dirty-0")
    commands = [["preview", "everything"], ["preview", "ruled", "--why"], ["explain", uid]]
    for command in [*commands, ["sources"]]:
        assert main(["--config", str(dirty_config), *command]) == 0, command
        output = capsys.readouterr().out
        assert "\x1b" not in output and "\x9b" not in output and "\x07" not in output, command
        assert "evil.example" not in output or "[link=https://evil.example/]" in output
    assert main(["--config", str(dirty_config), "preview", "ruled", "--why"]) == 0
    output = capsys.readouterr().out
    assert "Markup [link=https://evil.example/]title[/link] [/]" in output
    assert "[bold]rich[/bold] markup" in output
