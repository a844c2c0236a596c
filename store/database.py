"""Opening the database: URL handling, engine options, transactions.

A Store has two engines on one database: the async one (aiosqlite, or psycopg's async
connection) for everything, and a sync one (:func:`create_thread_engine`: pysqlite, or
psycopg) on which an ingest runs its whole transaction in one call in a writer thread, so
the event loop stays free while it stores and clusters (on SQLite also instead of several
hops through aiosqlite's thread per statement). The SQLite engines are tuned alike
(:func:`_tune_sqlite`).
"""

from __future__ import annotations

import importlib
import os.path
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy import Connection, Engine, event
from sqlalchemy import create_engine as create_sync_engine
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

from store.errors import DatabaseUnavailable, StoreError

if TYPE_CHECKING:  # the ORM that sqlalchemy.ext.asyncio brings loads when an engine is made
    from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

T = TypeVar("T")
_ASYNC_DRIVERS = {"sqlite": "sqlite+aiosqlite", "postgresql": "postgresql+psycopg"}
# The module each database needs beyond feedmill's own dependencies, and the extra with it.
_OPTIONAL_DRIVERS = {"postgresql": ("psycopg", "postgres")}


def async_url(url: str) -> URL:
    """The async driver's URL for a user's ``sqlite:///...`` or ``postgresql://...`` URL."""
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise StoreError(f"not a database URL: {url!r}") from exc
    backend = parsed.get_backend_name()
    if backend not in _ASYNC_DRIVERS:
        raise StoreError(f"unsupported database {backend!r}: use sqlite or postgresql")
    return parsed.set(drivername=_ASYNC_DRIVERS[backend])


def missing_driver(url: str) -> str | None:
    """What to install for ``url``'s database, or None when its driver is there."""
    backend = async_url(url).get_backend_name()
    module, extra = _OPTIONAL_DRIVERS.get(backend, (None, None))
    if module is None:
        return None
    try:
        importlib.import_module(module)
    except ImportError:
        pass
    else:
        return None
    return (
        f"the {backend} database driver ({module}) is not installed: "
        f"pip install 'feedmill[{extra}]'"
    )


def database_problem(exc: BaseException, url: str) -> StoreError | None:
    """One line a person can act on for an error the database driver raised (cannot
    connect, a locked SQLite file, a missing driver), or None for any other exception."""
    target = async_url(url)
    missing = missing_driver(url)
    if isinstance(exc, ImportError) and missing:
        return StoreError(missing)
    if not isinstance(exc, DBAPIError):
        return None
    reason = _first_line(exc.orig) if exc.orig is not None else _first_line(exc)
    if target.get_backend_name() == "sqlite":
        if "locked" in reason or "busy" in reason:
            return StoreError(
                f"the SQLite database {target.database} is locked: another process (a "
                "feedmill run or fetch?) holds it longer than the 10 s busy timeout"
            )
        return StoreError(f"the SQLite database {target.database} cannot be used: {reason}")
    where = f"{target.host or 'localhost'}:{target.port or 5432}"
    if exc.connection_invalidated or "connect" in reason.lower():
        why = reason.rsplit("failed: ", 1)[-1]  # psycopg: "connection ... failed: <why>"
        return StoreError(f"cannot connect to the database at {where}: {why}")
    return StoreError(f"the database at {where} refused a statement: {reason}")


def _first_line(error: object) -> str:
    text = str(error).strip()
    return text.splitlines()[0].strip() if text else type(error).__name__


def create_engine(url: str, **options: Any) -> AsyncEngine:
    target = async_url(url)
    missing = missing_driver(url)
    if missing:
        raise StoreError(missing)
    if target.get_backend_name() == "sqlite" and target.database not in (None, "", ":memory:"):
        folder = os.path.dirname(os.path.abspath(target.database))
        if not os.path.isdir(folder):  # fail here, not inside aiosqlite's worker thread
            raise StoreError(f"cannot open the database: folder {folder} does not exist")
    from sqlalchemy.ext.asyncio import create_async_engine

    engine = create_async_engine(target, **options)
    if target.get_backend_name() == "sqlite":
        _tune_sqlite(engine.sync_engine)
    return engine


