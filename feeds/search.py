"""Search feeds and the search page: any query, served like a curated feed.

    GET /search.{atom,rss,json}?q=QUERY[&before=UID]   newest first, paged (RFC 5005), ETag
    GET /search?q=QUERY[&before=UID]                   HTML: results, highlighted snippets
    text -> parse_query (search.* limits) -> a FeedDefinition with the query over every source
         -> Publisher.select_with (time budget) -> Publisher.render_page -> cached per
            (query, format, page) until a source changes (and each minute with within:)

A bad query raises store.search.QueryError; the HTTP app answers it with a 400.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from html import escape
from urllib.parse import urlencode

from feeds.model import FeedDefinition, PageLinks, SearchSettings, Site
from feeds.publish import Document, Page, Publisher
from feeds.render import EPOCH, entry_updated
from feeds.select import FEED_QUERY_LIMITS, Selector
from store.model import StoredEntry
from store.search import Limits, SearchQuery, Term, html_text, parse_query, tokens, wanted_terms

CACHE_SIZE = 256
_PARTS = re.compile(r"[^\W_]+|[\W_]+")
_FORMATS = {"atom": "Atom", "rss": "RSS", "json": "JSON Feed"}
_MEDIA = {
    "atom": "application/atom+xml",
    "rss": "application/rss+xml",
    "json": "application/feed+json",
}


def search_url(
    site: Site, text: str, extension: str | None = None, before: str | None = None
) -> str:
    """``search.EXT?q=...`` (the HTML page without an extension), with ``before`` for a page."""
    path = "search" if extension is None else f"search.{extension}"
    params = {"q": text} | ({"before": before} if before else {})
    return f"{site.base_url}{path}?{urlencode(params)}"


class SearchFeeds:
    """Search results as feeds and pages, through the publisher that renders curated feeds."""

    def __init__(self, publisher: Publisher, settings: SearchSettings) -> None:
        self.publisher = publisher
        self.settings = settings
        self.limits = Limits(settings.max_query_length, settings.max_terms)
        self._cache: OrderedDict[tuple[str, str, str | None], tuple[object, Document]] = (
            OrderedDict()
        )

    def parse(self, text: str) -> SearchQuery:
        return parse_query(text, self.limits)

    async def definition(self, text: str, limit: int | None = None) -> FeedDefinition:
        """A feed of every source's entries that match ``text`` (checked: QueryError)."""
        self.parse(text)
        sources = tuple(await self.publisher.source_infos())
        return FeedDefinition(
            id="search?" + urlencode({"q": text}),
            title=f"Search: {text}",
            subtitle=f"Entries matching {text} in every source, newest first",
            source_ids=sources,
            limit=limit or self.settings.limit,
            dedupe=self.settings.dedupe,
            query=text,
        )

    async def page(self, text: str, before: str | None = None, limit: int | None = None) -> Page:
        return await self._page(await self.definition(text, limit), before)

    async def _page(self, definition: FeedDefinition, before: str | None) -> Page:
        return await self.publisher.select_with(
            definition,
            Selector(definition),
            before,
            seconds=self.settings.timeout,
            everything=True,
        )

    async def render(self, text: str, extension: str, before: str | None = None) -> Document:
        """The document for ``search.EXT?q=text`` (``before``: a later page), cached until a
        source changes."""
        definition = await self.definition(text)
        stamp = await self.publisher._stamp(definition)
        key = (text, extension, before)
        cached = self._cache.get(key)
        if cached is not None and cached[0] == stamp:
            self._cache.move_to_end(key)
            return cached[1]
        page = await self._page(definition, before)
        site = self.publisher.site
        links = PageLinks(
            self_url=search_url(site, text, extension, before),
            first_url=search_url(site, text, extension),
            next_url=search_url(site, text, extension, page.next_before)
            if page.next_before
            else None,
        )
        document = await self.publisher.render_page(page, extension, links, dated=last_change(page))
        before_now = cached[1] if cached is not None else None
        if before_now is not None and document.etag != before_now.etag:
            # Changed, but its entries' dates need not tell (an entry gone, or one seen in the
            # same second): date it after the last version, as a curated feed would be.
            dated = max(self.publisher.clock(), before_now.updated + timedelta(seconds=1))
            if document.updated < dated.replace(microsecond=0):
                document = await self.publisher.render_page(page, extension, links, dated=dated)
        self._cache[key] = (stamp, document)
        while len(self._cache) > CACHE_SIZE:
            self._cache.popitem(last=False)
        return document


def last_change(page: Page) -> datetime:
    """When a search page last changed, as near as the entries tell: the latest of their
    dates and of when feedmill first saw or changed them, so that an entry back-filled with
    an old date moves the date too (Last-Modified moves with the ETag)."""
    times = [max(entry_updated(e), e.first_seen_at, e.changed_at) for e in page.entries]
    times += [s.latest for s in page.stories.values() if s.latest is not None]
    return max(times, default=EPOCH)


