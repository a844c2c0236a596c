"""Logging a job that fails again and again (the heartbeat while the database is away):
one line per kind of failure, not a traceback every run, and one line when it works again."""

from __future__ import annotations

import logging

from store import unavailable_reason


class FailureLog:
    """``failed(exc)`` after each failed run, ``succeeded()`` after each good one.

    The first failure of a kind is logged (an unexpected exception with its traceback, the
    database being away as one line with the reason); the same kind again only at debug level,
    until a run succeeds, which is logged with the number of failed runs before it."""

    def __init__(self, logger: logging.Logger, what: str) -> None:
        self.logger = logger
        self.what = what
        self.failures = 0
        self._kinds: set[str] = set()

    def failed(self, exc: BaseException) -> None:
        self.failures += 1
        reason = unavailable_reason(exc)
        kind = "database" if reason is not None else type(exc).__name__
        if kind in self._kinds:
            self.logger.debug("%s failed again (%d in a row): %s", self.what, self.failures, exc)
            return
        self._kinds.add(kind)
        if reason is not None:
            self.logger.warning(
                "%s failed: %s; retrying, logged again when it works", self.what, reason
            )
        else:
            self.logger.error(
                "%s failed; retrying, logged again when it works", self.what, exc_info=exc
            )

    def succeeded(self) -> None:
        if self.failures:
            self.logger.info("%s works again after %d failed runs", self.what, self.failures)
        self.failures = 0
        self._kinds.clear()
