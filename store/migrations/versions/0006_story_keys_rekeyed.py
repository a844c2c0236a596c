"""story keys by day (issue 5)

``story_keys`` became (day, key, story) and ``stories`` gained the first and last day it had
keys for. This revision once also rebuilt the key rows from the members' MinHash signatures;
revision 0010 drops the table (the candidate index lives in memory, built from
``story_members``), so the rows are no longer written here: every upgrade path ends without
them.

Revision ID: 0006
Revises: 0005
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import store.types

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_UTC = store.types.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.drop_index("ix_story_keys_story", table_name="story_keys")
    op.drop_table("story_keys")
    op.create_table(
        "story_keys",
        sa.Column("bucket", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("key", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("story_id", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("bucket", "key", "story_id", name=op.f("pk_story_keys")),
    )
    op.create_index("ix_story_keys_story", "story_keys", ["bucket", "story_id"])
    with op.batch_alter_table("stories") as stories:
        stories.add_column(sa.Column("keyed_from", sa.Integer(), nullable=True))
        stories.add_column(sa.Column("keyed_until", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("stories") as stories:
        stories.drop_column("keyed_until")
        stories.drop_column("keyed_from")
    op.drop_index("ix_story_keys_story", table_name="story_keys")
    op.drop_table("story_keys")
    op.create_table(
        "story_keys",
        sa.Column("key", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("story_id", sa.String(length=64), nullable=False),
        sa.Column("last_published", _UTC, nullable=False),
        sa.PrimaryKeyConstraint("key", "story_id", name=op.f("pk_story_keys")),
    )
    op.create_index("ix_story_keys_story", "story_keys", ["story_id"])
