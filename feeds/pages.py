"""The HTML index page, a status page people act on: this process (version, uptime, last
heartbeat), the curated feeds (entries, last change, subscribe links, autodiscovery tags),
the sources failing first (state, error count, since when) with a filter and pages, and the
latest stories carried by several sources. Built from a :class:`feeds.status.StatusReport`."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from html import escape as _escape
from urllib.parse import urlencode

from feeds.clean import MAX_TITLE, xml_text
from feeds.model import FeedDefinition, Site
from feeds.status import FAILING, STATES, FeedStatus, SourceStatus, StatusReport
from store.model import StorySummary

# Formats offered for subscription, Atom first: extension -> (label, media type).
_SUBSCRIBE = {
    "atom": ("Atom", "application/atom+xml"),
    "rss": ("RSS", "application/rss+xml"),
    "json": ("JSON Feed", "application/feed+json"),
}
_LONGEST = 240  # characters of upstream text (titles, error messages) shown in a cell

_STYLE = """
body{font:16px/1.5 system-ui,sans-serif;max-width:72rem;margin:2rem auto;padding:0 1rem;color:#222}
h1{font-size:1.6rem} table{border-collapse:collapse;width:100%;font-size:.9rem}
td,th{border-bottom:1px solid #ddd;padding:.3rem .5rem;text-align:left;vertical-align:top}
.error{color:#a40000} .muted{color:#666} code{background:#f4f4f4;padding:0 .2rem}
.state{white-space:nowrap;font-weight:600} .ok{color:#1a7f37} .backing-off{color:#9a6700}
.gone{color:#666} .blocked{color:#a40000} .summary span{margin-right:1rem}
form{margin:.5rem 0} nav{margin:.5rem 0}
"""


def escape(text: str, limit: int = MAX_TITLE * 4) -> str:
    """HTML-escaped, without characters that cannot be encoded or shown, at most ``limit``
    characters: upstream titles and error messages are shown as text, whatever they hold."""
    return _escape(xml_text(text[:limit]))


def render_status_page(
    site: Site,
    feeds: Sequence[FeedDefinition],
    report: StatusReport,
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
{_summary(report)}
{_search_form(site) if search else ""}
<h2>Curated feeds</h2>
{_feed_table(site, feeds, report.feeds)}
<p class="muted">All of them at once: <a href="{escape(site.base_url)}feeds.opml">feeds.opml</a>;
the upstream sources: <a href="{escape(site.base_url)}sources.opml">sources.opml</a>;
this page as JSON: <a href="{escape(site.base_url)}status.json">status.json</a>.</p>
<h2>Sources</h2>
{_source_section(report)}
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


def _summary(report: StatusReport) -> str:
    counts = report.counts
    states = ", ".join(f"{n} {state}" for state, n in counts.states.items())
    return (
        f'<p class="summary">{_process(report)}'
        f"<span>last pull {_when(counts.last_polled_at, seconds=True)}</span></p>\n"
        f'<p class="summary"><span>{sum(counts.states.values())} sources: {states}</span>'
        f"<span>{counts.due} due now</span></p>"
    )


def _process(report: StatusReport) -> str:
    """What the process answering is: version, role, uptime, its heartbeat (if it pulls)."""
    process = report.process
    if process.role == "build":  # a static copy: no process to speak of
        return f"<span>written by feedmill build at {_when(report.now, seconds=True)}</span>"
    if process.role in ("run", "worker"):
        heartbeat = f"last heartbeat {_when(process.last_heartbeat, seconds=True)}"
    else:
        heartbeat = "this process does not pull"
    running = process.heartbeat_running_since
    if running is not None:
        heartbeat += f" (one running since {_when(running, seconds=True)})"
    version = f"feedmill {process.version}".strip()
    return (
        f"<span>{escape(version)} ({escape(process.role)})</span>"
        f"<span>up {_duration(report.now - process.started_at)}</span><span>{heartbeat}</span>"
    )


def _title(feed: FeedDefinition, extension: str) -> str:
    """The feed's title; the formats after Atom say which they are."""
    return feed.title if extension == "atom" else f"{feed.title} ({_SUBSCRIBE[extension][0]})"


def _feed_table(site: Site, feeds: Sequence[FeedDefinition], shown: Sequence[FeedStatus]) -> str:
    if not feeds:
        return '<p class="muted">No curated feeds are configured.</p>'
    status = {f.id: f for f in shown}
    rows = []
    for feed in feeds:
        url = escape(site.feed_url(feed.id))
        formats = " · ".join(
            f'<a href="{escape(site.feed_url(feed.id, extension))}">{label}</a>'
            for extension, (label, _) in _SUBSCRIBE.items()
        )
        subtitle = f"<br><span class=muted>{escape(feed.subtitle)}</span>" if feed.subtitle else ""
        now = status.get(feed.id)
        rows.append(
            f'<tr><td><a href="{url}">{escape(feed.title)}</a>{subtitle}'
            f"<br><code>{url}</code></td>"
            f"<td>{now.entries if now else ''}</td><td>{_when(now.updated if now else None)}</td>"
            f"<td>{formats}</td></tr>"
        )
    return (
        "<table>\n<tr><th>Feed</th><th>Entries</th><th>Last change</th><th>Subscribe</th></tr>\n"
        + "\n".join(rows)
        + "\n</table>"
    )


def _source_section(report: StatusReport) -> str:
    if not sum(report.counts.states.values()):
        return '<p class="muted">No sources are configured.</p>'
    table = "\n".join(_source_row(s) for s in report.sources)
    listed = (
        "<table>\n<tr><th>State</th><th>Source</th><th>Entries</th><th>Errors</th>"
        "<th>Last success</th><th>Last try</th><th>Next poll</th></tr>\n" + table + "\n</table>"
        if report.sources
        else '<p class="muted">No source matches.</p>'
    )
    below = _pager(report) if report.pages > 1 else ""
    return _filter_form(report) + "\n" + _pager(report) + "\n" + listed + "\n" + below


def _filter_form(report: StatusReport) -> str:
    query = report.query
    options = "".join(
        f'<option value="{escape(value)}"{" selected" if value == query.state else ""}>'
        f"{escape(label)}</option>"
        for value, label in [("", "all states"), (FAILING, "failing"), *((s, s) for s in STATES)]
    )
    return (
        '<form method="get" action="">'
        f'<input type="search" name="q" value="{escape(query.text)}" '
        'placeholder="id, title or URL" aria-label="filter sources"> '
        f'<select name="state" aria-label="state">{options}</select> '
        '<button type="submit">Filter</button></form>'
    )


def _pager(report: StatusReport) -> str:
    query, pages = report.query, report.pages
    text = f"{report.matching} sources, failing first"
    if pages > 1:
        text += f"; page {query.page} of {pages}"
    links = []
    for label, page in (("← previous", query.page - 1), ("next →", query.page + 1)):
        if 1 <= page <= pages:
            params = {"q": query.text, "state": query.state, "page": str(page)}
            href = "?" + urlencode({k: v for k, v in params.items() if v})
            links.append(f'<a href="{escape(href)}">{label}</a>')
    return f'<nav class="muted">{text} {" · ".join(links)}</nav>'


def _source_row(source: SourceStatus) -> str:
    errors = ""
    if source.error_count:
        if source.failing_since is not None:
            since = f"failing since {_when(source.failing_since)}"
            if source.last_success_at is None:
                since += ", never succeeded"
        elif source.last_success_at is not None:  # failing since before that was recorded
            since = f"since the last success, {_when(source.last_success_at)}"
        else:
            since = "never succeeded"
        errors = (
            f'<span class="error">{source.error_count} failed, {since}<br>'
            f"{escape(source.error_kind or '')}: {escape(_short(source.error_message))}</span>"
        )
    named = "" if source.title == source.id else f"<br><span class=muted>{escape(source.id)}</span>"
    return (
        f'<tr><td class="state {source.state.replace(" ", "-")}">{source.state}</td>'
        f'<td><a href="{escape(source.url)}">{escape(_short(source.title))}</a>{named}'
        f"</td><td>{source.entries}</td>"
        f"<td>{errors}</td><td>{_when(source.last_success_at)}</td>"
        f"<td>{_when(source.last_polled_at)}</td><td>{_when(source.next_poll_at)}</td></tr>"
    )


def _story_table(stories: Sequence[StorySummary]) -> str:
    """The latest stories carried by several sources."""
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


def _short(text: str | None) -> str:
    text = text or ""
    return text if len(text) <= _LONGEST else text[: _LONGEST - 1] + "…"


def _duration(span: timedelta) -> str:
    minutes = max(0, int(span.total_seconds()) // 60)
    days, minutes = divmod(minutes, 24 * 60)
    hours, minutes = divmod(minutes, 60)
    return f"{days}d {hours}h {minutes}m" if days else f"{hours}h {minutes}m"


def _when(moment: datetime | None, *, seconds: bool = False) -> str:
    if moment is None:
        return '<span class="muted">never</span>'
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC" if seconds else "%Y-%m-%d %H:%M UTC")
