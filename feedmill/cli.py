"""The ``feedmill`` command line."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.logging import RichHandler
from rich.table import Table

from feedmill.clock import utc_now
from feedmill.config import Settings, config_path, load_config
from feedmill.errors import ConfigError
from feedmill.explain import explain_entry
from feedmill.opml_import import add_sources_to_text, plan_sources, write_config_checked
from feedmill.pull import Puller, PullResult
from feedmill.service import Service, install_signal_handlers, make_publisher, open_store
from feeds import export_static
from feeds.opml import read_opml
from feeds.search import SearchFeeds
from feeds.select import Verdict
from sources import FeedmillError, make_client
from store import Store, StoredEntry, StoredSource, ensure_schema
from store.migrate import current_revision

EXIT_CONFIG = 2
EXIT_FAILURE = 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="feedmill",
        description="Pull upstream feeds, store and deduplicate them, publish curated feeds.",
    )
    parser.add_argument(
        "--config",
        metavar="PATH",
        help="the config file (default: $FEEDMILL_CONFIG, else ./config.yaml)",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    commands.add_parser(
        "run",
        help="run the service: pull sources on schedule and serve the curated feeds over HTTP",
        description="Run in the foreground until Ctrl-C or SIGTERM: the heartbeat pulls due "
        "sources, and the HTTP server serves / and /feeds/ID.atom on server.host:server.port. "
        "An empty or older database is migrated first.",
    )
    commands.add_parser(
        "worker",
        help="only pull: the heartbeat, no HTTP server (several may share one PostgreSQL)",
        description="Run the heartbeat only: lease due sources, pull them, record the outcome. "
        "Any number of workers may share one PostgreSQL; see docs/scaling.md.",
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
    commands.add_parser(
        "fetch",
        help="pull every source once, print what changed, and exit",
        description="Pull every configured source once, due or not, and print per source: "
        "new / updated / unchanged / error.",
    )
    build = commands.add_parser(
        "build",
        help="write every curated feed and the index page as static files",
        description="Render every curated feed from the store into DIR (feeds/ID.atom, .rss, "
        ".json and their archive pages, sources.opml, feeds.opml, index.html), the same bytes "
        "the server sends.",
    )
    build.add_argument("--out", metavar="DIR", required=True, type=Path, help="output folder")

    commands.add_parser(
        "sources",
        help="print each source's polling state",
        description="A table of the stored sources: id, state (ok / backing off / gone / "
        "blocked), last success, last error kind and message, next poll, entries stored.",
    )

    _add_feed_commands(commands)
    db = commands.add_parser("db", help="database schema: upgrade, current revision")
    db_commands = db.add_subparsers(dest="db_command", required=True, metavar="ACTION")
    db_commands.add_parser(
        "upgrade",
        help="migrate the database to this version's schema (refuses a newer or foreign one)",
    )
    db_commands.add_parser("current", help="print the database's schema revision")
    return parser


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
    explain = commands.add_parser(
        "explain",
        help="why an entry is in or out of each curated feed, and which story it belongs to",
        description="Print ENTRY's story (every member, and the kind and similarity scores "
        "that put each there), the candidate stories it was compared with, and for each "
        "curated feed whether it carries the entry and why (rules, then dedupe).",
    )
    explain.add_argument("entry", metavar="ENTRY", help="an entry uid, or the entry's link")
    search = commands.add_parser(
        "search",
        help="search every stored entry (docs/search.md for the query language)",
        description="Print the stored entries that match QUERY, newest first: words, "
        '"phrases", OR, -word, (groups), title: author: source: category:, since: before: '
        "within:. A bad query is exit status 1 with a message.",
    )
    search.add_argument("query", metavar="QUERY", help="the search query (quote it)")
    search.add_argument("--json", action="store_true", help="print JSON instead of a table")
    search.add_argument(
        "--limit", type=int, default=20, metavar="N", help="most entries to print (default 20)"
    )
    commands.add_parser(
        "check-config",
        help="check the config file and exit",
        description="Read and check the config file (keys, values, references, regular "
        "expressions) without opening the database or the network. Exit status 2 if bad.",
    )
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
    _setup_logging(args.verbose)
    try:
        settings = load_config(config_path(args.config))
        return asyncio.run(_dispatch(args, settings))
    except ConfigError as exc:
        for problem in exc.problems:
            print(f"feedmill: {problem}", file=sys.stderr)
        return EXIT_CONFIG
    except (FeedmillError, RuntimeError) as exc:
        print(f"feedmill: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    except KeyboardInterrupt:
        return 130


async def _dispatch(args: argparse.Namespace, settings: Settings) -> int:
    if args.command in ("run", "worker", "serve"):
        return await _run(settings, pull=args.command != "serve", serve=args.command != "worker")
    if args.command == "prune":
        return await _prune(settings)
    if args.command == "fetch":
        return await _fetch(settings)
    if args.command == "build":
        return await _build(settings, args.out)
    if args.command == "sources":
        return await _sources(settings)
    if args.command == "preview":
        return await _preview(settings, args.feed, args.why, args.candidates)
    if args.command == "explain":
        return await _explain(settings, args.entry)
    if args.command == "search":
        return await _search(settings, args.query, args.json, args.limit)
    if args.command == "check-config":
        return _check_config(settings, config_path(args.config))
    if args.command == "import-opml":
        return _import_opml(settings, config_path(args.config), args.file)
    return await _db(settings, args.db_command)


async def _run(settings: Settings, *, pull: bool = True, serve: bool = True) -> int:
    service = Service(settings, pull=pull, serve=serve)
    install_signal_handlers(service)
    await service.run()
    return 0


async def _prune(settings: Settings) -> int:
    store = await open_store(settings, utc_now)
    try:
        removed = await store.prune_entries(utc_now())
    finally:
        await store.close()
    for source_id, count in sorted(removed.items()):
        print(f"{source_id}\t{count}")
    print(f"removed {sum(removed.values())} entries")
    return 0


async def _fetch(settings: Settings) -> int:
    store = await open_store(settings, utc_now)
    try:
        fetch_settings = settings.fetch_settings()
        async with make_client(fetch_settings) as client:
            puller = Puller(
                store,
                client,
                fetch_settings,
                utc_now,
                concurrency=settings.fetch.concurrency,
                polling=settings.poll_settings(),
                hosts=settings.host_limits(),
                lease=settings.scheduler.lease,
            )
            results = await puller.pull_many(await store.list_sources())
    finally:
        await store.close()
    _print_results(results)
    return 0


def _print_results(results: Sequence[PullResult]) -> None:
    table = Table("source", "result", "new", "updated", "unchanged", "error", box=None)
    for result in sorted(results, key=lambda r: r.source_id):
        counts = result.counts
        table.add_row(
            result.source_id,
            result.status,
            *(str(n) if counts else "-" for n in _numbers(result)),
            str(result.error) if result.error else "",
        )
    Console(highlight=False, width=200).print(table)


def _numbers(result: PullResult) -> tuple[int, int, int]:
    counts = result.counts
    return (counts.new, counts.updated, counts.unchanged) if counts else (0, 0, 0)


async def _sources(settings: Settings) -> int:
    store = await open_store(settings, utc_now)
    try:
        sources = await store.list_sources()
        counts = await store.count_entries()
    finally:
        await store.close()
    table = Table("id", "state", "last success", "last error", "next poll", "entries", box=None)
    for source in sources:
        error = f"{source.error_kind}: {source.error_message}" if source.error_kind else ""
        table.add_row(
            source.id,
            source_state(source),
            _when(source.last_success_at),
            error,
            "-" if source.gone else _when(source.next_poll_at),
            str(counts.get(source.id, 0)),
        )
    Console(highlight=False, width=200).print(table)
    return 0


def source_state(source: StoredSource) -> str:
    if source.gone:
        return "gone"
    if source.error_kind == "blocked_address":
        return "blocked"
    return "backing off" if source.error_count else "ok"


def _when(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M") if moment else "-"


async def _build(settings: Settings, out: Path) -> int:
    store = await open_store(settings, utc_now)
    try:
        publisher = make_publisher(settings, store, utc_now)
        written = await export_static(publisher, out)
    finally:
        await store.close()
    for path in written:
        print(path)
    return 0


async def _preview(settings: Settings, feed_id: str, why: bool, candidates: int) -> int:
    store = await open_store(settings, utc_now)
    try:
        publisher = make_publisher(settings, store, utc_now)
        publisher.definition(feed_id)
        judged: list[tuple[StoredEntry, Verdict | None]]
        if why:
            judged = list(await publisher.explain(feed_id, candidates))
        else:
            judged = [(e, None) for e in await publisher.select(feed_id)]
    finally:
        await store.close()
    table = Table("", "date", "source", "title", *(["why"] if why else []), box=None)
    for entry, verdict in judged:
        mark = "" if verdict is None else ("in" if verdict.included else "out")
        row = [mark, entry.sort_at.strftime("%Y-%m-%d %H:%M"), entry.source_id, entry.title or ""]
        table.add_row(*row, *([verdict.reason] if verdict is not None else []))
    Console(highlight=False, width=200).print(table)
    kept = sum(1 for _, v in judged if v is None or v.included)
    print(f"{kept} entries in {feed_id}")
    return 0


async def _explain(settings: Settings, target: str) -> int:
    store = await open_store(settings, utc_now)
    try:
        lines = await explain_entry(make_publisher(settings, store, utc_now), target)
    finally:
        await store.close()
    print("\n".join(lines))
    return 0


async def _search(settings: Settings, query: str, as_json: bool, limit: int) -> int:
    store = await open_store(settings, utc_now)
    try:
        publisher = make_publisher(settings, store, utc_now)
        search = SearchFeeds(publisher, settings.search_settings())
        page = await search.page(query, limit=max(1, min(limit, 1000)))
        sources = await publisher.source_infos()
    finally:
        await store.close()
    titles = {source_id: info.title for source_id, info in sources.items()}
    if as_json:
        print(json.dumps([_entry_json(e, titles) for e in page.entries], indent=2))
        return 0
    table = Table("date", "source", "title", "link", box=None)
    for entry in page.entries:
        table.add_row(
            entry.sort_at.strftime("%Y-%m-%d %H:%M"),
            titles.get(entry.source_id, entry.source_id),
            entry.title or "",
            entry.link or "",
        )
    Console(highlight=False, width=200).print(table)
    more = " (more: raise --limit)" if page.next_before else ""
    print(f"{len(page.entries)} entries match{more}")
    return 0


def _entry_json(entry: StoredEntry, titles: dict[str, str]) -> dict[str, Any]:
    return {
        "uid": entry.uid,
        "source": entry.source_id,
        "source_title": titles.get(entry.source_id, entry.source_id),
        "title": entry.title,
        "link": entry.link,
        "published": entry.published.isoformat() if entry.published else None,
        "sort_at": entry.sort_at.isoformat(),
        "authors": list(entry.authors),
        "categories": list(entry.categories),
    }


def _check_config(settings: Settings, path: Path) -> int:
    print(f"{path}: ok: {len(settings.sources)} sources, {len(settings.feeds)} feeds")
    return 0


def _import_opml(settings: Settings, path: Path, opml_file: Path) -> int:
    try:
        content = opml_file.read_bytes()
    except OSError as exc:
        raise FeedmillError(f"cannot read {opml_file}: {exc.strerror}") from exc
    planned = plan_sources(settings, read_opml(content))
    text = add_sources_to_text(path.read_text(encoding="utf-8"), planned)
    if planned:
        write_config_checked(path, text)
    for source in planned:
        print(f"added {source.id}: {source.url}")
    print(f"{len(planned)} sources added to {path}")
    return 0


async def _db(settings: Settings, action: str) -> int:
    store = Store.open(settings.database)
    try:
        if action == "upgrade":
            print(await ensure_schema(store))
        else:
            print(await current_revision(store) or "empty (no revision)")
    finally:
        await store.close()
    return 0


def _setup_logging(verbose: bool) -> None:
    handler: logging.Handler
    if sys.stderr.isatty():
        handler = RichHandler(show_path=False, rich_tracebacks=False)
        handler.setFormatter(logging.Formatter("%(message)s"))
    else:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    for noisy in ("httpx", "httpcore", "apscheduler", "aiosqlite", "alembic"):
        logging.getLogger(noisy).setLevel(logging.DEBUG if verbose else logging.WARNING)
