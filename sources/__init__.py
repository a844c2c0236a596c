"""The upstream side: fetch, parse and schedule -> frozen ParsedFeed / ParsedEntry values.

Imports nothing else of feedmill's.
"""

from typing import TYPE_CHECKING

from sources.lazy import lazy_exports

if TYPE_CHECKING:
    from sources.errors import ErrorKind, FeedmillError, FetchError, ParseError, SourceError
    from sources.fetch import fetch_document, fetch_feed, make_client
    from sources.model import Author, Enclosure, FetchResult, ParsedEntry, ParsedFeed, Validators
    from sources.netguard import AddressPolicy
    from sources.parse import parse_document
    from sources.policy import (
        PollSettings,
        PollState,
        RedirectState,
        next_poll_after_failure,
        next_poll_after_success,
    )
    from sources.settings import FetchSettings, default_user_agent

__all__ = [
    "AddressPolicy",
    "Author",
    "Enclosure",
    "ErrorKind",
    "FeedmillError",
    "FetchError",
    "FetchResult",
    "FetchSettings",
    "ParseError",
    "ParsedEntry",
    "ParsedFeed",
    "PollSettings",
    "PollState",
    "RedirectState",
    "SourceError",
    "Validators",
    "default_user_agent",
    "fetch_document",
    "fetch_feed",
    "make_client",
    "next_poll_after_failure",
    "next_poll_after_success",
    "parse_document",
]

# Each name is imported on first use (sources/lazy.py); the type checker reads the imports above.
if not TYPE_CHECKING:
    __getattr__, __dir__ = lazy_exports(__name__)
