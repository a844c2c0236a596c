"""The store: SQLAlchemy tables, migrations, repositories, entry identity.

Only this package sees SQLAlchemy; it hands out frozen values (store.model).
"""

from typing import TYPE_CHECKING

from sources.lazy import lazy_exports

if TYPE_CHECKING:
    from store.canonical import TrackingFilter, normalize_url
    from store.database import resolve_database_url, unavailable_reason
    from store.errors import DatabaseUnavailable, SchemaError, StoreError, UnknownSourceError
    from store.identity import entry_key, entry_uid
    from store.migrate import ensure_schema, upgrade
    from store.model import (
        SOURCE_STATES,
        DocumentKey,
        IngestCounts,
        PollingUpdate,
        Retention,
        SourceChange,
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
    "DatabaseUnavailable",
    "DocumentKey",
    "IngestCounts",
    "PollingUpdate",
    "Retention",
    "SchemaError",
    "SourceChange",
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
    "unavailable_reason",
    "upgrade",
]

# Each name is imported on first use (sources/lazy.py); the type checker reads the imports above.
if not TYPE_CHECKING:
    __getattr__, __dir__ = lazy_exports(__name__)
