"""story_keys name the story by two 64-bit integers; WITHOUT ROWID on SQLite (issue 5)

The story id (an entry uid, 32 hex digits) becomes ``story_hi``/``story_lo``, its two signed
64-bit halves: a key row shrinks from about 50 bytes plus SQLite's rowid B-tree to 28 bytes
in the primary key's B-tree alone, which makes the 20 rows each clustered entry adds about
half as dear to insert and the table about a third of its size. Rows are copied over in
primary-key order, a batch at a time; the old table is dropped at the end.

Revision ID: 0008
Revises: 0007
"""

import re
from collections.abc import Iterator, Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_BATCH = 10_000
_UID = re.compile(r"[0-9a-f]{32}")
_MASK = (1 << 64) - 1


def upgrade() -> None:
    _rename_old()
    new = _create_compact()
    old = sa.table(
        "story_keys_0007",
        sa.column("bucket", sa.Integer),
        sa.column("key", sa.BigInteger),
        sa.column("story_id", sa.String),
    )
    for rows in _pages((old.c.bucket, old.c.key, old.c.story_id)):
        converted = [
            {"bucket": b, "key": k, "story_hi": hi, "story_lo": lo}
            for b, k, story_id in rows
            if _UID.fullmatch(story_id)  # story ids are entry uids; nothing else was stored
            for hi, lo in (_halves(story_id),)
        ]
        if converted:
            op.bulk_insert(new, converted)
    op.drop_table("story_keys_0007")
    op.create_index("ix_story_keys_story", "story_keys", ["bucket", "story_hi", "story_lo"])


def downgrade() -> None:
    _rename_old()
    new = op.create_table(
        "story_keys",
        sa.Column("bucket", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("key", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("story_id", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("bucket", "key", "story_id", name=op.f("pk_story_keys")),
    )
    old = sa.table(
        "story_keys_0007",
        sa.column("bucket", sa.Integer),
        sa.column("key", sa.BigInteger),
        sa.column("story_hi", sa.BigInteger),
        sa.column("story_lo", sa.BigInteger),
    )
    for rows in _pages((old.c.bucket, old.c.key, old.c.story_hi, old.c.story_lo)):
        op.bulk_insert(
            new,
            [
                {"bucket": b, "key": k, "story_id": f"{hi & _MASK:016x}{lo & _MASK:016x}"}
                for b, k, hi, lo in rows
            ],
        )
    op.drop_table("story_keys_0007")
    op.create_index("ix_story_keys_story", "story_keys", ["bucket", "story_id"])


def _rename_old() -> None:
    """Move the current table aside (its primary key's name too: PostgreSQL's index names
    are per schema)."""
    op.drop_index("ix_story_keys_story", table_name="story_keys")
    op.rename_table("story_keys", "story_keys_0007")
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE story_keys_0007 RENAME CONSTRAINT pk_story_keys TO pk_sk_0007")


def _create_compact() -> sa.Table:
    return op.create_table(
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


def _pages(order: Sequence[sa.ColumnClause[Any]]) -> Iterator[list[tuple[Any, ...]]]:
    """The columns' rows in that (primary-key) order, ``_BATCH`` at a time (keyset paging)."""
    after: tuple[Any, ...] | None = None
    while True:
        page = sa.select(*order).order_by(*order).limit(_BATCH)
        if after is not None:
            page = page.where(sa.tuple_(*order) > after)
        rows = [tuple(row) for row in op.get_bind().execute(page)]
        if not rows:
            return
        yield rows
        after = rows[-1]


def _halves(story_id: str) -> tuple[int, int]:
    value = int(story_id, 16)
    return _signed(value >> 64), _signed(value & _MASK)


def _signed(value: int) -> int:
    return value - (1 << 64) if value >> 63 else value
