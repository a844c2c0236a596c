"""The commands behind ``feedmill COMMAND`` (feedmill.cli parses the arguments).

Each prints a table for people or, with ``--json``, one JSON document for scripts.
Errors end as one line on stderr (a traceback only with ``-v``) and an exit status:
:func:`run_command` is the one place that turns them into both.

Each command imports what only it needs when it runs (the server and the scheduler for
`run`, the HTTP client for `fetch`, the renderers for `build`, rich for tables), so that
`check-config` and `sources` load the config and the store and little else.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import logging
import sys
import traceback
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import asdict, is_dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from feedmill.cli import EXIT_CONFIG, EXIT_FAILURE, EXIT_OK
from feedmill.clock import utc_now
from feedmill.config import Settings, config_path, load_config
from feedmill.errors import ConfigError, UnknownEntryError, UsageError
from feedmill.logs import setup_logging
from feedmill.terminal import cell, terminal_text
from sources.errors import FeedmillError

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    from feedmill.pull import PullResult
    from feeds.publish import Publisher
    from feeds.select import Verdict
    from store import Store, StoredEntry, StoredSource

SERVICES = ("run", "worker", "serve")
log = logging.getLogger("feedmill")


def run_command(args: argparse.Namespace) -> int:
    """Run the parsed command; every error becomes one line on stderr and an exit status."""
    quiet = args.command not in (*SERVICES, "db")  # one-shot commands log only with -v
    setup_logging(args.verbose, args.log_format, logging.WARNING if quiet else logging.INFO)
    settings: Settings | None = None
    try:
        if args.command == "check-config":
            return _check_config(config_path(args.config), args.json)
        settings = load_config(config_path(args.config))
        # The settings (an object or more a source) live as long as the command: out of the
        # cycle collector's sight, they are not walked again on each of its full passes.
        gc.freeze()
        if args.command in SERVICES:
            return run_loop(_dispatch(args, settings))
        return asyncio.run(_dispatch(args, settings))
    except ConfigError as exc:
        for problem in exc.problems:
            _error(problem)
        return EXIT_CONFIG
    except UsageError as exc:
        _error(str(exc))
        return EXIT_CONFIG
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        if args.verbose:
            traceback.print_exc()
        _error(_describe(exc, settings, args.verbose))
        return EXIT_FAILURE


def run_loop(main: Coroutine[Any, Any, int]) -> int:
    """Run a service's loop: uvloop's when installed (uvicorn[standard] brings it; it serves
    a request in a good part less CPU than asyncio's loop), else asyncio's."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(main)
    return uvloop.run(main)


def _describe(exc: Exception, settings: Settings | None, verbose: bool) -> str:
    """One line a person can act on."""
    if isinstance(exc, FeedmillError | RuntimeError):
        return str(exc)
    from store.database import database_problem

    problem = database_problem(exc, settings.database) if settings else None
    if problem is not None:
        return str(problem)
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    hint = "" if verbose else " (run with -v for the traceback)"
    return f"unexpected error: {type(exc).__name__}: {first}{hint}"


def _error(message: str) -> None:
    print(f"feedmill: {terminal_text(message, limit=None)}", file=sys.stderr)


async def _dispatch(args: argparse.Namespace, settings: Settings) -> int:
    command = args.command
    if command in SERVICES:
        return await _run(args, settings)
    if command == "prune":
        return await _prune(settings)
    if command == "fetch":
        return await _fetch(settings, args.source_ids, args.json)
    if command == "build":
        return await _build(settings, args.out)
    if command == "sources":
        return await _sources(settings, args)
    if command == "preview":
        return await _preview(settings, args.feed, args.why, args.candidates, args.json)
    if command == "explain":
        return await _explain(settings, args.entry, args.json)
    if command == "search":
        return await _search(settings, args.query, args.limit, args.json)
    if command == "import-opml":
        return _import_opml(settings, config_path(args.config), args.file)
    return await _db(settings, args.db_command)


async def _run(args: argparse.Namespace, settings: Settings) -> int:
    from feedmill.service import Service, install_signal_handlers

    service = Service(
        settings,
        pull=args.command != "serve",
        serve=args.command != "worker",
        config_file=config_path(args.config),
        metrics_address=getattr(args, "metrics", None),
    )
    install_signal_handlers(service)
    await service.run()
    await service.release_threads()
    if service.abandoned:
        service.exit_now()  # threads still blocked in the database or parsing: do not wait
    return EXIT_OK


async def _open_store(settings: Settings) -> Store:
    """The store, migrated and with the configured sources (imported here: `check-config`
    never opens it)."""
    from feedmill.opening import open_store

    return await open_store(settings, utc_now)


def _publisher(settings: Settings, store: Store) -> Publisher:
    from feedmill.opening import make_publisher

    return make_publisher(settings, store, utc_now)


async def _prune(settings: Settings) -> int:
    store = await _open_store(settings)
    try:
        removed = await store.prune_entries(utc_now())
    finally:
        await store.close()
    for source_id, count in sorted(removed.items()):
        print(f"{source_id}\t{count}")
    print(f"removed {sum(removed.values())} entries")
    return EXIT_OK


async def _fetch(settings: Settings, source_ids: Sequence[str], as_json: bool) -> int:
    from feedmill.pull import Puller
    from sources.fetch import make_client

    store = await _open_store(settings)
    try:
        sources = _chosen(await store.list_sources(), source_ids)
        fetch_settings = settings.fetch_settings()
        async with make_client(fetch_settings) as client, settings.parse_pool() as pool:
            puller = Puller(
                store,
                client,
                fetch_settings,
                utc_now,
                parse_pool=pool,
                concurrency=settings.fetch.concurrency,
                polling=settings.poll_settings(),
                hosts=settings.host_limits(),
                lease=settings.scheduler.lease,
            )
            with _Progress(len(sources), enabled=not as_json) as advance:
                puller.observe = advance
                results = await puller.pull_many(sources)
    finally:
        await store.close()
    results = sorted(results, key=lambda r: r.source_id)
    if as_json:
        _print_json([_result_json(r) for r in results])
    else:
        _print_results(results)
    return EXIT_FAILURE if any(r.error is not None for r in results) else EXIT_OK


def _chosen(sources: list[StoredSource], source_ids: Sequence[str]) -> list[StoredSource]:
    """The sources named, in the order given; all of them when none is named."""
    if not source_ids:
        return sources
    by_id = {s.id: s for s in sources}
    unknown = [i for i in source_ids if i not in by_id]
    if unknown:
        names = ", ".join(repr(i) for i in unknown)
        raise UsageError(f"no active source with id {names} (`feedmill sources` lists them)")
    return [by_id[i] for i in dict.fromkeys(source_ids)]


class _Progress:
    """A rich progress bar on stderr while sources are pulled, when stderr is a terminal;
    entering gives the callback to call with each result."""

    def __init__(self, total: int, *, enabled: bool) -> None:
        self.bar: Any = None
        if enabled and sys.stderr.isatty():
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

            self.bar = Progress(
                TextColumn("pulling"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[last]}", markup=False),
                console=Console(stderr=True),
                transient=True,
            )
            self.task = self.bar.add_task("pull", total=total, last="")

    def __enter__(self) -> Callable[[PullResult], None] | None:
        if self.bar is None:
            return None
        self.bar.start()
        return self._advance

    def _advance(self, result: PullResult) -> None:
        self.bar.update(self.task, advance=1, last=terminal_text(result.source_id))

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.stop()


def _result_json(result: PullResult) -> dict[str, Any]:
    counts = result.counts
    error = result.error
    return {
        "source": result.source_id,
        "result": result.status,
        "new": counts.new if counts else 0,
        "updated": counts.updated if counts else 0,
        "unchanged": counts.unchanged if counts else 0,
        "bytes": result.fetched_bytes,
        "seconds": round(result.seconds, 3),
        "error_kind": error.kind.value if error else None,
        "error": error.message if error else None,
        "moved_to": result.moved_to,
    }


def _print_results(results: Sequence[PullResult]) -> None:
    table = _table("source", "result", "new", "updated", "unchanged", "error")
    for result in results:
        counts = result.counts
        table.add_row(
            cell(result.source_id),
            result.status,
            *(str(n) if counts else "-" for n in _numbers(result)),
            cell(result.error or ""),
        )
    _console().print(table)
    failed = sum(r.error is not None for r in results)
    print(f"{len(results)} sources pulled, {failed} failed")


def _numbers(result: PullResult) -> tuple[int, int, int]:
    counts = result.counts
    return (counts.new, counts.updated, counts.unchanged) if counts else (0, 0, 0)


def _console() -> Console:
    from rich.console import Console

    return Console(highlight=False, width=200, markup=False)


def _table(*columns: str) -> Table:
    from rich.table import Table

    return Table(*columns, box=None)


def _print_json(value: Any) -> None:
    print(json.dumps(value, indent=2, default=_json_default, ensure_ascii=False))


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if is_dataclass(value) and not isinstance(value, type):
        return asdict(value)
    return str(value)


async def _sources(settings: Settings, args: argparse.Namespace) -> int:
    """One page of the active sources, failing first, with the count in each state (the
    paging is SQL, as on the status page: no listing of every source)."""
    from feeds.status import FAILING, STATES, StatusQuery, source_json, source_status, states_of

    if args.state and args.state not in (*STATES, FAILING):
        raise UsageError(f"--state: one of {', '.join([*STATES, FAILING])}, not {args.state!r}")
    query = StatusQuery(state=args.state, text=args.search.strip(), page=args.page)
    store = await _open_store(settings)
    try:
        summary = await store.source_summary(utc_now())
        size = None if args.all else args.per_page
        sources, matching = await store.source_page(
            states=states_of(query.state),
            text=query.text,
            offset=(query.page - 1) * size if size else 0,
            limit=size,
        )
        counts = await store.count_entries([s.id for s in sources])
    finally:
        await store.close()
    if args.json:
        _print_json([source_json(source_status(s, counts.get(s.id, 0), None)) for s in sources])
        return EXIT_OK
    table = _table("id", "state", "last success", "last error", "next poll", "entries")
    for source in sources:
        error = f"{source.error_kind}: {source.error_message}" if source.error_kind else ""
        table.add_row(
            cell(source.id),
            source.state,
            _when(source.last_success_at),
            cell(error),
            "-" if source.gone else _when(source.next_poll_at),
            str(counts.get(source.id, 0)),
        )
    _console().print(table)
    print(_page_footer(summary.states, matching, len(sources), query.page, size))
    return EXIT_OK


def _page_footer(
    states: dict[str, int], matching: int, shown: int, page: int, size: int | None
) -> str:
    """``sources 101-200 of 10000 (9990 ok, 10 backing off); --page 3 for more``."""
    in_states = ", ".join(f"{count} {state}" for state, count in states.items() if count)
    first = (page - 1) * size + 1 if size else 1
    where = f"{first}-{first + shown - 1} of {matching}" if shown else f"none of {matching}"
    more = size is not None and first - 1 + shown < matching
    hint = f"; --page {page + 1} for more, --all for every one" if more else ""
    return f"sources {where} ({in_states or 'none stored'}){hint}"


def _when(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M") if moment else "-"


async def _build(settings: Settings, out: Path) -> int:
    from feeds.export import export_static

    store = await _open_store(settings)
    try:
        publisher = _publisher(settings, store)
        written = await export_static(publisher, out)
    finally:
        await store.close()
    for path in written:
        print(path)
    return EXIT_OK


async def _preview(
    settings: Settings, feed_id: str, why: bool, candidates: int, as_json: bool
) -> int:
    store = await _open_store(settings)
    try:
        publisher = _publisher(settings, store)
        publisher.definition(feed_id)
        judged: list[tuple[StoredEntry, Verdict | None]]
        if why:
            judged = list(await publisher.explain(feed_id, candidates))
        else:
            judged = [(e, None) for e in await publisher.select(feed_id)]
    finally:
        await store.close()
    kept = sum(1 for _, v in judged if v is None or v.included)
    if as_json:
        entries = [_entry_json(e) | _verdict_json(v) for e, v in judged]
        _print_json({"feed": feed_id, "entries": entries, "count": kept})
        return EXIT_OK
    table = _table("", "date", "source", "title", *(["why"] if why else []))
    for entry, verdict in judged:
        mark = "" if verdict is None else ("in" if verdict.included else "out")
        row: list[str | Text] = [
            mark,
            entry.sort_at.strftime("%Y-%m-%d %H:%M"),
            cell(entry.source_id),
            cell(entry.title or "", limit=120),
        ]
        table.add_row(*row, *([cell(verdict.reason)] if verdict is not None else []))
    _console().print(table)
    print(f"{kept} entries in {feed_id}")
    return EXIT_OK


async def _search(settings: Settings, query: str, limit: int, as_json: bool) -> int:
    from feeds.search import SearchFeeds

    store = await _open_store(settings)
    try:
        publisher = _publisher(settings, store)
        search = SearchFeeds(publisher, settings.search_settings())
        page = await search.page(query, limit=max(1, min(limit, 1000)))
        titles = {i.id: i.title for i in (await publisher.source_infos()).values()}
    finally:
        await store.close()
    if as_json:
        found = [_entry_json(e) | {"source_title": titles.get(e.source_id)} for e in page.entries]
        _print_json({"query": query, "entries": found, "more": page.next_before is not None})
        return EXIT_OK
    table = _table("date", "source", "title", "link")
    for entry in page.entries:
        table.add_row(
            entry.sort_at.strftime("%Y-%m-%d %H:%M"),
            cell(titles.get(entry.source_id, entry.source_id)),
            cell(entry.title or "", limit=120),
            cell(entry.link or ""),
        )
    _console().print(table)
    more = " (more: raise --limit)" if page.next_before else ""
    print(f"{len(page.entries)} entries match{more}")
    return EXIT_OK


def _entry_json(entry: StoredEntry) -> dict[str, Any]:
    return {
        "uid": entry.uid,
        "source": entry.source_id,
        "date": entry.sort_at,
        "title": entry.title,
        "link": entry.link,
    }


def _verdict_json(verdict: Verdict | None) -> dict[str, Any]:
    if verdict is None:
        return {}
    return {"included": verdict.included, "reason": verdict.reason}


async def _explain(settings: Settings, target: str, as_json: bool) -> int:
    from feedmill.explain import explain_entry

    store = await _open_store(settings)
    try:
        publisher = _publisher(settings, store)
        if as_json:
            _print_json(await _explain_json(publisher, target))
            return EXIT_OK
        lines = await explain_entry(publisher, target)
    finally:
        await store.close()
    print("\n".join(terminal_text(line, limit=None) for line in lines))
    return EXIT_OK


async def _explain_json(publisher: Publisher, target: str) -> dict[str, Any]:
    """What `explain` prints, as data: the entry, its story with every member's scores, and
    each curated feed's verdict."""
    entry = await publisher.store.find_entry(target)
    if entry is None:
        raise UnknownEntryError(f"no stored entry has the uid or link {target!r}")
    feeds = []
    for feed_id in publisher.definitions:
        feeds.append({"feed": feed_id} | _verdict_json(await publisher.verdict(feed_id, entry)))
    story = await publisher.store.story_of(entry.uid)
    return {"entry": _entry_json(entry), "story": story, "feeds": feeds}


def _check_config(path: Path, as_json: bool) -> int:
    """Every problem of the file in one pass (keys, values, references, the database driver)."""
    try:
        settings = load_config(path, check_driver=True)
    except ConfigError as exc:
        problems = exc.problems
        if as_json:
            _print_json({"config": str(path), "ok": False, "problems": problems})
        else:
            for problem in problems:
                _error(problem)
        return EXIT_CONFIG
    if as_json:
        report = {"ok": True, "problems": [], "sources": len(settings.sources)}
        _print_json({"config": str(path), **report, "feeds": len(settings.feeds)})
    else:
        print(f"{path}: ok: {len(settings.sources)} sources, {len(settings.feeds)} feeds")
    return EXIT_OK


def _import_opml(settings: Settings, path: Path, opml_file: Path) -> int:
    from feedmill.opml_import import (
        add_sources_to_text,
        plan_sources,
        refused_feeds,
        write_config_checked,
    )
    from feeds.opml import read_opml

    try:
        content = opml_file.read_bytes()
    except OSError as exc:
        raise FeedmillError(f"cannot read {opml_file}: {exc.strerror}") from exc
    feeds = read_opml(content)
    planned = plan_sources(settings, feeds)
    text = add_sources_to_text(path.read_text(encoding="utf-8"), planned)
    if planned:
        write_config_checked(path, text)
    for url, problem in refused_feeds(feeds):
        print(f"refused {terminal_text(repr(url))}: it {problem}")
    for source in planned:
        print(f"added {source.id}: {terminal_text(source.url)}")
    print(f"{len(planned)} sources added to {path}")
    return EXIT_OK


async def _db(settings: Settings, action: str) -> int:
    from store import Store, ensure_schema
    from store.migrate import current_revision

    store = Store.open(settings.database)
    try:
        if action == "upgrade":
            print(await ensure_schema(store))
        else:
            print(await current_revision(store) or "empty (no revision)")
    finally:
        await store.close()
    return EXIT_OK
