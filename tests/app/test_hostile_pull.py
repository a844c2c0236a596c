"""The last-resort guard of a pull: an exception nobody expected is recorded on that source
as ``internal`` (logged once, with its traceback), its lease is released, and the others go on."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest

import feedmill.pull as pull_module
from feedmill.pull import Puller
from sources import AddressPolicy, FetchSettings, make_client
from store import SourceDefinition, Store
from tests.conftest import FakeClock, fixture_bytes
from tests.upstream import Upstream

SETTINGS = FetchSettings(addresses=AddressPolicy.from_allowlist(True, ["127.0.0.0/8"]))


async def test_an_unexpected_exception_is_recorded_on_its_source_only(
    store: Store,
    clock: FakeClock,
    upstream: Upstream,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    good = upstream.add("/good.rss", fixture_bytes("outlet-a.rss"))
    buggy = upstream.add("/buggy.rss", fixture_bytes("outlet-c.rss"))
    hour = timedelta(hours=1)
    await store.sync_sources(
        [SourceDefinition("good", good, None, hour), SourceDefinition("buggy", buggy, None, hour)],
        clock(),
    )
    real_fetch = pull_module.fetch_feed

    async def fetch_with_a_bug(client, url, validators, settings):  # type: ignore[no-untyped-def]
        if url == buggy:
            raise KeyError("a bug")
        return await real_fetch(client, url, validators, settings)

    monkeypatch.setattr(pull_module, "fetch_feed", fetch_with_a_bug)
    async with make_client(SETTINGS) as client:
        puller = Puller(store, client, SETTINGS, clock, owner="w1")
        with caplog.at_level(logging.INFO, logger="feedmill.pull"):
            results = {r.source_id: r for r in await puller.pull_due()}
    assert results["good"].counts is not None and results["good"].counts.new == 3
    assert results["buggy"].error is not None and results["buggy"].error.kind.value == "internal"
    source = await store.get_source("buggy")
    assert (source.error_kind, source.error_count, source.lease_owner) == ("internal", 1, None)
    assert "KeyError" in (source.error_message or "")
    assert source.next_poll_at > clock()
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and errors[0].exc_info is not None
    assert (await store.get_source("good")).error_kind is None
