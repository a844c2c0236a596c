"""When to poll a source next: pure functions of (source state, response facts, clock).

The order in which rules decide the delay after a poll (docs/fetching.md explains each):

    base    = the source's posting interval, estimated from the gaps between its entries
              (else its configured interval), clamped to [min_interval, max_interval]
    failure : base doubled per consecutive failure, capped at max_interval
    jitter  : delay *= 1 + jitter * u, u in [0, 1) derived from (source id, now)
    hints   : success: not before Cache-Control max-age / Expires, RSS <ttl>, sy:update*;
              failure: not before Retry-After; each hint capped at hint_ceiling

Nothing here reads a clock, a network or a database; randomness is a hash, so tests can
assert exact bounds.
"""

from __future__ import annotations

import hashlib
import itertools
import re
import statistics
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime

MAX_GAPS = 20
_MAX_AGE = re.compile(r"(?:^|,)\s*max-age\s*=\s*\"?(\d+)\"?", re.IGNORECASE)
_NO_CACHE = re.compile(r"(?:^|,)\s*(?:no-cache|no-store)\b", re.IGNORECASE)
_SY_PERIODS = {
    "hourly": timedelta(hours=1),
    "daily": timedelta(days=1),
    "weekly": timedelta(days=7),
    "monthly": timedelta(days=30),
    "yearly": timedelta(days=365),
}


@dataclass(frozen=True, slots=True)
class PollSettings:
    """The bounds of every scheduling rule (config: ``fetch.*``)."""

    min_interval: timedelta = timedelta(minutes=5)
    max_interval: timedelta = timedelta(days=1)
    hint_ceiling: timedelta = timedelta(days=1)
    jitter: float = 0.1
    permanent_redirect_polls: int = 3


@dataclass(frozen=True, slots=True)
class PollState:
    """What scheduling needs to know about a source before this poll."""

    source_id: str
    interval: timedelta
    estimated_interval: timedelta | None = None
    failures: int = 0
    feed_hint: timedelta | None = None


@dataclass(frozen=True, slots=True)
class RedirectState:
    """A permanent redirect seen on ``count`` consecutive polls, to ``target``."""

    target: str | None = None
    count: int = 0
    adopt: bool = False


# -- the decisions --------------------------------------------------------------------------


def next_poll_after_success(
    now: datetime,
    state: PollState,
    settings: PollSettings,
    hints: Iterable[timedelta | None] = (),
) -> datetime:
    """A good poll (200 or 304): one base interval plus jitter, never before a cache hint."""
    delay = base_interval(state, settings) * (1 + settings.jitter * jitter_fraction(state, now))
    return now + max(delay, _capped_hint([*hints, state.feed_hint], settings))


def next_poll_after_failure(
    now: datetime,
    state: PollState,
    settings: PollSettings,
    retry_after: timedelta | None = None,
) -> datetime:
    """``state.failures`` counts the failures before this one; Retry-After is a floor."""
    delay = backoff(state, settings) * (1 + settings.jitter * jitter_fraction(state, now))
    return now + max(delay, _capped_hint([retry_after], settings))


def backoff(state: PollState, settings: PollSettings) -> timedelta:
    """Base interval doubled per earlier consecutive failure, up to max_interval."""
    exponent = max(0, min(state.failures, 30))
    return min(base_interval(state, settings) * (1 << exponent), settings.max_interval)


def base_interval(state: PollState, settings: PollSettings) -> timedelta:
    interval = state.estimated_interval or state.interval
    return max(settings.min_interval, min(interval, settings.max_interval))


def jitter_fraction(state: PollState, now: datetime) -> float:
    """A number in [0, 1) fixed by (source id, now): deterministic, yet spread over sources."""
    digest = hashlib.sha256(f"{state.source_id}|{now.isoformat()}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def _capped_hint(hints: Iterable[timedelta | None], settings: PollSettings) -> timedelta:
    given = [h for h in hints if h is not None and h > timedelta(0)]
    return min(max(given), settings.hint_ceiling) if given else timedelta(0)


# -- posting rate ---------------------------------------------------------------------------


def estimate_interval(dates: Iterable[datetime | None], now: datetime) -> timedelta | None:
    """The median gap between the newest entries, counting the time since the newest as one
    more gap (so a source that went quiet is polled less); None without two dated entries."""
    recent = sorted({d for d in dates if d is not None and d <= now}, reverse=True)
    recent = recent[: MAX_GAPS + 1]
    if len(recent) < 2:
        return None
    gaps = [newer - older for newer, older in itertools.pairwise(recent)]
    gaps.append(now - recent[0])
    return timedelta(seconds=statistics.median(g.total_seconds() for g in gaps))


# -- hints from the response ----------------------------------------------------------------


def header_hint(
    cache_control: str | None, expires: str | None, date: str | None, now: datetime
) -> timedelta | None:
    """How long the response says it stays fresh: Cache-Control max-age, else Expires."""
    if cache_control:
        if _NO_CACHE.search(cache_control):
            return None
        match = _MAX_AGE.search(cache_control)
        if match:
            return timedelta(seconds=int(match.group(1)))
    expiry = http_date(expires)
    if expiry is None:
        return None
    origin = http_date(date) or now
    return max(expiry - origin, timedelta(0))


def feed_hint(
    ttl: str | None, update_period: str | None, update_frequency: str | None
) -> timedelta | None:
    """RSS ``<ttl>`` (minutes) and ``sy:updatePeriod`` / ``sy:updateFrequency``, the longer."""
    hints: list[timedelta] = []
    if ttl and ttl.strip().isdigit():
        hints.append(timedelta(minutes=int(ttl.strip())))
    period = _SY_PERIODS.get((update_period or "").strip().lower())
    if period is not None:
        frequency = (update_frequency or "1").strip()
        per = int(frequency) if frequency.isdigit() and int(frequency) > 0 else 1
        hints.append(period / per)
    return max(hints) if hints else None


def retry_after_delay(value: str | None, now: datetime) -> timedelta | None:
    """Retry-After as seconds (``120``) or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return timedelta(seconds=int(value))
    when = http_date(value)
    return max(when - now, timedelta(0)) if when else None


def http_date(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        parsed = parsedate_to_datetime(value.strip())
    except (TypeError, ValueError, IndexError):
        return None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


# -- permanent redirects --------------------------------------------------------------------


def track_redirect(
    previous: RedirectState, permanent_target: str | None, settings: PollSettings
) -> RedirectState:
    """Count consecutive polls that were permanently redirected to the same target;
    ``adopt`` once the count reaches ``permanent_redirect_polls``."""
    if permanent_target is None:
        return RedirectState()
    count = previous.count + 1 if permanent_target == previous.target else 1
    return RedirectState(permanent_target, count, count >= settings.permanent_redirect_polls)
