"""The ``feedmill`` command line.

This module parses the arguments and nothing else at import time, so ``feedmill --help`` and
``--version`` answer at once; the commands (feedmill.commands) and the libraries they need
are imported after the arguments are read.

Exit status: 0 ok; 1 some sources failed (``fetch``) or an operational error (the database,
the network, a file); 2 bad usage or a bad config file.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from feedmill.version import feedmill_version

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_CONFIG = 2  # also argparse's status for bad usage

_EPILOG = (
    "exit status: 0 ok; 1 some sources failed (fetch) or an operational error; "
    "2 bad usage or a bad config file"
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="feedmill",
        description="Pull upstream feeds, store and deduplicate them, publish curated feeds.",
        epilog=_EPILOG,
    )
    parser.add_argument(
        "--config",
        metavar="PATH",
        help="the config file (default: $FEEDMILL_CONFIG, else ./config.yaml)",
    )
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="log debug messages; tracebacks on errors"
    )
    parser.add_argument(
        "--log-format",
        choices=("text", "json"),
        default="text",
        help="text (default) or json: one JSON object per log line, for a log collector",
    )
    parser.add_argument("--version", action="version", version=f"feedmill {feedmill_version()}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    commands.add_parser(
        "run",
        help="run the service: pull sources on schedule and serve the curated feeds over HTTP",
        description="Run in the foreground until Ctrl-C or SIGTERM: the heartbeat pulls due "
        "sources, and the HTTP server serves / and /feeds/ID.atom on server.host:server.port. "
        "An empty or older database is migrated first. SIGHUP reloads the config file.",
    )
    worker = commands.add_parser(
        "worker",
        help="only pull: the heartbeat, no HTTP server (several may share one PostgreSQL)",
        description="Run the heartbeat only: lease due sources, pull them, record the outcome. "
        "Any number of workers may share one PostgreSQL; see docs/scaling.md.",
    )
    worker.add_argument(
        "--metrics",
        metavar="HOST:PORT",
        help="serve this worker's Prometheus metrics at http://HOST:PORT/metrics",
    )
    commands.add_parser(
        "serve",
        help="only serve the curated feeds over HTTP, pulling nothing",
        description="Run the HTTP server only, on server.host:server.port, reading the store "
        "that workers fill. Any number may share one PostgreSQL.",
    )
    commands.add_parser(
        "prune",
        help="apply retention now: remove old entries, leaving tombstones",
        description="Apply retention.max_age / max_entries (and each source's own) now and "
        "print the entries removed per source. Workers also apply it after every pull.",
    )
    fetch = commands.add_parser(
        "fetch",
        help="pull sources once (all, or the ones named), print what changed, and exit",
        description="Pull the named sources (every active source when none is named) once, "
        "due or not, and print per source: new / updated / unchanged / error. Exit status 1 "
        "if any failed. A progress bar on a terminal; log lines only with -v.",
        epilog=_EPILOG,
    )
    fetch.add_argument("source_ids", nargs="*", metavar="SOURCE", help="a sources.id")
    _add_json(fetch)
    build = commands.add_parser(
        "build",
        help="write every curated feed and the index page as static files",
        description="Render every curated feed from the store into DIR (feeds/ID.atom, .rss, "
        ".json and their archive pages, sources.opml, feeds.opml, index.html), the same bytes "
        "the server sends.",
    )
    build.add_argument("--out", metavar="DIR", required=True, type=Path, help="output folder")

    sources = commands.add_parser(
        "sources",
        help="print the sources' polling state, a page at a time",
        description="A table of the active sources: id, state (ok / backing off / gone / "
        "blocked), last success, last error kind and message, next poll, entries stored; "
        "failing ones first, then by id, a page at a time, with how many there are in each "
        "state. --json prints the page's sources as a list.",
    )
    sources.add_argument(
        "--state",
        default="",
        help="only sources in this state: ok, 'backing off', gone, blocked, or failing (any "
        "but ok)",
    )
    sources.add_argument("--search", default="", help="only sources whose id, title or URL has it")
    sources.add_argument("--page", type=_positive, default=1, help="which page (default 1)")
    sources.add_argument(
        "--per-page", type=_positive, default=100, help="sources a page (default 100)"
    )
    sources.add_argument("--all", action="store_true", help="every matching source, no pages")
    _add_json(sources)

    _add_feed_commands(commands)
    db = commands.add_parser("db", help="database schema: upgrade, current revision")
    db_commands = db.add_subparsers(dest="db_command", required=True, metavar="ACTION")
    db_commands.add_parser(
        "upgrade",
        help="migrate the database to this version's schema (refuses a newer or foreign one)",
    )
    db_commands.add_parser("current", help="print the database's schema revision")
    return parser


def _positive(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"a whole number from 1 up, not {text!r}")
    return int(text)


def _add_json(command: argparse.ArgumentParser) -> None:
    command.add_argument(
        "--json", action="store_true", help="print JSON instead of a table (for scripts)"
    )


def _add_feed_commands(commands: Any) -> None:
    preview = commands.add_parser(
        "preview",
        help="print the entries a curated feed would carry now",
        description="Select FEED's entries from the store with the current rules, newest "
        "first. With --why, print every candidate considered and the rule that kept or "
        "dropped it.",
    )
    preview.add_argument("feed", metavar="FEED", help="a feeds.id")
    preview.add_argument("--why", action="store_true", help="explain each candidate")
    preview.add_argument(
        "--candidates",
        type=int,
        default=200,
        metavar="N",
        help="with --why, most candidates to judge (default 200)",
    )
    _add_json(preview)
    explain = commands.add_parser(
        "explain",
        help="why an entry is in or out of each curated feed, and which story it belongs to",
        description="Print ENTRY's story (every member, and the kind and similarity scores "
        "that put each there), the candidate stories it was compared with, and for each "
        "curated feed whether it carries the entry and why (rules, then dedupe).",
    )
    explain.add_argument("entry", metavar="ENTRY", help="an entry uid, or the entry's link")
    _add_json(explain)
    search = commands.add_parser(
        "search",
        help="search every stored entry (docs/search.md for the query language)",
        description="Print the stored entries that match QUERY, newest first: words, "
        '"phrases", OR, -word, (groups), title: author: source: category:, since: before: '
        "within:. A bad query is exit status 1 with a message.",
    )
    search.add_argument("query", metavar="QUERY", help="the search query (quote it)")
    search.add_argument(
        "--limit", type=int, default=20, metavar="N", help="most entries to print (default 20)"
    )
    _add_json(search)
    check = commands.add_parser(
        "check-config",
        help="check the config file and exit",
        description="Read and check the config file (keys, values, references, regular "
        "expressions, the database driver) without opening the database or the network, "
        "and print every problem found. Exit status 2 if there is any.",
    )
    _add_json(check)
    importer = commands.add_parser(
        "import-opml",
        help="add the feeds of an OPML file to the config's sources",
        description="Append one source per feed of FILE whose URL is not configured yet to "
        "the config file's sources list, keeping the rest of the file (comments included) "
        "as it is. OPML folders become tags.",
    )
    importer.add_argument("file", metavar="FILE", type=Path, help="an OPML file")


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # Imported only now: `feedmill --help` stays fast.
    from feedmill.commands import run_command

    return run_command(args)
