"""Feed discovery: a source URL that answers with an HTML page is searched for
``<link rel="alternate" type="application/rss+xml" href="...">`` and similar links."""

from __future__ import annotations

from html.parser import HTMLParser
from urllib.parse import urljoin, urlsplit

FEED_TYPES = (
    "application/rss+xml",
    "application/atom+xml",
    "application/rdf+xml",
    "application/feed+json",
    "application/json",
)


def looks_like_html(content: bytes, content_type: str | None) -> bool:
    kind = (content_type or "").split(";", 1)[0].strip().lower()
    if kind in ("text/html", "application/xhtml+xml"):
        return True
    head = content[:1024].lstrip().lower()
    return head.startswith((b"<!doctype html", b"<html"))


def find_feed_links(content: bytes, page_url: str) -> list[str]:
    """Absolute http(s) URLs of the page's feed links, in document order, without repeats."""
    finder = _LinkFinder()
    finder.feed(content.decode("utf-8", errors="replace"))
    finder.close()
    links: dict[str, None] = {}
    for href in finder.hrefs:
        absolute = urljoin(page_url, href.strip())
        if urlsplit(absolute).scheme in ("http", "https"):
            links.setdefault(absolute, None)
    return list(links)


class _LinkFinder(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.hrefs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag != "link":
            return
        values = {name.lower(): (value or "") for name, value in attrs}
        rels = values.get("rel", "").lower().split()
        kind = values.get("type", "").split(";", 1)[0].strip().lower()
        if "alternate" in rels and kind in FEED_TYPES and values.get("href"):
            self.hrefs.append(values["href"])
