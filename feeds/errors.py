"""feeds/'s part of the exception tree (see sources.errors for the whole of it)."""

from __future__ import annotations

from sources.errors import FeedmillError


class FeedsError(FeedmillError):
    """A curated feed could not be selected, rendered or written."""


class UnknownFeedError(FeedsError):
    def __init__(self, feed_id: str) -> None:
        super().__init__(f"no curated feed with id {feed_id!r}")
        self.feed_id = feed_id
