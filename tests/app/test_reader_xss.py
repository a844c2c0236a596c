"""A naive feed reader in headless Chromium renders every field of our Atom, RSS and JSON Feed
output as HTML (innerHTML of titles, summaries, content, author names, categories, source
titles), with an XSS vector corpus (tests/data/xss/vectors.txt) stored through the real
pipeline: upstream documents on a loopback server, pulled, parsed, stored and served by the
service. The reader is tests/data/xss/reader.html. No script runs, and no element or
attribute that could run one is left.

Every payload calls ``xss(n)``; the page defines it to leave a marker in the DOM, which
Chromium's --dump-dom prints. A control payload set by the page itself must fire (the
harness can see a script run); the markers of our data must not. Chromium (Debian package
``chromium``) is installed with apt-get when missing and running as root; without it the test
fails as root (CI) and skips otherwise.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
from html import escape
from pathlib import Path
from typing import Any
from xml.sax.saxutils import quoteattr

import httpx
import pytest

from feedmill.config import Settings, load_config
from feedmill.service import Service
from tests.app.configs import LOOPBACK, write_config
from tests.conftest import DATA
from tests.upstream import Upstream

FEEDS = ("atom", "rss", "json")


def vectors() -> list[str]:
    lines = (DATA / "xss" / "vectors.txt").read_text(encoding="utf-8").splitlines()
    found = [line for line in lines if line.strip() and not line.startswith("#")]
    return [line.replace("xss(0)", f"xss({n})") for n, line in enumerate(found, start=1)]


def cdata(text: str) -> str:
    return "<![CDATA[" + text.replace("]]>", "]]]]><![CDATA[>") + "]]>"


def rss_document(payloads: list[str]) -> str:
    items = "".join(
        f"""<item><title>{escape(p, quote=False)}</title>
<link>https://rss.example/{n}</link><guid isPermaLink="false">rss-{n}</guid>
<description>{escape(p, quote=False)}</description>
<content:encoded>{cdata(p)}</content:encoded>
<dc:creator>{escape(p, quote=False)}</dc:creator><category>{escape(p, quote=False)}</category>
<pubDate>Tue, 24 Nov 2026 {n % 24:02d}:00:00 +0000</pubDate></item>
"""
        for n, p in enumerate(payloads)
    )
    return f"""<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0" xmlns:content="http://purl.org/rss/1.0/modules/content/"
 xmlns:dc="http://purl.org/dc/elements/1.1/"><channel>
<title>{escape(payloads[2], quote=False)}</title><link>https://rss.example/</link>
<description>x</description>{items}</channel></rss>"""


def atom_document(payloads: list[str]) -> str:
    entries = "".join(
        f"""<entry><id>urn:atom:{n}</id><title type="html">{escape(p, quote=False)}</title>
<link href="https://atom.example/{n}"/><updated>2026-11-24T{n % 24:02d}:00:00Z</updated>
<author><name>{escape(p, quote=False)}</name></author><category term={quoteattr(p)}/>
<summary type="html">{escape(p, quote=False)}</summary>
<content type="html">{escape(p, quote=False)}</content></entry>
"""
        for n, p in enumerate(payloads)
    )
    return f"""<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom"><id>urn:atom</id>
<title type="html">{escape(payloads[2], quote=False)}</title>
<updated>2026-11-24T12:00:00Z</updated>{entries}</feed>"""


def json_document(payloads: list[str]) -> str:
    items = [
        {
            "id": f"json-{n}",
            "url": f"https://json.example/{n}",
            "title": p,
            "content_html": p,
            "summary": p,
            "authors": [{"name": p}],
            "tags": [p],
            "date_published": f"2026-11-24T{n % 24:02d}:00:00Z",
        }
        for n, p in enumerate(payloads)
    ]
    document = {"version": "https://jsonfeed.org/version/1.1", "title": payloads[2], "items": items}
    return json.dumps(document)


READER = (DATA / "xss" / "reader.html").read_text(encoding="utf-8")


@pytest.fixture(scope="session")
def chromium() -> str:
    found = shutil.which("chromium")
    if found is None and os.geteuid() == 0 and shutil.which("apt-get"):
        subprocess.run(["apt-get", "update", "-qq"], check=True)
        subprocess.run(["apt-get", "install", "-y", "-qq", "chromium"], check=True)
        found = shutil.which("chromium")
    if found is None:
        if os.geteuid() == 0:
            pytest.fail("chromium is not installed and apt-get could not install it")
        pytest.skip("chromium is not installed (Debian: apt-get install chromium)")
    return found


@pytest.fixture
def settings(tmp_path: Path, upstream: Upstream, listener: socket.socket) -> Settings:
    payloads = vectors()
    sources = {
        "hostile-rss": upstream.add("/x.rss", rss_document(payloads), content_type="text/xml"),
        "hostile-atom": upstream.add(
            "/x.atom", atom_document(payloads), content_type="application/atom+xml"
        ),
        "hostile-json": upstream.add(
            "/x.json", json_document(payloads), content_type="application/feed+json"
        ),
    }
    port = listener.getsockname()[1]
    config: dict[str, Any] = {
        "database": f"sqlite:///{tmp_path / 'feedmill.db'}",
        "server": {"host": "127.0.0.1", "port": port, "base_url": f"http://127.0.0.1:{port}/"},
        "scheduler": {"heartbeat": "1s"},
        "fetch": {"allow_addresses": LOOPBACK},
        "sources": [{"id": key, "url": url} for key, url in sources.items()],
        "feeds": [{"id": "everything", "title": "Everything", "limit": 1000}],
    }
    return load_config(write_config(tmp_path / "config.yaml", config))


def run_reader(chromium: str, page: Path) -> str:
    done = subprocess.run(
        [
            chromium,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--no-first-run",
            f"--user-data-dir={page.parent / 'profile'}",
            "--virtual-time-budget=5000",
            "--dump-dom",
            page.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


async def test_no_script_runs_in_a_naive_reader_of_our_feeds(
    settings: Settings, service: Service, chromium: str, tmp_path: Path
) -> None:
    documents = {}
    async with httpx.AsyncClient(base_url=settings.site().base_url) as http:
        for extension in FEEDS:
            response = await http.get(f"/feeds/everything.{extension}")
            assert response.status_code == 200
            documents[extension] = response.text
    assert len(json.loads(documents["json"])["items"]) == 3 * len(vectors())
    literal = json.dumps(documents).replace("<", "\\u003c")  # no </script> in the page
    page = tmp_path / "reader.html"
    page.write_text(READER.replace("%DOCS%", literal), encoding="utf-8")
    dom = run_reader(chromium, page)
    fired = re.findall(r'<div class="xss-fired">([^<]*)</div>', dom)
    found = re.findall(r'<div class="xss-found">([^<]*)</div>', dom)
    shown = re.search(r'<div id="shown">(\d+)</div>', dom)
    assert fired[:1] == ["control"] or "control" in fired, "the harness saw no script run"
    assert [n for n in fired if n != "control"] == [], f"payloads ran: {fired}"
    assert found == [], "\n".join(found)
    assert shown is not None and int(shown.group(1)) > 3 * 5 * len(vectors())
