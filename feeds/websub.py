"""WebSub publishing (https://www.w3.org/TR/websub/): tell the hub that a topic changed.

``HubPinger.publish(urls)`` returns at once; each URL is POSTed to the hub
(``hub.mode=publish``, ``hub.url=URL``) by a background task that retries a failure (a
network error or a non-2xx answer) with exponential backoff, ``max_attempts`` times in all.
Ingest never waits for the hub.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable

import httpx

log = logging.getLogger("feeds.websub")


class HubPinger:
    def __init__(
        self,
        client: httpx.AsyncClient,
        hub: str,
        *,
        max_attempts: int = 5,
        retry_delay: float = 10.0,
    ) -> None:
        self.client = client
        self.hub = hub
        self.max_attempts = max_attempts
        self.retry_delay = retry_delay
        self._tasks: set[asyncio.Task[bool]] = set()

    def publish(self, urls: Iterable[str]) -> list[asyncio.Task[bool]]:
        """Start pinging the hub for each URL; the tasks end True once the hub accepted."""
        started = []
        for url in urls:
            task = asyncio.create_task(self._ping(url))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
            started.append(task)
        return started

    async def _ping(self, url: str) -> bool:
        delay = self.retry_delay
        for attempt in range(1, self.max_attempts + 1):
            problem = await self._post(url)
            if problem is None:
                log.info("websub: hub accepted %s", url)
                return True
            if attempt == self.max_attempts:
                log.warning("websub: giving up on %s after %d attempts: %s", url, attempt, problem)
                return False
            log.info("websub: ping for %s failed (%s), retrying in %.1fs", url, problem, delay)
            await asyncio.sleep(delay)
            delay *= 2
        return False

    async def _post(self, url: str) -> str | None:
        try:
            response = await self.client.post(
                self.hub, data={"hub.mode": "publish", "hub.url": url}
            )
        except httpx.HTTPError as exc:
            return f"{type(exc).__name__}: {exc}"
        if not response.is_success:
            return f"HTTP {response.status_code}"
        return None

    async def close(self) -> None:
        """Stop pings still waiting to retry (at shutdown)."""
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
