from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sources import next_poll_after_failure, next_poll_after_success

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)


def test_success_polls_again_one_interval_later() -> None:
    assert next_poll_after_success(NOW, HOUR) == NOW + HOUR


def test_failures_back_off_exponentially() -> None:
    delays = [next_poll_after_failure(NOW, HOUR, n) - NOW for n in (1, 2, 3, 4)]
    assert delays == [HOUR, 2 * HOUR, 4 * HOUR, 8 * HOUR]


def test_backoff_is_capped_and_never_gives_up() -> None:
    cap = timedelta(hours=24)
    assert next_poll_after_failure(NOW, HOUR, 6) - NOW == cap
    assert next_poll_after_failure(NOW, HOUR, 10_000) - NOW == cap


def test_an_interval_longer_than_the_cap_is_kept() -> None:
    week = timedelta(days=7)
    assert next_poll_after_failure(NOW, week, 3) - NOW == week
