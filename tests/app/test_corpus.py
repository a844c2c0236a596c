"""Every real-world document of ../shared/corpus/real/, served from loopback, ingested."""

from __future__ import annotations

import csv
import re
from datetime import timedelta
from pathlib import Path

from feedmill.pull import Puller
from sources import AddressPolicy, FetchSettings, make_client
from store import SourceDefinition, Store
from tests.conftest import FakeClock, fixture_bytes
from tests.upstream import Upstream

SETTINGS = FetchSettings(deadline=30, addresses=AddressPolicy(block_private=False))


def manifest(corpus: Path) -> dict[str, int]:
    """File name -> the number of entries feedparser finds in it (MANIFEST.tsv)."""
    with (corpus / "real" / "MANIFEST.tsv").open(encoding="utf-8") as f:
        return {row["file"]: int(row["fp_entries"]) for row in csv.DictReader(f, delimiter="\t")}


def slug(name: str) -> str:
    return re.sub(r"[^a-z0-9_-]+", "-", name.lower())[:100]


async def test_every_real_document_is_ingested_without_a_crash(
    corpus: Path, upstream: Upstream, store: Store, clock: FakeClock
) -> None:
    expected = manifest(corpus)
    assert len(expected) == 127
    definitions = [
        SourceDefinition(
            slug(name),
            upstream.add(f"/real/{name}", (corpus / "real" / name).read_bytes(), content_type=None),
            None,
            timedelta(hours=1),
        )
        for name in sorted(expected)
    ]
    not_a_feed = SourceDefinition(
        "html-page",
        upstream.add(
            "/page.html", fixture_bytes("page-without-feed.html"), content_type="text/html"
        ),
        None,
        timedelta(hours=1),
    )
    await store.sync_sources([*definitions, not_a_feed], clock())
    async with make_client(SETTINGS) as client:
        puller = Puller(store, client, SETTINGS, clock, concurrency=8)
        results = {r.source_id: r for r in await puller.pull_due()}

    assert len(results) == 128
    failed = {sid: str(r.error) for sid, r in results.items() if r.error and sid != "html-page"}
    assert failed == {}
    counts = await store.count_entries()
    stored = {name: counts.get(slug(name), 0) for name in expected}
    assert stored == expected  # every entry feedparser sees is stored, none twice
    page = await store.get_source("html-page")
    assert page.error_kind == "not_a_feed"
    assert page.error_count == 1
    assert results["html-page"].status == "error"
