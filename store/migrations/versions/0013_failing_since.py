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
    # Sources failing now get no date: when their failures began was not recorded.
    with op.batch_alter_table("sources") as sources:
        sources.add_column(sa.Column("failing_since", UTCDateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("sources") as sources:
        sources.drop_column("failing_since")
