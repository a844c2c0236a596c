"""canonical links, leases, pull counts, retention, tombstones

Revision ID: 0002
Revises: 0001
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import store.types

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("sources", schema=None) as batch_op:
        batch_op.add_column(sa.Column("lease_owner", sa.String(length=200), nullable=True))
        batch_op.add_column(
            sa.Column("lease_expires_at", store.types.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(sa.Column("last_new", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("last_updated", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("last_unchanged", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("retain_max_age_seconds", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("retain_max_entries", sa.Integer(), nullable=True))

    with op.batch_alter_table("entries", schema=None) as batch_op:
        batch_op.add_column(sa.Column("canonical_link", sa.Text(), nullable=True))
        batch_op.create_index("ix_entries_canonical_link", ["canonical_link"], unique=False)

    op.create_table(
        "tombstones",
        sa.Column("source_id", sa.String(length=100), nullable=False),
        sa.Column("entry_key", sa.Text(), nullable=False),
        sa.Column("pruned_at", store.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["source_id"],
            ["sources.id"],
            name=op.f("fk_tombstones_source_id_sources"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("source_id", "entry_key", name=op.f("pk_tombstones")),
    )


def downgrade() -> None:
    op.drop_table("tombstones")
    with op.batch_alter_table("entries", schema=None) as batch_op:
        batch_op.drop_index("ix_entries_canonical_link")
        batch_op.drop_column("canonical_link")
    with op.batch_alter_table("sources", schema=None) as batch_op:
        for column in (
            "retain_max_entries",
            "retain_max_age_seconds",
            "last_unchanged",
            "last_updated",
            "last_new",
            "lease_expires_at",
            "lease_owner",
        ):
            batch_op.drop_column(column)