# Write transactions at once on PostgreSQL, each in a thread of its own (SQLite: one).
WRITER_THREADS = 4


def create_thread_engine(engine: AsyncEngine) -> Engine | None:
    """A sync engine on the same database, for write transactions run in one go in worker
    threads (the event loop stays free while they run): pysqlite on a SQLite file, psycopg
    (sync) on PostgreSQL; None for SQLite ``:memory:`` (one connection: the async one)."""
    url = engine.url
    if url.get_backend_name() == "postgresql":
        # pre_ping: after the server restarted, an ingest gets a live connection instead of
        # failing on a pooled one the server has closed (one round trip per transaction)
        return create_sync_engine(url, pool_size=WRITER_THREADS, max_overflow=0, pool_pre_ping=True)
    if url.database in (None, "", ":memory:"):
        return None
    thread_engine = create_sync_engine(url.set(drivername="sqlite+pysqlite"))
    _tune_sqlite(thread_engine)
    return thread_engine


def _tune_sqlite(engine: Engine) -> None:
    """WAL, real transactions (pysqlite's implicit ones are off) and BEGIN IMMEDIATE for writes."""

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        for pragma in (
            "journal_mode=WAL",
            "synchronous=NORMAL",
            "foreign_keys=ON",
            "busy_timeout=10000",
        ):
            cursor.execute(f"PRAGMA {pragma}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        mode = conn.get_execution_options().get("sqlite_begin", "DEFERRED")
        conn.exec_driver_sql(f"BEGIN {mode}")


@asynccontextmanager
async def writing(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """One write transaction: committed when the block ends, rolled back if it raises.

    On SQLite it takes the write lock at BEGIN, so two writers queue instead of deadlocking.
    """
    async with engine.connect() as conn:
        conn = await conn.execution_options(sqlite_begin="IMMEDIATE")
        async with conn.begin():
            yield conn


def write_with(engine: Engine, work: Callable[[Connection], T]) -> T:
    """``work(conn)`` in one write transaction on a sync engine, as :func:`writing` does it
    (BEGIN IMMEDIATE on SQLite). Blocking: call it in a worker thread."""
    with engine.connect() as conn:
        conn.execution_options(sqlite_begin="IMMEDIATE")
        with conn.begin():
            return work(conn)


@asynccontextmanager
async def reading(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """One read transaction: a consistent snapshot of the database. A database that does
    not answer is a DatabaseUnavailable."""
    try:
        async with engine.connect() as conn, conn.begin():
            yield conn
    except DatabaseUnavailable:
        raise
    except Exception as exc:
        reason = unavailable_reason(exc)
        if reason is None:
            raise
        raise DatabaseUnavailable(f"the database did not answer: {reason}") from exc


def unavailable_reason(exc: BaseException) -> str | None:
    """Why the database could not be reached, when ``exc`` says so (one line); else None.

    A connection that fails or is lost, or a pool with no connection to give, is
    unavailability; an error in a statement on a working connection is not."""
    if isinstance(exc, DatabaseUnavailable):
        return str(exc)
    lost = isinstance(exc, DBAPIError) and exc.connection_invalidated
    if not (lost or isinstance(exc, OperationalError | InterfaceError | PoolTimeoutError)):
        return None
    cause = getattr(exc, "orig", None) or exc
    lines = [line.strip() for line in str(cause).splitlines() if line.strip()]
    return (lines[0] if lines else type(cause).__name__)[:200]


def resolve_database_url(url: str, base_dir: str) -> str:
    """Validate a user's database URL; a relative SQLite path is taken from ``base_dir``."""
    parsed = async_url(url)
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database or ""
        if database and database != ":memory:" and not database.startswith("/"):
            parsed = make_url(url).set(database=os.path.join(base_dir, database))
            return parsed.render_as_string(hide_password=False)
    return url
