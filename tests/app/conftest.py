"""Fixtures for tests that run the whole service in-process through a real uvicorn.

A test module provides a ``settings`` fixture (whose server port is ``listener``'s); the
service starts on it with the injected clock and is stopped cleanly after the test.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta

import pytest

from feedmill.config import Settings
from feedmill.service import Service
from tests.conftest import FakeClock


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    yield sock
    sock.close()


@pytest.fixture
async def service(
    settings: Settings, clock: FakeClock, listener: socket.socket
) -> AsyncIterator[Service]:
    running = Service(settings, clock, sockets=[listener])
    task = asyncio.create_task(running.run())
    try:
        await asyncio.wait_for(running.heartbeats.wait_for(1), timeout=30)
        yield running
    finally:
        running.stop()
        await asyncio.wait_for(task, timeout=30)  # a clean stop: run() returns


async def pull_again(service: Service, clock: FakeClock) -> None:
    """Make every source due and wait for a whole heartbeat that started after that."""
    clock.advance(timedelta(days=2))  # past max_interval (1d) plus jitter
    seen = service.heartbeats.done
    await asyncio.wait_for(service.heartbeats.wait_for(seen + 2), timeout=30)
