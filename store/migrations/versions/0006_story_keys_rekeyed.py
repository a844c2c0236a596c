"""story keys by day, 20 bands of 3 rows (was 32 of 4, one row per story) (issue 5)

``story_keys`` becomes (day, key, story): the rows of a day's new entries go into one small
recent part of the index. Its band keys are rebuilt from the members' stored MinHash
signatures (each under its member's day) and event mode's term keys from the stories' terms
(under the story's last day), so stories clustered before the upgrade are still found.
``stories`` gains the first and last day it has keys for.

Revision ID: 0006
Revises: 0005
"""

import math
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
# The band shapes before and after; keys are a pure function of signature and shape.
_OLD_SHAPE = (32, 4)
_NEW_SHAPE = (20, 3)
_DAY = 86_400
_BATCH = 1000


def upgrade() -> None:
    members = _members()
    op.drop_index("ix_story_keys_story", table_name="story_keys")
    op.drop_table("story_keys")
    table = op.create_table(
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
    rows: set[tuple[int, int, str]] = set()
    days: dict[str, list[int]] = defaultdict(list)
    for story_id, published, signature in members:
        day = math.floor(published.timestamp()) // _DAY
        days[story_id].append(day)
        rows.update((day, key, story_id) for key in _band_keys(signature, _NEW_SHAPE))
    for story_id, words in _terms().items():
        if story_id in days:
            rows.update((max(days[story_id]), key, story_id) for key in term_keys(words))
    keyed = [{"bucket": b, "key": k, "story_id": s} for b, k, s in sorted(rows)]
    for batch in _batches(keyed):
        op.bulk_insert(table, batch)
    ranges = sa.text("UPDATE stories SET keyed_from = :lo, keyed_until = :hi WHERE id = :id")
    spans = [{"id": s, "lo": min(d), "hi": max(d)} for s, d in sorted(days.items())]
    for batch in _batches(spans):
        op.get_bind().execute(ranges, batch)


def downgrade() -> None:
    members = _members()
    with op.batch_alter_table("stories") as stories:
        stories.drop_column("keyed_until")
        stories.drop_column("keyed_from")
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
    latest: dict[tuple[int, str], datetime] = {}
    last: dict[str, datetime] = {}
    for story_id, published, signature in members:
        last[story_id] = max(last.get(story_id, published), published)
        for key in _band_keys(signature, _OLD_SHAPE):
            latest[key, story_id] = max(latest.get((key, story_id), published), published)
    for story_id, words in _terms().items():
        if story_id in last:
            for key in term_keys(words):
                latest[key, story_id] = last[story_id]
    rows = [{"key": k, "story_id": s, "last_published": t} for (k, s), t in latest.items()]
    for batch in _batches(rows):
        op.bulk_insert(table, batch)


def _members() -> list[tuple[str, datetime, bytes]]:
    """(story id, published, signature) of every member."""
    members = sa.table(
        "story_members",
        sa.column("story_id", sa.String),
        sa.column("published", _UTC),
        sa.column("signature", sa.LargeBinary),
    )
    query = sa.select(members.c.story_id, members.c.published, members.c.signature)
    return [(s, _aware(p), bytes(sig)) for s, p, sig in op.get_bind().execute(query)]


def _terms() -> dict[str, list[str]]:
    terms = sa.table("story_terms", sa.column("story_id", sa.String), sa.column("term", sa.String))
    found: dict[str, list[str]] = defaultdict(list)
    for story_id, term in op.get_bind().execute(sa.select(terms.c.story_id, terms.c.term)):
        found[story_id].append(term)
    return found


def _band_keys(signature: bytes, shape: tuple[int, int]) -> tuple[int, ...]:
    bands, rows = shape
    return band_keys(signature, bands, rows) if len(signature) >= bands * rows * 4 else ()


def _aware(value: Any) -> datetime:
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    assert isinstance(moment, datetime)
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _batches(rows: list[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
    for start in range(0, len(rows), _BATCH):
        yield rows[start : start + _BATCH]
