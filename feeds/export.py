"""Write every curated feed (all formats, every archive page), the OPML lists and the index
page as static files (``feedmill build``): the bytes the server sends, at the server's paths."""

from __future__ import annotations

import os
from pathlib import Path

from feeds.errors import FeedsError
from feeds.model import FORMATS, feed_path
from feeds.pages import render_status_page
from feeds.publish import Publisher
from feeds.status import ProcessInfo, collect_status


async def export_static(publisher: Publisher, out_dir: Path) -> list[Path]:
    written = []
    for feed_id in publisher.definitions:
        for extension in FORMATS:
            written += await _write_pages(publisher, out_dir, feed_id, extension)
    written.append(_write(out_dir / "sources.opml", (await publisher.sources_opml()).body))
    written.append(_write(out_dir / "feeds.opml", publisher.feeds_opml().body))
    now = publisher.clock()
    process = ProcessInfo(version="", role="build", started_at=now)
    report = await collect_status(publisher, process, now, page_size=None)  # one page: static
    page = render_status_page(publisher.site, list(publisher.definitions.values()), report)
    written.append(_write(out_dir / "index.html", page.encode("utf-8")))
    return written


async def _write_pages(
    publisher: Publisher, out_dir: Path, feed_id: str, extension: str
) -> list[Path]:
    """The first page, then each archive page its ``next`` link leads to."""
    written: list[Path] = []
    before: str | None = None
    while True:
        document = await publisher.render(feed_id, extension, before)
        path = out_dir / feed_path(feed_id, extension, before)
        # The file's time is what a static server sends as Last-Modified.
        written.append(_write(path, document.body, document.updated.timestamp()))
        page = await publisher.select_page(feed_id, before)
        if page.next_before is None:
            return written
        before = page.next_before


def _write(path: Path, body: bytes, modified: float | None = None) -> Path:
    """Write whole or not at all: a reader of the directory never sees half a file.
    ``modified``: the file's modification time (seconds since the epoch)."""
    partial = path.with_name(f".{path.name}.partial")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        partial.write_bytes(body)
        if modified is not None:
            os.utime(partial, (modified, modified))
        os.replace(partial, path)
    except OSError as exc:
        raise FeedsError(f"cannot write {path}: {exc.strerror}") from exc
    return path
