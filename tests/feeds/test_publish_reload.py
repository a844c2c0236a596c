"""Publisher.update_definitions: a reloaded config's curated feeds, the render cache kept for
the feeds that did not change and dropped for those that did."""

from __future__ import annotations

from datetime import timedelta

from feeds import Publisher
from sources.model import ParsedEntry, ParsedFeed, Validators
from store import SourceDefinition, Store
from tests.fakes import SITE, T0, feed_definition


async def test_only_changed_feeds_are_rendered_again(store: Store) -> None:
    await store.sync_sources(
        [SourceDefinition("outlet-a", "https://a.example/", None, timedelta(hours=1))], T0
    )
    entries = tuple(
        ParsedEntry(id=f"e{i}", link=f"https://a.example/{i}", title=title, published=T0)
        for i, title in enumerate(["New GPU racks", "Bike lanes downtown"])
    )
    feed = ParsedFeed(url="https://a.example/", version="rss20", entries=entries)
    await store.ingest("outlet-a", feed, Validators(), T0, T0 + timedelta(hours=1))
    gpus = feed_definition(id="gpus", source_ids=("outlet-a",), include=("GPU",))
    everything = feed_definition(id="everything", source_ids=("outlet-a",))
    publisher = Publisher(store, [gpus, everything], SITE, clock=lambda: T0, recheck=3600)
    before = {f: await publisher.render(f, "atom") for f in ("gpus", "everything")}
    assert publisher.renders == 2

    bikes = feed_definition(id="gpus", source_ids=("outlet-a",), include=("bike lanes",))
    added = feed_definition(id="added", source_ids=("outlet-a",))
    changed = publisher.update_definitions([bikes, everything, added])

    assert changed == {"gpus", "added"}
    assert await publisher.render("everything", "atom") is before["everything"]  # still cached
    after = await publisher.render("gpus", "atom")
    assert after.etag != before["gpus"].etag and b"Bike lanes" in after.body
    assert publisher.renders == 3
    assert set(publisher.definitions) == {"gpus", "everything", "added"}
    assert publisher.update_definitions([everything]) == {"gpus", "added"}
