"""The ``feedmill`` command line."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from rich.console import Console
from rich.logging import RichHandler
from rich.table import Table

from feedmill.clock import utc_now
from feedmill.config import Settings, config_path, load_config
from feedmill.errors import ConfigError
from feedmill.pull import Puller, PullResult
from feedmill.service import Service, install_signal_handlers, open_store
from feeds import Publisher, export_static
from sources import FeedmillError, make_client
from store import Store, upgrade
from store.migrate import current_revision, head_revision

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
        description="Render every curated feed from the store into DIR (feeds/ID.atom and "
        "index.html), the same bytes the server sends.",
    )
    build.add_argument("--out", metavar="DIR", required=True, type=Path, help="output folder")

    db = commands.add_parser("db", help="database schema: upgrade, current revision")
    db_commands = db.add_subparsers(dest="db_command", required=True, metavar="ACTION")
    db_commands.add_parser("upgrade", help="migrate the database to this version's schema")
    db_commands.add_parser("current", help="print the database's schema revision")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    _setup_logging(args.verbose)
    err = Console(stderr=True, highlight=False)
    try:
        settings = load_config(config_path(args.config))
        return asyncio.run(_dispatch(args, settings))
    except ConfigError as exc:
        for problem in exc.problems:
            err.print(f"feedmill: {problem}", markup=False)
        return EXIT_CONFIG
    except (FeedmillError, RuntimeError) as exc:
        err.print(f"feedmill: {exc}", markup=False)
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


async def _build(settings: Settings, out: Path) -> int:
    store = await open_store(settings, utc_now)
    try:
        publisher = Publisher(store, settings.feed_definitions(), settings.site())
        written = await export_static(publisher, out)
    finally:
        await store.close()
    for path in written:
        print(path)
    return 0


async def _db(settings: Settings, action: str) -> int:
    store = Store.open(settings.database)
    try:
        if action == "upgrade":
            await upgrade(store)
            print(f"database at revision {head_revision()}")
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
