"""Opening the store, and the publisher over it, for the service and the one-shot commands.

Kept apart from feedmill.service, so that a command that only reads the store (`feedmill
sources`, `prune`) does not import the server, the scheduler or the HTTP client.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from feedmill.clock import Clock
from feedmill.config import Settings
from store import Store, ensure_schema

if TYPE_CHECKING:
    from feeds.publish import Publisher

log = logging.getLogger("feedmill.service")


async def open_store(settings: Settings, clock: Clock) -> Store:
    """Open the database, bring its schema to this version, and sync the sources."""
    store = Store.open(
        settings.database,
        tracking=settings.links.tracking_filter(),
        stories=settings.story_settings(),
    )
    try:
        async with store.setup_lock():
            log.info("%s", await ensure_schema(store))
            await store.sync_sources(settings.source_definitions(), clock())
    except BaseException:
        await store.close()
        raise
    return store


def make_publisher(settings: Settings, store: Store, clock: Clock) -> Publisher:
    from feeds.publish import Publisher  # the renderers load for the commands that render

    return Publisher(
        store,
        settings.feed_definitions(),
        settings.site(),
        clock=clock,
        hub=settings.websub.hub,
        recheck=settings.http.recheck.total_seconds(),
    )
