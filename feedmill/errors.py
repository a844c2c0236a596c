"""The composition root's part of the exception tree (see sources.errors for the whole)."""

from __future__ import annotations

from sources.errors import FeedmillError


class ConfigError(FeedmillError):
    """config.yaml cannot be used; the message names the file, the key path and the problem."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


class UnknownEntryError(FeedmillError):
    """`feedmill explain`: no stored entry has this uid or link."""


class UsageError(FeedmillError):
    """The command line asks for something that does not exist (exit status 2)."""
