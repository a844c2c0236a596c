"""sources.failing_since: when the current run of failures began (the status page's "since")

Revision ID: 0013
Revises: 0012
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from store.types import UTCDateTime

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Sources failing now get no date: when their failures began was not recorded. A plain
    # ADD COLUMN: on SQLite a batch table copy would drop `sources`, and with it (ON DELETE
    # CASCADE) every entry.
    op.add_column("sources", sa.Column("failing_since", UTCDateTime(), nullable=True))


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":  # SQLite 3.35+: no table copy (see above)
        op.execute("ALTER TABLE sources DROP COLUMN failing_since")
    else:
        op.drop_column("sources", "failing_since")
