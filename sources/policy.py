"""When to poll a source next: a pure function of (interval, outcome, clock).

The walking skeleton keeps the rule short: after a success, one interval later; after the
n-th consecutive failure, the interval doubled n-1 times, capped at ``max_backoff``. Failures
never stop polling for good.
"""

from __future__ import annotations

from datetime import datetime, timedelta

MAX_BACKOFF = timedelta(hours=24)


def next_poll_after_success(now: datetime, interval: timedelta) -> datetime:
    return now + interval


def next_poll_after_failure(
    now: datetime, interval: timedelta, failures: int, max_backoff: timedelta = MAX_BACKOFF
) -> datetime:
    """``failures`` counts this one: 1 after the first failure."""
    exponent = max(0, min(failures - 1, 20))
    delay = min(interval * (1 << exponent), max(max_backoff, interval))
    return now + delay
