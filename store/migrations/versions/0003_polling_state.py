"""polling state: effective URL, permanent redirects, gone, body hash, interval estimate

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26 06:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("sources", schema=None) as batch_op:
        batch_op.add_column(sa.Column("effective_url", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("redirect_target", sa.Text(), nullable=True))
        batch_op.add_column(
            sa.Column("redirect_count", sa.Integer(), server_default="0", nullable=False)
        )
        batch_op.add_column(
            sa.Column("gone", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
        batch_op.add_column(sa.Column("body_hash", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("estimated_interval_seconds", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("feed_hint_seconds", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("sources", schema=None) as batch_op:
        batch_op.drop_column("feed_hint_seconds")
        batch_op.drop_column("estimated_interval_seconds")
        batch_op.drop_column("body_hash")
        batch_op.drop_column("gone")
        batch_op.drop_column("redirect_count")
        batch_op.drop_column("redirect_target")
        batch_op.drop_column("effective_url")
