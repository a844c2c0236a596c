"""Alembic environment: runs on the connection store.migrate hands it (sync, inside run_sync)."""

from alembic import context

from store.search.index import is_index_table
from store.tables import Base

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations with `feedmill db upgrade`, not the alembic command")

context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=True,  # SQLite cannot ALTER most things; batch mode copies the table
    compare_type=True,
    # The full-text index's tables (store.search.index) are not in store.tables.
    include_name=lambda name, kind, _parents: not (kind == "table" and is_index_table(name or "")),
)
with context.begin_transaction():
    context.run_migrations()
