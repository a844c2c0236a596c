"""Schema migrations with Alembic, run on feedmill's own async engine.

``feedmill run`` (and every command that opens the store) and ``feedmill db upgrade`` call
:func:`ensure_schema`, which creates an empty database, upgrades one at an older known
revision, and refuses one at a revision this version does not know (a newer feedmill wrote
it) or one that has tables but is not feedmill's.

A database already at :data:`HEAD` (every start but the first after an upgrade) is told by
one query, without importing Alembic; Alembic loads only to read or change an older schema.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from sqlalchemy import Connection, inspect, text
from sqlalchemy.exc import SQLAlchemyError

from store.errors import SchemaError, StoreError

if TYPE_CHECKING:
    from alembic.config import Config

    from store.store import Store

MIGRATIONS = Path(__file__).parent / "migrations"
# The newest revision in migrations/versions (a test keeps it equal to Alembic's head).
HEAD = "0013"
T = TypeVar("T")


def alembic_config(connection: Connection | None = None) -> Config:
    from alembic.config import Config

    # Alembic's default stdout is sys.stdout when Alembic was imported: now it loads on
    # first use, which may be while sys.stdout is another stream (a test's capture).
    config = Config(stdout=sys.stdout)
    config.set_main_option("script_location", str(MIGRATIONS))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None
    return head


def known_revisions() -> set[str]:
    from alembic.script import ScriptDirectory

    return {rev.revision for rev in ScriptDirectory.from_config(alembic_config()).walk_revisions()}


async def current_revision(store: Store) -> str | None:
    """The database's revision (None when empty). The first contact with the database, so
    a database that cannot be opened is reported here."""
    return await _first_contact(store, _current_revision)


async def _first_contact(store: Store, read: Callable[[Connection], T]) -> T:
    try:
        async with store.engine.connect() as conn:
            return await conn.run_sync(read)
    except (SQLAlchemyError, OSError) as exc:
        reason = getattr(exc, "orig", None) or exc
        raise StoreError(f"cannot open the database: {reason}") from exc


def _current_revision(connection: Connection) -> str | None:
    from alembic.runtime.migration import MigrationContext

    return MigrationContext.configure(connection).get_current_revision()


def _at_head(connection: Connection) -> bool:
    """Whether the database is at HEAD (the one row of alembic_version says so)."""
    if not inspect(connection).has_table("alembic_version"):
        return False
    rows = connection.execute(text("SELECT version_num FROM alembic_version")).all()
    return [tuple(row) for row in rows] == [(HEAD,)]


async def upgrade(store: Store, revision: str = "head") -> None:
    async with store.engine.begin() as conn:
        await conn.run_sync(_upgrade, revision)


def _upgrade(connection: Connection, revision: str) -> None:
    from alembic import command

    command.upgrade(alembic_config(connection), revision)


async def check(store: Store) -> None:
    """Raise if the models and the migrations disagree (alembic check)."""
    from alembic import command

    async with store.engine.connect() as conn:
        await conn.run_sync(lambda c: command.check(alembic_config(c)))


async def ensure_schema(store: Store) -> str:
    """Bring the database to the head revision if that is safe; return what was done."""
    if await _first_contact(store, _at_head):
        return f"database at revision {HEAD}"
    current = await current_revision(store)
    head = head_revision()
    if current == head:
        return f"database at revision {head}"
    if current is None:
        async with store.engine.connect() as conn:
            tables = await conn.run_sync(lambda c: inspect(c).get_table_names())
        if tables:
            raise SchemaError(
                "the database has tables but no feedmill revision: "
                "point `database:` at an empty or a feedmill database"
            )
    elif current not in known_revisions():
        raise SchemaError(
            f"the database is at revision {current}, which this feedmill does not know "
            f"(its newest is {head}): a newer feedmill wrote it; upgrade feedmill"
        )
    await upgrade(store)
    return f"database migrated from {current or 'empty'} to {head}"
