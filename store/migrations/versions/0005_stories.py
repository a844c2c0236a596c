"""story clustering: stories, members, LSH keys, term statistics (issue 5)

Revision ID: 0005
Revises: 0004
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import store.types

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_UTC = store.types.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "stories",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("representative_uid", sa.String(length=64), nullable=False),
        sa.Column("member_count", sa.Integer(), nullable=False),
        sa.Column("source_count", sa.Integer(), nullable=False),
        sa.Column("created_at", _UTC, nullable=False),
        sa.Column("updated_at", _UTC, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_stories")),
    )
    op.create_index("ix_stories_updated", "stories", ["updated_at"])
    op.create_table(
        "story_members",
        sa.Column("entry_uid", sa.String(length=64), nullable=False),
        sa.Column("story_id", sa.String(length=64), nullable=False),
        sa.Column("source_id", sa.String(length=100), nullable=False),
        sa.Column("published", _UTC, nullable=False),
        sa.Column("signature", sa.LargeBinary(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=True),
        sa.Column("scores", sa.JSON(), nullable=False),
        sa.Column("joined_at", _UTC, nullable=False),
        sa.PrimaryKeyConstraint("entry_uid", name=op.f("pk_story_members")),
    )
    op.create_index("ix_story_members_story", "story_members", ["story_id", "published"])
    op.create_table(
        "story_keys",
        sa.Column("key", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("story_id", sa.String(length=64), nullable=False),
        sa.Column("last_published", _UTC, nullable=False),
        sa.PrimaryKeyConstraint("key", "story_id", name=op.f("pk_story_keys")),
    )
    op.create_index("ix_story_keys_story", "story_keys", ["story_id"])
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


def downgrade() -> None:
    op.drop_table("term_frequencies")
    op.drop_table("story_terms")
    op.drop_index("ix_story_keys_story", table_name="story_keys")
    op.drop_table("story_keys")
    op.drop_index("ix_story_members_story", table_name="story_members")
    op.drop_table("story_members")
    op.drop_index("ix_stories_updated", table_name="stories")
    op.drop_table("stories")
