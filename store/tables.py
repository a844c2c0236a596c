"""The SQLAlchemy tables. Only store/ sees them; Alembic migrations create them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from store.types import UTCDateTime

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# BIGINT on PostgreSQL, INTEGER (the rowid alias) on SQLite.
RowId = BigInteger().with_variant(Integer(), "sqlite")


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class SourceRow(Base):
    """One upstream source, keyed by its config slug, with its polling state."""

    __tablename__ = "sources"

    id: Mapped[str] = mapped_column(String(100), primary_key=True)
    url: Mapped[str] = mapped_column(Text)
    title: Mapped[str | None] = mapped_column(Text)
    interval_seconds: Mapped[int] = mapped_column(Integer)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    etag: Mapped[str | None] = mapped_column(Text)
    last_modified: Mapped[str | None] = mapped_column(Text)
    feed_title: Mapped[str | None] = mapped_column(Text)
    feed_link: Mapped[str | None] = mapped_column(Text)
    next_poll_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_polled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_success_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    error_kind: Mapped[str | None] = mapped_column(String(32))
    error_message: Mapped[str | None] = mapped_column(Text)
    error_count: Mapped[int] = mapped_column(Integer, default=0)
    # The first failure of the current run of failures (NULL while the source is ok).
    failing_since: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # Polling state: where the feed is really fetched from, a permanent redirect
    # seen on consecutive polls, 410 Gone, the last body's hash, the posting-rate estimate
    # and the feed's own polling hint (RSS <ttl>, sy:update*).
    effective_url: Mapped[str | None] = mapped_column(Text)
    redirect_target: Mapped[str | None] = mapped_column(Text)
    redirect_count: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    gone: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    body_hash: Mapped[str | None] = mapped_column(String(64))
    estimated_interval_seconds: Mapped[int | None] = mapped_column(Integer)
    feed_hint_seconds: Mapped[int | None] = mapped_column(Integer)

    # Set whenever what a curated feed shows of this source may have changed, from one
    # counter over all sources (store.versions): the publisher reads the sources changed
    # since the last version it saw instead of re-reading entries.
    content_version: Mapped[int] = mapped_column(Integer, default=0, server_default="0")

    # The lease of the worker pulling the source (both NULL when nobody is).
    lease_owner: Mapped[str | None] = mapped_column(String(200))
    lease_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # What the last pull that stored a document did.
    last_new: Mapped[int | None] = mapped_column(Integer)
    last_updated: Mapped[int | None] = mapped_column(Integer)
    last_unchanged: Mapped[int | None] = mapped_column(Integer)
    # Retention, resolved from the config (NULL: keep).
    retain_max_age_seconds: Mapped[int | None] = mapped_column(Integer)
    retain_max_entries: Mapped[int | None] = mapped_column(Integer)

    __table_args__ = (
        Index("ix_sources_due", "active", "next_poll_at"),
        Index("ix_sources_content_version", "content_version"),
    )


class EntryRow(Base):
    """One upstream entry; unique per (source, entry key)."""

    __tablename__ = "entries"

    id: Mapped[int] = mapped_column(RowId, primary_key=True, autoincrement=True)
    source_id: Mapped[str] = mapped_column(
        String(100), ForeignKey("sources.id", ondelete="CASCADE")
    )
    entry_key: Mapped[str] = mapped_column(Text)
    uid: Mapped[str] = mapped_column(String(64), unique=True)
    link: Mapped[str | None] = mapped_column(Text)
    title: Mapped[str | None] = mapped_column(Text)
    summary: Mapped[str | None] = mapped_column(Text)
    content: Mapped[str | None] = mapped_column(Text)
    authors: Mapped[list[str | dict[str, str]]] = mapped_column(JSON)  # store.identity
    categories: Mapped[list[str]] = mapped_column(JSON)
    enclosures: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    published: Mapped[datetime | None] = mapped_column(UTCDateTime)
    updated: Mapped[datetime | None] = mapped_column(UTCDateTime)
    sort_at: Mapped[datetime] = mapped_column(UTCDateTime)
    first_seen_at: Mapped[datetime] = mapped_column(UTCDateTime)
    changed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    content_hash: Mapped[str] = mapped_column(String(64))
    language: Mapped[str | None] = mapped_column(String(35))
    canonical_link: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (
        UniqueConstraint("source_id", "entry_key", name="uq_entries_source_key"),
        Index("ix_entries_source_sort", "source_id", "sort_at", "id"),
        Index("ix_entries_sort", "sort_at", "id"),
        Index("ix_entries_canonical_link", "canonical_link"),
    )


class TombstoneRow(Base):
    """An entry removed by retention: an upstream that still lists it does not bring it back."""

    __tablename__ = "tombstones"

    source_id: Mapped[str] = mapped_column(
        String(100), ForeignKey("sources.id", ondelete="CASCADE"), primary_key=True
    )
    entry_key: Mapped[str] = mapped_column(Text, primary_key=True)
    pruned_at: Mapped[datetime] = mapped_column(UTCDateTime)


class FeedDocumentRow(Base):
    """When a served document (a curated feed's page in one format) last changed.

    ``digest`` is a hash of the document as rendered with a placeholder date; ``changed_at``
    (whole seconds) is the first time a process rendered that digest, and becomes its
    ``updated`` date and ``Last-Modified``. Every process serving the database reads the same
    row, so every web node sends the same date for the same bytes. ``page`` is the archive
    page's entry uid, empty for the feed's first page.
    """

    __tablename__ = "feed_documents"

    feed_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    format: Mapped[str] = mapped_column(String(8), primary_key=True)
    page: Mapped[str] = mapped_column(String(64), primary_key=True)
    digest: Mapped[str] = mapped_column(String(64))
    changed_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (Index("ix_feed_documents_page", "page"),)


# -- stories: which entries carry the same story (store.story_store) ------------------------


class StoryRow(Base):
    """One story; its id is the uid of the entry that founded it and never changes (a story
    merged into another is deleted, its members move)."""

    __tablename__ = "stories"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    # The earliest member (what the status page and explain show; a feed with `prefer`
    # chooses its own among the members it carries).
    representative_uid: Mapped[str] = mapped_column(String(64))
    member_count: Mapped[int] = mapped_column(Integer, default=1)
    source_count: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (Index("ix_stories_updated", "updated_at"),)


class StoryMemberRow(Base):
    """An entry's membership of a story, what put it there (for explain) and what the
    in-memory index is rebuilt from: the entry's terms and sentence vector.

    The primary key on the entry makes membership unique: a second writer's insert of the
    same entry does nothing (ON CONFLICT), so no entry is ever in two stories.
    """

    __tablename__ = "story_members"

    entry_uid: Mapped[str] = mapped_column(String(64), primary_key=True)
    story_id: Mapped[str] = mapped_column(String(64))
    source_id: Mapped[str] = mapped_column(String(100))
    published: Mapped[datetime] = mapped_column(UTCDateTime)
    kind: Mapped[str | None] = mapped_column(String(16))  # None: it founded the story
    scores: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    joined_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # The sentence vector (float16, unit length) when an embedder is configured (0007).
    embedding: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    # store.stories.index.pack_terms of the entry (0010; None: clustered before, read again
    # from the entry when the index is built).
    terms: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    # The story clock of the transaction that last wrote the row (0010): other processes
    # catch up with the rows past the clock they saw.
    seq: Mapped[int | None] = mapped_column(BigInteger, nullable=True)

    __table_args__ = (
        Index("ix_story_members_story", "story_id", "published"),
        Index("ix_story_members_published", "published"),
        Index("ix_story_members_seq", "seq"),
    )


class StoryClockRow(Base):
    """One row: a counter each clustering transaction moves on first. Its row lock makes
    clustering writers of every process take turns; the value marks what they wrote."""

    __tablename__ = "story_clock"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    seq: Mapped[int] = mapped_column(BigInteger)
