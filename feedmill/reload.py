"""SIGHUP: read the config file again and apply what a running process can change.

new = load_config(path)                  a file with problems: one ERROR line, no change
store.sync_sources(new sources)          new ones due at once, removed ones deactivated
publisher.update_definitions(new feeds)  cached documents of changed feeds dropped
warn for every other section that changed: it takes effect after a restart
"""

from __future__ import annotations

import logging
from pathlib import Path

from feedmill.clock import Clock
from feedmill.config import Settings, load_config
from feedmill.errors import ConfigError
from feeds import Publisher
from store import Store

log = logging.getLogger("feedmill.service")
# Sections a reload cannot apply to a running process (the others: sources, feeds, retention).
RESTART_ONLY = ("database", "server", "fetch", "scheduler", "links", "http", "websub", "stories")


async def reload_config(
    path: Path, old: Settings, store: Store, publisher: Publisher, clock: Clock
) -> Settings | None:
    """The settings now in force, or None when the file was refused (``old`` stays)."""
    try:
        new = load_config(path)
    except ConfigError as exc:
        problems = "; ".join(exc.problems)
        log.error("reload refused, still running the previous config: %s", problems)
        return None
    await store.sync_sources(new.source_definitions(), clock())
    changed = publisher.update_definitions(new.feed_definitions())
    publisher.invalidate()
    for section in RESTART_ONLY:
        if getattr(old, section) != getattr(new, section):
            log.warning("reload: %s changed; that takes effect after a restart", section)
    if old.story_settings() != new.story_settings():
        log.warning("reload: story clustering changed; that takes effect after a restart")
    log.info("config reloaded: %s", describe_reload(old, new, changed))
    return new


def describe_reload(old: Settings, new: Settings, changed_feeds: set[str]) -> str:
    before, after = {s.id for s in old.sources}, {s.id for s in new.sources}
    feeds_before, feeds_after = {f.id for f in old.feeds}, {f.id for f in new.feeds}
    feeds_changed = changed_feeds & feeds_before & feeds_after
    return (
        f"{len(after)} sources ({len(after - before)} added, {len(before - after)} removed), "
        f"{len(feeds_after)} feeds ({len(feeds_after - feeds_before)} added, "
        f"{len(feeds_before - feeds_after)} removed, {len(feeds_changed)} changed)"
    )
