"""the story index in memory: story_keys and the term tables go, members keep their terms

The candidate index is built in each pulling process from ``story_members``, which now
keeps each member's terms (``terms``, None for members clustered before: their entries
are read again when the index is built) and the story clock of the transaction that wrote
it (``seq``); ``story_clock`` holds the clock. ``story_keys``, ``story_terms``,
``term_frequencies``, the members' MinHash signatures and the stories' key spans and merge
pointers go. Every story id and member stays.

Revision ID: 0010
Revises: 0009
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.drop_index("ix_story_keys_story", table_name="story_keys")
    op.drop_table("story_keys")
    op.drop_table("story_terms")
    op.drop_table("term_frequencies")
    op.execute("DELETE FROM stories WHERE merged_into IS NOT NULL")  # empty pointer rows
    with op.batch_alter_table("stories") as stories:
        stories.drop_column("merged_into")
        stories.drop_column("keyed_until")
        stories.drop_column("keyed_from")
    with op.batch_alter_table("story_members") as members:
        members.drop_column("signature")
        members.add_column(sa.Column("terms", sa.LargeBinary(), nullable=True))
        members.add_column(sa.Column("seq", sa.BigInteger(), nullable=True))
    op.create_index("ix_story_members_published", "story_members", ["published"])
    op.create_index("ix_story_members_seq", "story_members", ["seq"])
    clock = op.create_table(
        "story_clock",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_story_clock")),
    )
    op.bulk_insert(clock, [{"id": 1, "seq": 0}])


def downgrade() -> None:
    empty = "x''" if op.get_bind().dialect.name == "sqlite" else "''::bytea"
    op.drop_table("story_clock")
    op.drop_index("ix_story_members_seq", table_name="story_members")
    op.drop_index("ix_story_members_published", table_name="story_members")
    with op.batch_alter_table("story_members") as members:
        members.drop_column("seq")
        members.drop_column("terms")
        members.add_column(
            sa.Column("signature", sa.LargeBinary(), nullable=False, server_default=sa.text(empty))
        )
    with op.batch_alter_table("stories") as stories:
        stories.add_column(sa.Column("keyed_from", sa.Integer(), nullable=True))
        stories.add_column(sa.Column("keyed_until", sa.Integer(), nullable=True))
        stories.add_column(sa.Column("merged_into", sa.String(length=64), nullable=True))
    op.create_table(
        "story_terms",
        sa.Column("story_id", sa.String(length=64), nullable=False),
        sa.Column("term", sa.String(length=200), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("story_id", "term", name=op.f("pk_story_terms")),
    )
    op.create_table(
        "term_frequencies",
        sa.Column("term", sa.String(length=200), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("term", name=op.f("pk_term_frequencies")),
    )
    op.create_table(
        "story_keys",
        sa.Column("bucket", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("key", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("story_hi", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("story_lo", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.PrimaryKeyConstraint(
            "bucket", "key", "story_hi", "story_lo", name=op.f("pk_story_keys")
        ),
        sqlite_with_rowid=False,
    )
    op.create_index("ix_story_keys_story", "story_keys", ["bucket", "story_hi", "story_lo"])
