"""The status page as a person sees it: loaded by headless Chromium from the real service,
asserted on the rendered text. With FEEDMILL_SCREENSHOT=docs/status-page.png the run also
refreshes the README's screenshot."""

from __future__ import annotations

import asyncio
import os
import re
import socket
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest

from feedmill.config import Settings, load_config
from feedmill.service import Service
from tests.app.configs import outlets_config, serve_outlets, write_config
from tests.conftest import fixture_bytes
from tests.debian import debian_command
from tests.upstream import Upstream

FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--hide-scrollbars",
]


@pytest.fixture(scope="session")
def chromium() -> str:
    return debian_command("chromium", "chromium")


@pytest.fixture
def settings(tmp_path: Path, upstream: Upstream, listener: socket.socket) -> Settings:
    port = listener.getsockname()[1]
    sources = serve_outlets(upstream)
    sources["missing"] = upstream.url("/missing.rss")
    sources["broken"] = upstream.add(
        "/page.html", fixture_bytes("page-without-feed.html"), content_type="text/html"
    )
    config = outlets_config(sources, tmp_path, port)
    return load_config(write_config(tmp_path / "config.yaml", config))


async def browse(chromium: str, profile: Path, url: str, *extra: str) -> str:
    """What Chromium prints for ``url`` with ``extra`` flags (the DOM with --dump-dom)."""
    process = await asyncio.create_subprocess_exec(
        chromium,
        *FLAGS,
        f"--user-data-dir={profile}",
        *extra,
        url,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        stdin=subprocess.DEVNULL,
    )
    out, _ = await asyncio.wait_for(process.communicate(), 120)
    assert process.returncode == 0
    return out.decode()


class _Text(HTMLParser):
    """The text a reader sees, one table row or paragraph a line."""

    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []
        self.hidden = 0

    def handle_starttag(self, tag: str, attrs: object) -> None:
        self.hidden += tag in ("style", "script", "title")
        if tag in ("tr", "p", "li", "h1", "h2", "nav"):
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        self.hidden -= tag in ("style", "script", "title")

    def handle_data(self, data: str) -> None:
        if not self.hidden:
            self.parts.append(data + " ")


def rendered_lines(dom: str) -> list[str]:
    reader = _Text()
    reader.feed(dom)
    return [" ".join(line.split()) for line in "".join(reader.parts).splitlines() if line.strip()]


async def test_the_status_page_in_a_browser(
    service: Service, settings: Settings, chromium: str, tmp_path: Path
) -> None:
    base = settings.site().base_url
    lines = rendered_lines(await browse(chromium, tmp_path / "profile", base, "--dump-dom"))
    assert lines[0] == "feedmill"
    assert re.match(r"feedmill 0\.1\.0 \(run\) up \d+h \d+m last heartbeat 20\d\d-", lines[1])
    assert "5 sources: 3 ok, 2 backing off, 0 gone, 0 blocked 0 due now" in lines
    feed = next(line for line in lines if line.startswith("AI infrastructure"))
    assert re.search(r" 2 2026-11-2\d \d\d:\d\d UTC Atom · RSS · JSON Feed$", feed), feed
    rows = [line for line in lines if line.split(" ")[0] in ("ok", "backing")]
    assert [row.split(" ")[0] for row in rows] == ["backing", "backing", "ok", "ok", "ok"]
    assert re.search(
        r"1 failed, failing since 20\d\d-.* UTC, never succeeded", rows[0]
    ) and "http_4xx: HTTP 404" in " ".join(rows)
    failing = await browse(chromium, tmp_path / "profile", base + "?state=failing", "--dump-dom")
    assert "2 sources, failing first" in rendered_lines(failing)
    shot = Path(os.environ.get("FEEDMILL_SCREENSHOT") or tmp_path / "status.png")
    size = "--window-size=1100,1000"
    await browse(chromium, tmp_path / "profile", base, f"--screenshot={shot}", size)
    assert (await asyncio.to_thread(shot.read_bytes))[:8] == b"\x89PNG\r\n\x1a\n"
