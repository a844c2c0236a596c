"""Write every curated feed and the index page as static files (``feedmill build``)."""

from __future__ import annotations

import os
from pathlib import Path

from feeds.errors import FeedsError
from feeds.pages import render_index
from feeds.publish import Publisher


async def export_static(publisher: Publisher, out_dir: Path) -> list[Path]:
    """The same bytes the server sends, laid out under ``out_dir`` as the server's URLs are."""
    written = []
    for feed_id in publisher.definitions:
        rendered = await publisher.render_atom(feed_id)
        written.append(_write(out_dir / "feeds" / f"{feed_id}.atom", rendered.body))
    sources = await publisher.store.list_sources()
    counts = await publisher.store.count_entries()
    page = render_index(publisher.site, list(publisher.definitions.values()), sources, counts)
    written.append(_write(out_dir / "index.html", page.encode("utf-8")))
    return written


def _write(path: Path, body: bytes) -> Path:
    """Write whole or not at all: a reader of the directory never sees half a file."""
    partial = path.with_name(f".{path.name}.partial")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        partial.write_bytes(body)
        os.replace(partial, path)
    except OSError as exc:
        raise FeedsError(f"cannot write {path}: {exc.strerror}") from exc
    return path
