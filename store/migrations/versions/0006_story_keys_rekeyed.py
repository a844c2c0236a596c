"""story keys: 20 bands of 3 rows (was 32 of 4), last publication in Unix seconds (issue 5)

The band index is rebuilt from the members' stored MinHash signatures, and event mode's term
keys from the stories' terms, so stories clustered before the upgrade are still found.

Revision ID: 0006
Revises: 0005
"""

from collections import defaultdict
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from alembic import op

import store.types
from store.stories.sketch import band_keys, term_keys

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_UTC = store.types.UTCDateTime(timezone=True)
# The band shapes before and after; the keys are a pure function of signature and shape.
_OLD_SHAPE = (32, 4)
_NEW_SHAPE = (20, 3)
_BATCH = 1000


def upgrade() -> None:
    keys = _keys(_NEW_SHAPE)
    op.drop_index("ix_story_keys_story", table_name="story_keys")
    op.drop_table("story_keys")
    table = op.create_table(
        "story_keys",
        sa.Column("key", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("story_id", sa.String(length=64), nullable=False),
        sa.Column("last_published_s", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("key", "story_id", name=op.f("pk_story_keys")),
    )
    op.create_index("ix_story_keys_story", "story_keys", ["story_id"])
    rows = [
        {"key": key, "story_id": story_id, "last_published_s": int(latest.timestamp())}
        for (key, story_id), latest in keys.items()
    ]
    for batch in _batches(rows):
        op.bulk_insert(table, batch)


def downgrade() -> None:
    keys = _keys(_OLD_SHAPE)
    op.drop_index("ix_story_keys_story", table_name="story_keys")
    op.drop_table("story_keys")
    table = op.create_table(
        "story_keys",
        sa.Column("key", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("story_id", sa.String(length=64), nullable=False),
        sa.Column("last_published", _UTC, nullable=False),
        sa.PrimaryKeyConstraint("key", "story_id", name=op.f("pk_story_keys")),
    )
    op.create_index("ix_story_keys_story", "story_keys", ["story_id"])
    rows = [
        {"key": key, "story_id": story_id, "last_published": latest}
        for (key, story_id), latest in keys.items()
    ]
    for batch in _batches(rows):
        op.bulk_insert(table, batch)


def _keys(shape: tuple[int, int]) -> dict[tuple[int, str], datetime]:
    """(key, story id) -> latest publication: band keys of every member's signature, and the
    term keys of every story's terms (event mode) at the story's latest publication."""
    bind = op.get_bind()
    members = sa.table(
        "story_members",
        sa.column("story_id", sa.String),
        sa.column("published", _UTC),
        sa.column("signature", sa.LargeBinary),
    )
    terms = sa.table("story_terms", sa.column("story_id", sa.String), sa.column("term", sa.String))
    bands, rows = shape
    found: dict[tuple[int, str], datetime] = {}
    latest: dict[str, datetime] = {}
    query = sa.select(members.c.story_id, members.c.published, members.c.signature)
    for story_id, published, signature in bind.execute(query):
        published = _aware(published)
        latest[story_id] = max(latest.get(story_id, published), published)
        if len(signature) < bands * rows * 4:
            continue
        for key in band_keys(bytes(signature), bands, rows):
            found[key, story_id] = max(found.get((key, story_id), published), published)
    by_story: dict[str, list[str]] = defaultdict(list)
    for story_id, term in bind.execute(sa.select(terms.c.story_id, terms.c.term)):
        by_story[story_id].append(term)
    for story_id, words in by_story.items():
        if story_id in latest:
            for key in term_keys(words):
                found[key, story_id] = latest[story_id]
    return found


def _aware(value: Any) -> datetime:
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    assert isinstance(moment, datetime)
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _batches(rows: list[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
    for start in range(0, len(rows), _BATCH):
        yield rows[start : start + _BATCH]
