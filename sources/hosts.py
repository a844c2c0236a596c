"""Per-host limits: at most N fetches at once per host, and a host-wide hold after a
Retry-After when ``fetch.per_host.share_retry_after`` is on. In memory, per process."""

from __future__ import annotations

import asyncio
import functools
from datetime import datetime
from urllib.parse import urlsplit


@functools.lru_cache(maxsize=16384)
def host_of(url: str) -> str:
    """The URL's host name, lower case (remembered: a source's URL is the same every poll)."""
    return (urlsplit(url).hostname or "").lower()


class HostLimits:
    def __init__(self, concurrency: int = 2, *, share_retry_after: bool = False) -> None:
        self.concurrency = concurrency
        self.share_retry_after = share_retry_after
        self._slots: dict[str, asyncio.Semaphore] = {}
        self._held: dict[str, datetime] = {}

    def slot(self, host: str) -> asyncio.Semaphore:
        """The host's ``concurrency`` slots: ``async with limits.slot(host):`` waits for one."""
        semaphore = self._slots.get(host)
        if semaphore is None:
            semaphore = self._slots[host] = asyncio.Semaphore(self.concurrency)
        return semaphore

    def hold(self, host: str, until: datetime) -> None:
        """Keep every source of ``host`` waiting until ``until`` (if sharing is on)."""
        if not self.share_retry_after:
            return
        current = self._held.get(host)
        if current is None or until > current:
            self._held[host] = until

    def held_until(self, host: str, now: datetime) -> datetime | None:
        until = self._held.get(host)
        if until is None or until <= now:
            self._held.pop(host, None)
            return None
        return until
