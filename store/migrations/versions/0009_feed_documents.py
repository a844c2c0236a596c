"""feed_documents: when each served document last changed (Last-Modified, Atom updated)

Revision ID: 0009
Revises: 0008
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from store.types import UTCDateTime

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "feed_documents",
        sa.Column("feed_id", sa.String(length=100), nullable=False),
        sa.Column("format", sa.String(length=8), nullable=False),
        sa.Column("page", sa.String(length=64), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("changed_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("feed_id", "format", "page", name=op.f("pk_feed_documents")),
    )
    op.create_index(op.f("ix_feed_documents_page"), "feed_documents", ["page"])


def downgrade() -> None:
    op.drop_index(op.f("ix_feed_documents_page"), table_name="feed_documents")
    op.drop_table("feed_documents")
