"""Scheduling decisions as pure functions of (source state, response facts, clock)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sources import PollSettings, PollState, RedirectState
from sources.policy import (
    base_interval,
    estimate_interval,
    feed_hint,
    header_hint,
    jitter_fraction,
    next_poll_after_failure,
    next_poll_after_success,
    retry_after_delay,
    track_redirect,
)

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)
DAY = timedelta(days=1)
SETTINGS = PollSettings(min_interval=timedelta(minutes=5), max_interval=DAY, jitter=0.1)
NO_JITTER = PollSettings(min_interval=timedelta(minutes=5), max_interval=DAY, jitter=0)


def state(**fields: object) -> PollState:
    values: dict[str, object] = {"source_id": "outlet-a", "interval": HOUR}
    values.update(fields)
    return PollState(**values)  # type: ignore[arg-type]


def test_success_polls_again_one_interval_later_plus_bounded_jitter() -> None:
    assert next_poll_after_success(NOW, state(), NO_JITTER) == NOW + HOUR
    delay = next_poll_after_success(NOW, state(), SETTINGS) - NOW
    expected = HOUR * (1 + 0.1 * jitter_fraction(state(), NOW))
    assert delay == expected
    assert HOUR <= delay < HOUR * 1.1


def test_jitter_is_deterministic_and_spreads_sources() -> None:
    assert jitter_fraction(state(), NOW) == jitter_fraction(state(), NOW)
    fractions = {jitter_fraction(state(source_id=f"s{i}"), NOW) for i in range(50)}
    assert len(fractions) == 50
    assert all(0 <= f < 1 for f in fractions)
    assert min(fractions) < 0.2 and max(fractions) > 0.8


def test_the_interval_is_clamped_between_min_and_max() -> None:
    assert base_interval(state(estimated_interval=timedelta(seconds=30)), SETTINGS) == (
        timedelta(minutes=5)
    )
    assert base_interval(state(estimated_interval=timedelta(days=30)), SETTINGS) == DAY


def test_the_posting_rate_comes_from_the_gaps_between_entries() -> None:
    hourly = [NOW - HOUR * n for n in range(10)]
    weekly = [NOW - timedelta(days=7) * n for n in range(5)]
    assert estimate_interval(hourly, NOW) == HOUR
    assert estimate_interval(weekly, NOW) == timedelta(days=7)
    assert estimate_interval([NOW], NOW) is None
    assert estimate_interval([], NOW) is None
    # went quiet: the time since the newest entry counts as one more (long) gap
    quiet = [NOW - timedelta(days=30) - HOUR * n for n in range(2)]
    assert estimate_interval(quiet, NOW) == timedelta(days=15, minutes=30)


def test_failures_back_off_exponentially_capped_at_max_and_never_give_up() -> None:
    delays = [next_poll_after_failure(NOW, state(failures=n), NO_JITTER) - NOW for n in range(4)]
    assert delays == [HOUR, 2 * HOUR, 4 * HOUR, 8 * HOUR]  # the first failure waits 1 base
    assert next_poll_after_failure(NOW, state(failures=5), NO_JITTER) - NOW == DAY
    assert next_poll_after_failure(NOW, state(failures=10_000), NO_JITTER) - NOW == DAY
    jittered = next_poll_after_failure(NOW, state(failures=1), SETTINGS) - NOW
    assert 2 * HOUR <= jittered < 2 * HOUR * 1.1


def test_retry_after_is_a_floor_for_the_next_attempt_bounded_by_the_ceiling() -> None:
    wait = timedelta(hours=10)
    assert next_poll_after_failure(NOW, state(), NO_JITTER, wait) == NOW + wait
    hostile = timedelta(days=365)
    assert next_poll_after_failure(NOW, state(), NO_JITTER, hostile) == NOW + DAY


def test_retry_after_is_read_as_seconds_or_an_http_date() -> None:
    assert retry_after_delay("120", NOW) == timedelta(seconds=120)
    assert retry_after_delay("Tue, 24 Nov 2026 14:00:00 GMT", NOW) == 2 * HOUR
    assert retry_after_delay("Tue, 24 Nov 2026 10:00:00 GMT", NOW) == timedelta(0)
    assert retry_after_delay("soon", NOW) is None
    assert retry_after_delay(None, NOW) is None


def test_cache_hints_push_the_next_poll_back_up_to_the_ceiling() -> None:
    max_age = header_hint("public, max-age=10800", None, None, NOW)
    assert max_age == 3 * HOUR
    assert next_poll_after_success(NOW, state(), NO_JITTER, [max_age]) == NOW + 3 * HOUR
    expires = header_hint(
        None, "Tue, 24 Nov 2026 16:00:00 GMT", "Tue, 24 Nov 2026 12:00:00 GMT", NOW
    )
    assert expires == 4 * HOUR
    assert header_hint("no-cache, max-age=600", None, None, NOW) is None
    hostile = header_hint("max-age=31536000", None, None, NOW)
    assert next_poll_after_success(NOW, state(), NO_JITTER, [hostile]) == NOW + DAY
    # a hint shorter than the interval changes nothing
    short = header_hint("max-age=60", None, None, NOW)
    assert next_poll_after_success(NOW, state(), NO_JITTER, [short]) == NOW + HOUR


def test_feed_hints_ttl_and_syndication_module() -> None:
    assert feed_hint("180", None, None) == 3 * HOUR
    assert feed_hint(None, "daily", "2") == 12 * HOUR
    assert feed_hint(None, "weekly", None) == timedelta(days=7)
    assert feed_hint("60", "hourly", "1") == HOUR
    assert feed_hint("soon", "sometimes", None) is None
    ttl = state(feed_hint=feed_hint("180", None, None))
    assert next_poll_after_success(NOW, ttl, NO_JITTER) == NOW + 3 * HOUR


def test_a_permanent_redirect_is_adopted_after_n_consecutive_polls() -> None:
    settings = PollSettings(permanent_redirect_polls=3)
    seen = RedirectState()
    for poll in (1, 2):
        seen = track_redirect(seen, "https://new.example/feed", settings)
        assert (seen.count, seen.adopt) == (poll, False)
    seen = track_redirect(seen, "https://new.example/feed", settings)
    assert seen.adopt
    # a different target restarts the count; no redirect resets it
    assert track_redirect(
        RedirectState("https://a.example/", 2), "https://b.example/", settings
    ) == (RedirectState("https://b.example/", 1, False))
    assert track_redirect(RedirectState("https://a.example/", 2), None, settings) == RedirectState()


def test_a_simulated_day_polls_each_source_about_as_often_as_it_posts() -> None:
    """Sources posting every 15 min, hourly, every 6 h and weekly, driven by the pure policy
    on a simulated clock: polls per day follow the posting rate within [min, max]."""
    start = datetime(2026, 11, 24, tzinfo=UTC)
    every = {
        "quarterly": timedelta(minutes=15),
        "hourly": HOUR,
        "six-hourly": 6 * HOUR,
        "weekly": timedelta(days=7),
    }
    polls = {}
    for name, gap in every.items():
        now, count, estimate = start, 0, None
        while now < start + DAY:
            count += 1
            dates = [now - gap * n - timedelta(minutes=1) for n in range(20)]
            estimate = estimate_interval(dates, now)
            current = PollState(name, 30 * timedelta(minutes=1), estimate)
            now = next_poll_after_success(now, current, SETTINGS)
        polls[name] = count
    # within jitter (up to +10%): 24h / gap, bounded by min 5 min and max 1 day
    assert 24 * 4 / 1.1 <= polls["quarterly"] <= 24 * 4 + 1
    assert 24 / 1.1 <= polls["hourly"] <= 25
    assert 4 / 1.1 <= polls["six-hourly"] <= 5
    assert polls["weekly"] == 1
    assert polls["quarterly"] > polls["hourly"] > polls["six-hourly"] > polls["weekly"]
