"""``feedmill import-opml FILE``: add an OPML file's feeds to config.yaml as sources.

The config file is edited as text, not re-dumped: the new items are inserted at the end of
the top-level ``sources:`` list (or a ``sources:`` list is added), so every comment and
every other line stays as written. The result is checked with the normal config loader
before it replaces the file, atomically. Feeds whose URL is already configured are skipped;
feeds whose URL feedmill would not fetch (sources.urls: a newline inside, user info, an octal
host...) are refused one by one and reported, the others still imported; titles are cleaned
of control characters; ids are slugs made from the title (or host), made unique; OPML folders
become tags.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from feedmill.config import Settings, load_config
from feedmill.errors import ConfigError
from feeds.opml import OpmlFeed
from sources.text import MAX_TITLE, plain_text
from sources.urls import url_problem

_TOP_KEY = re.compile(r"^[A-Za-z_][\w-]*\s*:")
_SOURCES_BLOCK = re.compile(r"^sources:\s*(#.*)?$")
_SOURCES_EMPTY = re.compile(r"^sources:\s*\[\s*\]\s*(#.*)?$")
_ITEM = re.compile(r"^(\s*)- ")


@dataclass(frozen=True, slots=True)
class NewSource:
    id: str
    url: str
    title: str | None
    tags: tuple[str, ...]


def plan_sources(settings: Settings, feeds: Iterable[OpmlFeed]) -> list[NewSource]:
    """The sources to add: one per feed URL not configured yet, with a unique slug id."""
    taken_ids = {s.id for s in settings.sources}
    taken_urls = {s.url.strip() for s in settings.sources}
    planned = []
    for feed in feeds:
        if feed.url in taken_urls or url_problem(feed.url):
            continue
        title = plain_text(feed.title, MAX_TITLE)
        source_id = _unique(slugify(title or urlsplit(feed.url).hostname or "source"), taken_ids)
        tags = tuple(dict.fromkeys(t for t in (slugify(f) for f in feed.folders) if t))
        planned.append(NewSource(source_id, feed.url, title, tags))
        taken_ids.add(source_id)
        taken_urls.add(feed.url)
    return planned


def refused_feeds(feeds: Iterable[OpmlFeed]) -> list[tuple[str, str]]:
    """(URL, why) for each outline whose URL feedmill would not fetch (sources.urls)."""
    return [(feed.url, problem) for feed in feeds if (problem := url_problem(feed.url))]


def slugify(text: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:90].strip("-")
    return slug or "source"


def _unique(slug: str, taken: set[str]) -> str:
    candidate, number = slug, 2
    while candidate in taken:
        candidate, number = f"{slug}-{number}", number + 1
    return candidate


def add_sources_to_text(text: str, sources: Sequence[NewSource]) -> str:
    """``text`` (a config file) with ``sources`` appended to its top-level sources list."""
    if not sources:
        return text
    lines = text.splitlines(keepends=True)
    if lines and not lines[-1].endswith("\n"):
        lines[-1] += "\n"
    for index, line in enumerate(lines):
        if _SOURCES_EMPTY.match(line):
            lines[index] = "sources:\n" + _items(sources, "  ")
            return "".join(lines)
        if _SOURCES_BLOCK.match(line):
            return _insert_in_block(lines, index, sources)
    return "".join(lines) + "\nsources:\n" + _items(sources, "  ")


def _insert_in_block(lines: list[str], start: int, sources: Sequence[NewSource]) -> str:
    end = next((i for i in range(start + 1, len(lines)) if _TOP_KEY.match(lines[i])), len(lines))
    while end > start + 1 and (
        not lines[end - 1].strip() or lines[end - 1].lstrip().startswith("#")
    ):
        end -= 1  # blank lines and comments before the next key belong to it
    indent = next((m.group(1) for line in lines[start + 1 : end] if (m := _ITEM.match(line))), "  ")
    return "".join([*lines[:end], _items(sources, indent), *lines[end:]])


def _items(sources: Sequence[NewSource], indent: str) -> str:
    out = []
    for source in sources:
        out.append(f"{indent}- id: {source.id}\n")
        out.append(f"{indent}  url: {json.dumps(source.url, ensure_ascii=False)}\n")
        if source.title:
            out.append(f"{indent}  title: {json.dumps(source.title, ensure_ascii=False)}\n")
        if source.tags:
            out.append(f"{indent}  tags: {json.dumps(list(source.tags))}\n")
    return "".join(out)


def write_config_checked(path: Path, text: str) -> Settings:
    """Check ``text`` as a config (ConfigError if not, naming ``path``, not the file the
    text was checked in) and only then replace ``path``."""
    partial = path.with_name(f".{path.name}.import")
    partial.write_text(text, encoding="utf-8")
    try:
        settings = load_config(partial)
    except ConfigError as exc:
        partial.unlink()
        shown = [
            line.replace(str(partial), f"{path} (with the imported sources)")
            for line in exc.problems
        ]
        raise ConfigError(shown) from None
    except BaseException:
        partial.unlink()
        raise
    os.replace(partial, path)
    return settings
