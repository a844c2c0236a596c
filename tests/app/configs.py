"""Config files for tests, pointed at a loopback upstream."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from tests.conftest import fixture_bytes
from tests.upstream import Upstream

LOOPBACK = ["127.0.0.0/8"]  # the test upstreams live here; feedmill refuses it by default
LAST_MODIFIED = "Tue, 24 Nov 2026 06:00:00 GMT"


def serve_outlets(upstream: Upstream) -> dict[str, str]:
    """Three outlets: A (RSS, ETag), B (Atom, Last-Modified), C (RSS, ETag). Ids to URLs."""
    return {
        "outlet-a": upstream.add(
            "/a.rss",
            fixture_bytes("outlet-a.rss"),
            content_type="application/rss+xml",
            etag='"a-1"',
        ),
        "outlet-b": upstream.add(
            "/b.atom",
            fixture_bytes("outlet-b.atom"),
            content_type="application/atom+xml",
            last_modified=LAST_MODIFIED,
        ),
        "outlet-c": upstream.add(
            "/c.rss",
            fixture_bytes("outlet-c.rss"),
            content_type="application/rss+xml",
            etag='W/"c-1"',
        ),
    }


def outlets_config(
    sources: dict[str, str], tmp_path: Path, port: int = 0, **extra: Any
) -> dict[str, Any]:
    config: dict[str, Any] = {
        "database": f"sqlite:///{tmp_path / 'feedmill.db'}",
        "server": {"host": "127.0.0.1", "port": port, "base_url": f"http://127.0.0.1:{port}/"},
        "scheduler": {"heartbeat": "1s"},
        # the loopback upstream is on 127.0.0.1, a non-public address
        "fetch": {"allow_addresses": LOOPBACK},
        "sources": [
            {"id": source_id, "url": url, "tags": ["news"]} for source_id, url in sources.items()
        ],
        "feeds": [
            {
                "id": "ai-infrastructure",
                "title": "AI infrastructure",
                "tags": ["news"],
                "include": ["AI server", "GPU", "data center", "LLM"],
                "exclude": ["deal"],
            },
            {"id": "everything", "title": "Everything"},
        ],
    }
    config.update(extra)
    return config


def write_config(path: Path, config: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return path
