"""Values that leave store/: frozen, UTC-aware, never ORM objects."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sources.model import Author, Enclosure, Validators
from store.stories import StoryScore


@dataclass(frozen=True, slots=True)
class Retention:
    """How long a source's entries are kept: ``None`` is no limit on that side."""

    max_age: timedelta | None = None
    max_entries: int | None = None


@dataclass(frozen=True, slots=True)
class SourceDefinition:
    """A source as configured: the store keeps its row in step with this."""

    id: str
    url: str
    title: str | None
    interval: timedelta
    retention: Retention = Retention()


SOURCE_STATES = ("ok", "backing off", "gone", "blocked")


@dataclass(frozen=True, slots=True)
class SourceChange:
    """A source as a rendered feed shows it, with its content version (Store.source_changes)."""

    id: str
    content_version: int
    url: str
    title: str | None  # configured
    feed_title: str | None  # the upstream feed's
    feed_link: str | None

    @property
    def display_title(self) -> str:
        return self.title or self.feed_title or self.id


@dataclass(frozen=True, slots=True)
class SourceSummary:
    """The active sources at a glance (the status page, /metrics)."""

    states: dict[str, int]  # every one of SOURCE_STATES, 0 included
    due: int  # due for a pull now and held by no worker: the backlog
    last_polled_at: datetime | None  # the latest pull of any process on this database


@dataclass(frozen=True, slots=True)
class StoredSource:
    id: str
    url: str
    title: str | None
    interval: timedelta
    active: bool
    validators: Validators
    feed_title: str | None
    feed_link: str | None
    next_poll_at: datetime
    last_polled_at: datetime | None
    last_success_at: datetime | None
    error_kind: str | None
    error_message: str | None
    error_count: int
    effective_url: str | None = None
    redirect_target: str | None = None
    redirect_count: int = 0
    gone: bool = False
    body_hash: str | None = None
    estimated_interval: timedelta | None = None
    feed_hint: timedelta | None = None
    lease_owner: str | None = None
    lease_expires_at: datetime | None = None
    last_counts: IngestCounts | None = None
    retention: Retention = Retention()
    failing_since: datetime | None = None  # the first of the failures counted in error_count

    @property
    def display_title(self) -> str:
        return self.title or self.feed_title or self.id

    @property
    def state(self) -> str:
        """One of SOURCE_STATES: ``gone`` (HTTP 410: never pulled again), ``blocked`` (its
        address is refused), ``backing off`` (its last pulls failed: the next one is put
        off), else ``ok``. store.source_queries.STATE says the same in SQL."""
        if self.gone:
            return "gone"
        if self.error_kind == "blocked_address":
            return "blocked"
        return "backing off" if self.error_count else "ok"

    @property
    def fetch_url(self) -> str:
        """Where the feed is fetched from: the configured URL, unless a permanent redirect
        or discovery moved it."""
        return self.effective_url or self.url


@dataclass(frozen=True, slots=True)
class PollingUpdate:
    """The polling state a successful poll leaves on a source (see sources.policy)."""

    effective_url: str | None
    redirect_target: str | None
    redirect_count: int
    body_hash: str | None
    estimated_interval: timedelta | None
    feed_hint: timedelta | None


@dataclass(frozen=True, slots=True)
class StoredEntry:
    """An entry as stored. ``uid`` is its public id: the same for the same (source, key)."""

    uid: str
    source_id: str
    entry_key: str
    link: str | None
    title: str | None
    summary: str | None
    content: str | None
    authors: tuple[Author, ...]
    categories: tuple[str, ...]
    enclosures: tuple[Enclosure, ...]
    published: datetime | None
    updated: datetime | None
    sort_at: datetime
    first_seen_at: datetime
    changed_at: datetime
    language: str | None = None
    canonical_link: str | None = None  # store.canonical; the same article shares it


@dataclass(frozen=True, slots=True)
class IngestCounts:
    """What one pull of one source did to the store."""

    new: int = 0
    updated: int = 0
    unchanged: int = 0
    ignored: int = 0  # listed upstream but removed by retention (a tombstone keeps them out)
    pruned: int = 0  # removed by retention after this pull
    stories_formed: int = 0  # stories the new entries founded (story clustering on)
    stories_merged: int = 0  # stories merged into another (event mode)


@dataclass(frozen=True, slots=True)
class StoryMember:
    """An entry's membership of a story: what put it there (``kind`` None: it founded the
    story) and the candidate scores considered, best first."""

    entry_uid: str
    source_id: str
    published: datetime
    kind: str | None
    scores: tuple[StoryScore, ...]
    joined_at: datetime
    title: str | None = None
    link: str | None = None


@dataclass(frozen=True, slots=True)
class StoredStory:
    """A story: its id is the founding entry's uid; members oldest first."""

    id: str
    representative_uid: str
    member_count: int
    source_count: int
    created_at: datetime
    updated_at: datetime
    members: tuple[StoryMember, ...] = ()


@dataclass(frozen=True, slots=True)
class StorySummary:
    """A line of the status page's story list."""

    id: str
    title: str | None
    representative_uid: str
    member_count: int
    source_count: int
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class DocumentKey:
    """A served document: a curated feed's page in one format (``page`` is the archive
    page's entry uid, "" for the first page). store.documents keeps when each last changed."""

    feed_id: str
    format: str
    page: str = ""
