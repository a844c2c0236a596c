"""The full-text index of entries (store.search.index), built for the entries already stored

SQLite: an FTS5 table; PostgreSQL: a table with a ``tsvector`` and a GIN index. Existing
entries are indexed in row-id order, a batch at a time, with a log line per batch.

Revision ID: 0011
Revises: 0010
"""

import logging
import time
from collections.abc import Sequence

from alembic import op

from store.search.index import create_index, drop_index

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

log = logging.getLogger("feedmill.migrations")


def upgrade() -> None:
    started = time.monotonic()

    def progress(done: int, total: int) -> None:
        log.info(
            "search index: %d of %d entries indexed (%.0f s)",
            done,
            total,
            time.monotonic() - started,
        )

    count = create_index(op.get_bind(), progress=progress)
    log.info("search index: built for %d entries", count)


def downgrade() -> None:
    drop_index(op.get_bind())
