"""Entries and queries shared by the search tests: every query form, with answers known from
the in-memory evaluator, run on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sources import ParsedEntry, ParsedFeed
from sources.model import Author
from store import SourceDefinition

HOUR = timedelta(hours=1)
NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
SOURCES = [
    SourceDefinition("serverdesk", "https://serverdesk.example/feed", "Server Desk", HOUR),
    SourceDefinition("the-register", "https://register.example/feed", "The Register", HOUR),
    SourceDefinition("asia-wire", "https://asiawire.example/feed", None, HOUR),
]


def _day(n: int) -> datetime:
    return datetime(2026, 11, 1, 9, 30, tzinfo=UTC) + timedelta(days=n)


def entry(key: str, day: int, title: str, body: str = "", **more: object) -> ParsedEntry:
    return ParsedEntry(
        id=key,
        link=f"https://example.org/{key}",
        title=title,
        summary=f"<p>{body}</p>" if body else None,
        published=_day(day),
        **more,  # type: ignore[arg-type]
    )


FEEDS = {
    "serverdesk": [
        entry(
            "s1",
            1,
            "Lenovo expands its Tianjin AI server hub",
            "Mass production of <b>AI servers</b> by 2027 at the Tianjin plant.",
            authors=(Author("Jane Doe"),),
            categories=("Hardware", "AI"),
        ),
        entry(
            "s2",
            3,
            "Dell cuts server prices",
            "Dell's PowerEdge line gets cheaper.",
            authors=(Author("John Smith"),),
            categories=("Hardware",),
        ),
        entry(
            "s3",
            5,
            "GPU shortage eases",
            "Nvidia and AMD ship more GPUs; server makers relieved.",
            categories=("Chips",),
        ),
        entry(
            "s4",
            7,
            "Café culture meets the data centre",
            "A café in Zürich runs on waste heat from servers &amp; storage.",
            authors=(Author("Zoë Müller"),),
        ),
        entry(
            "s5", 9, "Register your interest: server plant tour", "Tianjin plant opens to visitors."
        ),
    ],
    "the-register": [
        entry(
            "r1",
            2,
            "Lenovo's Tianjin plant to make AI servers",
            "The server plant in Tianjin starts mass production.",
            authors=(Author("Jane Doe"),),
        ),
        entry(
            "r2",
            4,
            "Serverless is not server-free",
            "Functions still run on servers.",
            categories=("Cloud",),
        ),
        entry("r3", 6, "Strasse oder Straße: German tokenisers", "Unicode folding ß ss."),
        entry("r4", 8, "Lenovo results", "Revenue up on AI demand; PC sales flat."),
    ],
    "asia-wire": [
        entry("a1", 2, "联想扩大天津AI服务器中心", "联想将在2027年量产。", categories=("科技",)),
        entry(
            "a2",
            5,
            "Lenovo Tianjin hub opens",
            "Plant, server hub and AI lab open in Tianjin.",
            authors=(Author("Li Wei"),),
        ),
        entry("a3", 10, "Ａｌｌ ｗｉｄｅ letters", "Fullwidth ＡＩ text and ﬁ ligatures: ﬁnance."),
        entry("a4", 11, 'Quotes "in" titles and (parentheses) OR NOT', "AND - * : { } ^ NEAR"),
    ],
}


def document(source_id: str) -> ParsedFeed:
    return ParsedFeed(
        url=f"https://{source_id}.example/feed",
        version="rss20",
        title=f"{source_id} feed",
        entries=tuple(FEEDS[source_id]),
    )


QUERIES = [
    "lenovo",
    "Lenovo tianjin",
    "LENOVO AND tianjin",
    '"server plant"',
    '"plant server"',
    "dell OR gpu",
    "(dell OR gpu) hardware",
    "server -lenovo",
    "server NOT lenovo -dell",
    "lenovo -(tianjin plant)",
    "title:tianjin",
    'title:"ai server"',
    "title:(dell OR café)",
    "author:doe",
    'author:"jane doe"',
    "category:hardware",
    "tag:chips",
    "source:register",
    'source:"server desk" tianjin',
    "source:asia-wire",
    "register",
    "serv*",
    "title:serv*",
    "cafe",
    "ZURICH",
    "zoe muller",
    "strasse",
    "联想",
    '"天津"',
    "ai",
    "finance",
    "lenovo's",
    "server-free",
    "lenovo since:2026-11-03",
    "lenovo before:2026-11-03",
    "lenovo within:27d",
    "server since:2026-11-03 before:2026-11-08",
    '"in" titles parentheses',
    "near",
    "tianjin -title:lenovo",
    "(lenovo OR dell) (plant OR prices) -author:smith",
    "nothingmatchesthis",
    "mass production -联想",
]
