"""The HTML index page: the curated feeds with subscribe links and autodiscovery tags, and
the state of every upstream source."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from html import escape

from feeds.model import FeedDefinition, Site
from store.model import StoredSource, StorySummary

# Formats offered for subscription, Atom first: extension -> (label, media type).
_SUBSCRIBE = {
    "atom": ("Atom", "application/atom+xml"),
    "rss": ("RSS", "application/rss+xml"),
    "json": ("JSON Feed", "application/feed+json"),
}

_STYLE = """
body{font:16px/1.5 system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;color:#222}
h1{font-size:1.6rem} table{border-collapse:collapse;width:100%;font-size:.9rem}
td,th{border-bottom:1px solid #ddd;padding:.3rem .5rem;text-align:left;vertical-align:top}
.error{color:#a40000} .muted{color:#666} code{background:#f4f4f4;padding:0 .2rem}
"""


def render_index(
    site: Site,
    feeds: Sequence[FeedDefinition],
    sources: Sequence[StoredSource],
    entry_counts: Mapping[str, int],
    stories: Sequence[StorySummary] = (),
    *,
    search: bool = False,
) -> str:
    discovery = "\n".join(
        f'<link rel="alternate" type="{media}" title="{escape(_title(f, extension))}" '
        f'href="{escape(site.feed_url(f.id, extension))}">'
        for f in feeds
        for extension, (_, media) in _SUBSCRIBE.items()
    )
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{escape(site.title)}</title>
{discovery}
<style>{_STYLE}</style>
</head>
<body>
<h1>{escape(site.title)}</h1>
{_search_form(site) if search else ""}
<h2>Curated feeds</h2>
{_feed_list(site, feeds)}
<p class="muted">All of them at once: <a href="{escape(site.base_url)}feeds.opml">feeds.opml</a>;
the upstream sources: <a href="{escape(site.base_url)}sources.opml">sources.opml</a>.</p>
<h2>Sources</h2>
{_source_table(sources, entry_counts)}
{_story_table(stories)}
</body>
</html>
"""


def _search_form(site: Site) -> str:
    """A search box: the search page (feeds.search) also offers each search as a feed."""
    page = escape(site.base_url) + "search"
    return (
        f'<form action="{page}" method="get" role="search">'
        '<input type="search" name="q" aria-label="Search every source"> '
        f'<button type="submit">Search</button> <a href="{page}">the search page</a></form>'
    )


def _title(feed: FeedDefinition, extension: str) -> str:
    """The feed's title; the formats after Atom say which they are."""
    return feed.title if extension == "atom" else f"{feed.title} ({_SUBSCRIBE[extension][0]})"


def _feed_list(site: Site, feeds: Sequence[FeedDefinition]) -> str:
    if not feeds:
        return '<p class="muted">No curated feeds are configured.</p>'
    items = []
    for feed in feeds:
        url = escape(site.feed_url(feed.id))
        formats = " · ".join(
            f'<a href="{escape(site.feed_url(feed.id, extension))}">{label}</a>'
            for extension, (label, _) in _SUBSCRIBE.items()
        )
        subtitle = f"<br><span class=muted>{escape(feed.subtitle)}</span>" if feed.subtitle else ""
        items.append(
            f'<li><a href="{url}">{escape(feed.title)}</a> ({formats}: '
            f"<code>{url}</code>){subtitle}</li>"
        )
    return "<ul>\n" + "\n".join(items) + "\n</ul>"


def _source_table(sources: Sequence[StoredSource], entry_counts: Mapping[str, int]) -> str:
    if not sources:
        return '<p class="muted">No sources are configured.</p>'
    rows = "\n".join(_source_row(s, entry_counts.get(s.id, 0)) for s in sources)
    return (
        "<table>\n<tr><th>Source</th><th>Entries</th><th>Last success</th>"
        "<th>Next poll</th><th>Last error</th></tr>\n" + rows + "\n</table>"
    )


def _source_row(source: StoredSource, count: int) -> str:
    error = ""
    if source.error_kind:
        error = (
            f'<span class="error">{escape(source.error_kind)} ×{source.error_count}: '
            f"{escape(source.error_message or '')}</span>"
        )
    return (
        f'<tr><td><a href="{escape(source.url)}">{escape(source.display_title)}</a>'
        f"<br><span class=muted>{escape(source.id)}</span></td><td>{count}</td>"
        f"<td>{_when(source.last_success_at)}</td><td>{_when(source.next_poll_at)}</td>"
        f"<td>{error}</td></tr>"
    )


def _story_table(stories: Sequence[StorySummary]) -> str:
    """Issue 5: the latest stories carried by several sources."""
    if not stories:
        return ""
    rows = "\n".join(
        f"<tr><td>{escape(s.title or s.representative_uid)}"
        f"<br><span class=muted>{escape(s.id)}</span></td>"
        f"<td>{s.source_count}</td><td>{s.member_count}</td><td>{_when(s.updated_at)}</td></tr>"
        for s in stories
    )
    return (
        "<h2>Stories in several sources</h2>\n<table>\n<tr><th>Story</th><th>Sources</th>"
        "<th>Entries</th><th>Last change</th></tr>\n" + rows + "\n</table>"
    )


def _when(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC") if moment else '<span class="muted">never</span>'
