from __future__ import annotations

import pytest
from sqlalchemy import text

from store import SchemaError, Store, ensure_schema
from store.migrate import HEAD, check, current_revision, head_revision


async def test_an_empty_database_is_migrated_to_head(db_url: str) -> None:
    store = Store.open(db_url)
    try:
        assert await current_revision(store) is None
        message = await ensure_schema(store)
        assert "from empty" in message
        assert await current_revision(store) == head_revision()
        assert "at revision" in await ensure_schema(store)  # idempotent
    finally:
        await store.close()


def test_head_is_the_newest_migration() -> None:
    """ensure_schema tells a database at HEAD without Alembic: HEAD must be Alembic's head."""
    assert head_revision() == HEAD


async def test_models_and_migrations_agree(store: Store) -> None:
    await check(store)


async def test_a_database_at_an_unknown_revision_is_refused(store: Store) -> None:
    async with store.engine.begin() as conn:
        await conn.execute(text("UPDATE alembic_version SET version_num = 'f00d'"))
    with pytest.raises(SchemaError, match="f00d"):
        await ensure_schema(store)


async def test_a_database_of_something_else_is_refused(db_url: str) -> None:
    store = Store.open(db_url)
    try:
        async with store.engine.begin() as conn:
            await conn.execute(text("CREATE TABLE invoices (id INTEGER PRIMARY KEY)"))
        with pytest.raises(SchemaError, match="no feedmill revision"):
            await ensure_schema(store)
    finally:
        await store.close()
