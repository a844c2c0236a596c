"""store/'s part of the exception tree (see sources.errors for the whole of it)."""

from __future__ import annotations

from sources.errors import FeedmillError


class StoreError(FeedmillError):
    """The database could not be used as asked."""


class SchemaError(StoreError):
    """The database schema is not one this version of feedmill can use."""


class UnknownSourceError(StoreError):
    """No source with this id is stored."""

    def __init__(self, source_id: str) -> None:
        super().__init__(f"no source with id {source_id!r}")
        self.source_id = source_id


class DatabaseUnavailable(StoreError):
    """The database did not answer: the server is down, unreachable or refusing connections.
    Raised by reads (and :meth:`store.Store.ping`); the caller may serve what it had."""
