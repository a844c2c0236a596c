"""The upstream side: fetch, parse and schedule -> frozen ParsedFeed / ParsedEntry values.

Imports nothing else of feedmill's.
"""

from sources.errors import ErrorKind, FeedmillError, FetchError, ParseError, SourceError
from sources.fetch import (
    FetchSettings,
    default_user_agent,
    fetch_document,
    fetch_feed,
    make_client,
)
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
