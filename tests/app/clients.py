"""Real feed clients, driven as their users drive them, for the client matrix
(tests/app/test_clients.py). Each polls one URL and says which entries it holds (titles).

    newsboat   the Debian package: `-x reload`, `-x print-unread`, its cache read back
    reader     lemon24/reader: update_feeds(scheduled=False)
    feedparser feedparser.parse(url, etag=..., modified=...), entries kept by id
    curl       the curl command mirroring a file: -R -z FILE --etag-compare/--etag-save
               (libcurl: both validators; a 200 not newer than -z is dropped as not modified)
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
import subprocess
from pathlib import Path
from typing import Any, Protocol

import feedparser


class Client(Protocol):
    statuses: list[int]  # HTTP statuses seen, where the client tells them

    def poll(self) -> None: ...

    def titles(self) -> list[str]: ...


class Newsboat:
    def __init__(self, binary: str, url: str, home: Path) -> None:
        home.mkdir(parents=True)
        self.url, self.home, self.statuses = url, home, []
        (home / "urls").write_text(url + "\n")
        (home / "config").write_text("")
        self.command = [binary, "-u", str(home / "urls"), "-C", str(home / "config")]
        self.command += ["-c", str(home / "cache.db")]
        self.unread = 0

    def _run(self, action: str) -> str:
        env = {**os.environ, "HOME": str(self.home), "XDG_CONFIG_HOME": str(self.home)}
        done = subprocess.run(
            [*self.command, "-x", action], env=env, capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout

    def poll(self) -> None:
        self._run("reload")
        found = re.search(r"(\d+) unread articles", self._run("print-unread"))
        assert found, "newsboat printed no unread count"
        self.unread = int(found.group(1))

    def titles(self) -> list[str]:
        with sqlite3.connect(self.home / "cache.db") as cache:
            rows = cache.execute(
                "SELECT title FROM rss_item WHERE feedurl = ? AND deleted = 0", (self.url,)
            ).fetchall()
        titles = [title for (title,) in rows]
        assert self.unread == len(titles), "newsboat's unread count disagrees with its cache"
        return titles


class Reader:
    def __init__(self, url: str, path: Path) -> None:
        from reader import make_reader

        self.url, self.statuses = url, []
        self.reader = make_reader(str(path))
        self.reader.add_feed(url)

    def poll(self) -> None:
        self.reader.update_feeds(scheduled=False)
        problem = self.reader.get_feed(self.url).last_exception
        assert problem is None, f"reader failed to update: {problem}"

    def titles(self) -> list[str]:
        return [e.title or "" for e in self.reader.get_entries(feed=self.url)]

    def close(self) -> None:
        self.reader.close()


class Feedparser:
    def __init__(self, url: str) -> None:
        self.url, self.statuses = url, []
        self.etag: str | None = None
        self.modified: str | None = None
        self.seen: dict[str, str] = {}

    def poll(self) -> None:
        parsed = feedparser.parse(self.url, etag=self.etag, modified=self.modified)
        self.statuses.append(parsed.get("status", 0))
        if self.statuses[-1] == 304:
            return
        assert self.statuses[-1] == 200 and not parsed.bozo, parsed.get("bozo_exception")
        self.seen |= {e.id: e.title for e in parsed.entries}
        self.etag, self.modified = parsed.get("etag"), parsed.get("modified")

    def titles(self) -> list[str]:
        return list(self.seen.values())


class Curl:
    def __init__(self, binary: str, url: str, folder: Path) -> None:
        folder.mkdir(parents=True)
        self.binary, self.url, self.statuses = binary, url, []
        self.body, self.etag = folder / "body", folder / "etag"
        self.seen: dict[str, str] = {}

    def poll(self) -> None:
        command = [self.binary, "-sS", "-R", "-o", str(self.body), "-w", "%{http_code}"]
        command += ["--etag-save", str(self.etag)]
        if self.body.exists():  # sends If-Modified-Since (the file's time) and If-None-Match
            command += ["-z", str(self.body), "--etag-compare", str(self.etag)]
        done = subprocess.run(
            [*command, self.url], capture_output=True, text=True, timeout=60, check=True
        )
        self.statuses.append(int(done.stdout))
        self.seen |= entries_of(self.body.read_bytes())

    def titles(self) -> list[str]:
        return list(self.seen.values())


def entries_of(document: bytes) -> dict[str, str]:
    """Entry id -> title of a feed document (Atom, RSS or JSON Feed)."""
    if document.lstrip().startswith(b"{"):
        items: list[dict[str, Any]] = json.loads(document)["items"]
        return {item["id"]: item["title"] for item in items}
    parsed = feedparser.parse(document)
    assert not parsed.bozo, parsed.get("bozo_exception")
    return {e.id: e.title for e in parsed.entries}
