"""Builders for values, instead of mocks."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from feeds import FeedDefinition, Site, SourceInfo
from store import StoredEntry
from store.identity import entry_uid

T0 = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
SITE = Site(base_url="https://news.example.org/", title="Test feedmill")


def stored_entry(key: str = "e1", source_id: str = "outlet-a", **fields: Any) -> StoredEntry:
    values: dict[str, Any] = {
        "uid": entry_uid(source_id, key),
        "source_id": source_id,
        "entry_key": key,
        "link": f"https://{source_id}.example/{key}",
        "title": f"Entry {key}",
        "summary": None,
        "content": None,
        "authors": (),
        "categories": (),
        "enclosures": (),
        "published": T0,
        "updated": None,
        "sort_at": T0,
        "first_seen_at": T0,
        "changed_at": T0,
    }
    values.update(fields)
    return StoredEntry(**values)


def feed_definition(**fields: Any) -> FeedDefinition:
    values: dict[str, Any] = {
        "id": "ai-infrastructure",
        "title": "AI infrastructure",
        "source_ids": ("outlet-a", "outlet-b"),
    }
    values.update(fields)
    return FeedDefinition(**values)


def source_info(source_id: str = "outlet-a") -> SourceInfo:
    return SourceInfo(
        id=source_id,
        title=source_id.replace("-", " ").title(),
        url=f"https://{source_id}.example/feed",
        link=f"https://{source_id}.example/",
    )
