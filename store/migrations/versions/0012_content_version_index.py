"""sources.content_version indexed: readers ask for the sources changed since a version

Revision ID: 0012
Revises: 0011
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(op.f("ix_sources_content_version"), "sources", ["content_version"])


def downgrade() -> None:
    op.drop_index(op.f("ix_sources_content_version"), table_name="sources")
