"""The store: SQLAlchemy tables, migrations, repositories, entry identity.

Only this package sees SQLAlchemy; it hands out frozen values (store.model).
"""

from store.canonical import TrackingFilter, normalize_url
from store.database import resolve_database_url
from store.errors import SchemaError, StoreError, UnknownSourceError
from store.identity import entry_key, entry_uid
from store.migrate import ensure_schema, upgrade
from store.model import (
    SOURCE_STATES,
    IngestCounts,
    PollingUpdate,
    Retention,
    SourceDefinition,
    SourceSummary,
    StoredEntry,
    StoredSource,
    StoredStory,
    StoryMember,
    StorySummary,
)
from store.store import Store

__all__ = [
    "SOURCE_STATES",
    "IngestCounts",
    "PollingUpdate",
    "Retention",
    "SchemaError",
    "SourceDefinition",
    "SourceSummary",
    "Store",
    "StoreError",
    "StoredEntry",
    "StoredSource",
    "StoredStory",
    "StoryMember",
    "StorySummary",
    "TrackingFilter",
    "UnknownSourceError",
    "ensure_schema",
    "entry_key",
    "entry_uid",
    "normalize_url",
    "resolve_database_url",
    "upgrade",
]
