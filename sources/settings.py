"""How to talk to upstreams, as plain values: the config builds these without importing the
HTTP client (sources.fetch uses them)."""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib import metadata

from sources.netguard import AddressPolicy


def _version() -> str:
    try:
        return metadata.version("feedmill")
    except metadata.PackageNotFoundError:  # running from a checkout that is not installed
        return "0"


def default_user_agent(contact: str | None = None) -> str:
    """``feedmill/VERSION`` plus, when given, a URL where upstream admins can learn about us."""
    suffix = f" (+{contact})" if contact else ""
    return f"feedmill/{_version()}{suffix}"


@dataclass(frozen=True, slots=True)
class FetchSettings:
    """How to talk to upstreams. Times are seconds.

    ``transport``: ``aiohttp`` (the default, chosen by bench/poll.py: httpx's API over an
    aiohttp session, with private-address blocking in its connector) or ``httpcore`` (httpx's
    own transport; it does not block private addresses).
    """

    connect_timeout: float = 10.0
    read_timeout: float = 30.0
    deadline: float = 60.0
    max_redirects: int = 5
    max_body_bytes: int = 15 * 1024 * 1024
    user_agent: str = default_user_agent()
    addresses: AddressPolicy = field(default_factory=AddressPolicy)
    max_connections: int = 100
    transport: str = "aiohttp"