# -- the HTML page -------------------------------------------------------------------------------

_STYLE = """
body{font:16px/1.5 system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;color:#222}
h1{font-size:1.6rem} input[type=search]{width:70%;font-size:1rem;padding:.3rem}
ol{padding-left:1.2rem} li{margin:.8rem 0} .muted{color:#666} .error{color:#a40000}
mark{background:#fff3a0;padding:0 .1rem} code{background:#f4f4f4;padding:0 .2rem}
"""


def render_search_page(
    site: Site,
    text: str,
    page: Page | None,
    source_titles: Mapping[str, str],
    error: str | None = None,
) -> str:
    """The search page: the form, then the results of ``page`` (or the ``error``). Every
    upstream string is escaped; only the matched words are wrapped in ``<mark>``."""
    discovery = subscribe = ""
    if text and error is None:
        discovery = "\n".join(
            f'<link rel="alternate" type="{_MEDIA[ext]}" title="{escape(f"Search: {text}")}" '
            f'href="{escape(search_url(site, text, ext))}">'
            for ext in _FORMATS
        )
        subscribe = "Subscribe to this search: " + " · ".join(
            f'<a href="{escape(search_url(site, text, ext))}">{label}</a>'
            for ext, label in _FORMATS.items()
        )
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{escape(f"Search: {text}" if text else "Search")} · {escape(site.title)}</title>
{discovery}
<style>{_STYLE}</style>
</head>
<body>
<h1><a href="{escape(site.base_url)}">{escape(site.title)}</a>: search</h1>
<form action="{escape(site.base_url)}search" method="get" role="search">
<input type="search" name="q" value="{escape(text)}" aria-label="Search" autofocus>
<button type="submit">Search</button>
</form>
<p class="muted">Words, <code>"exact phrases"</code>, <code>OR</code>, <code>-word</code>,
<code>(groups)</code>, <code>title:</code> <code>author:</code> <code>source:</code>
<code>category:</code>, <code>since:2026-11-01</code> <code>before:</code>
<code>within:3d</code>.</p>
{f'<p class="error">{escape(error)}</p>' if error else ""}
{f"<p>{subscribe}</p>" if subscribe else ""}
{_results(site, text, page, source_titles) if page is not None and error is None else ""}
</body>
</html>
"""


def _results(site: Site, text: str, page: Page, source_titles: Mapping[str, str]) -> str:
    if not page.entries:
        return '<p class="muted">Nothing matches.</p>'
    assert page.definition.query is not None
    terms = wanted_terms(parse_query(page.definition.query, FEED_QUERY_LIMITS).root)
    items = "\n".join(_result(e, terms, source_titles) for e in page.entries)
    older = ""
    if page.next_before:
        url = escape(search_url(site, text, None, page.next_before))
        older = f'<p><a href="{url}">Older results</a></p>'
    return f"<ol>\n{items}\n</ol>\n{older}"


def _result(entry: StoredEntry, terms: Sequence[Term], source_titles: Mapping[str, str]) -> str:
    title = highlight(entry.title or "(untitled)", terms)
    if entry.link:
        title = f'<a href="{escape(entry.link)}">{title}</a>'
    source = escape(source_titles.get(entry.source_id, entry.source_id))
    when = entry.sort_at.strftime("%Y-%m-%d %H:%M UTC")
    text = snippet(html_text(entry.content or entry.summary), terms)
    return (
        f"<li>{title}<br><span class=muted>{source} · {when}</span>"
        + (f"<br>{text}" if text else "")
        + "</li>"
    )


def _marked(word: str, terms: Sequence[Term]) -> bool:
    found = tokens(word)
    for term in terms:
        for token in found:
            if token in term.words or (term.prefix and token.startswith(term.words[-1])):
                return True
    return False


def highlight(text: str, terms: Sequence[Term]) -> str:
    """``text`` escaped, its words that a term matches in ``<mark>``."""
    return " ".join(_highlight_word(w, terms) for w in text.split())


def _highlight_word(word: str, terms: Sequence[Term]) -> str:
    if not _marked(word, terms):
        return escape(word)
    return "".join(
        f"<mark>{escape(part)}</mark>" if _marked(part, terms) else escape(part)
        for part in _PARTS.findall(word)
    )


def snippet(text: str, terms: Sequence[Term], width: int = 36) -> str:
    """About ``width`` words of ``text`` around its first matched word, highlighted."""
    words = text.split()
    if not words:
        return ""
    first = next((i for i, w in enumerate(words) if _marked(w, terms)), 0)
    start = max(0, first - width // 4)
    shown = " ".join(words[start : start + width])
    return (
        ("… " if start else "")
        + highlight(shown, terms)
        + (" …" if start + width < len(words) else "")
    )
