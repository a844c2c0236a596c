"""stories.merged_into, story_members.embedding (issue 5, event mode)

A story merged into another keeps its row as a pointer; a member keeps its sentence vector
when an embedder is configured (``stories.embedder``), so later entries compare with it.

Event mode merges the stories an entry bridges. The merged-away story's row stays, empty,
naming the story it went into, so a worker that joined it meanwhile (its transaction began
before the merge committed) finds where its member belongs.

Revision ID: 0007
Revises: 0006
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("stories") as stories:
        stories.add_column(sa.Column("merged_into", sa.String(length=64), nullable=True))
    with op.batch_alter_table("story_members") as members:
        members.add_column(sa.Column("embedding", sa.LargeBinary(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("story_members") as members:
        members.drop_column("embedding")
    op.execute("DELETE FROM stories WHERE merged_into IS NOT NULL")
    with op.batch_alter_table("stories") as stories:
        stories.drop_column("merged_into")
