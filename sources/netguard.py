"""Refuse connections to private networks, checked at connect time on every hop.

An upstream (or a redirect it sends) may point at loopback, link-local, private or
multicast addresses: an intranet service, a cloud metadata endpoint. :class:`AddressPolicy`
decides from the address actually connected to, after DNS, so a public name that resolves to
a private address is refused too. ``GuardedConnector`` (sources/fetch.py) applies it inside
aiohttp's connector, which every new connection (every redirect hop included) goes through.
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address


@dataclass(frozen=True, slots=True)
class AddressPolicy:
    """``block_private``: refuse non-public addresses, except hosts or networks allowed."""

    block_private: bool = True
    allow_hosts: frozenset[str] = frozenset()
    allow_networks: tuple[Network, ...] = ()

    @classmethod
    def from_allowlist(cls, block_private: bool, allowlist: Iterable[str]) -> AddressPolicy:
        """``allowlist`` items are host names (``intranet.example``) or CIDRs (``10.0.0.0/8``)."""
        hosts: set[str] = set()
        networks: list[Network] = []
        for item in allowlist:
            try:
                networks.append(ipaddress.ip_network(item.strip(), strict=False))
            except ValueError:
                hosts.add(item.strip().lower().rstrip("."))
        return cls(block_private, frozenset(hosts), tuple(networks))

    def refusal(self, host: str, address: str) -> str | None:
        """Why connecting to ``address`` (resolved from ``host``) is refused, or None.

        A pure function of (policy, host, address), remembered for the last few thousand
        pairs: deciding costs tens of microseconds (``ipaddress`` builds networks from strings
        in ``is_global``), and a poll cycle opens hundreds of connections to the same hosts.
        """
        return _refusal(self, host, address)

    def _decide(self, host: str, address: str) -> str | None:
        if not self.block_private or host.lower().rstrip(".") in self.allow_hosts:
            return None
        ip = ipaddress.ip_address(address.split("%", 1)[0])
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        if any(ip in network for network in self.allow_networks):
            return None
        for judged in (ip, *embedded_ipv4(ip)):
            if is_private(judged):
                return f"{host} resolves to {ip}, a non-public address (fetch.allow_addresses)"
        return None


@functools.lru_cache(maxsize=4096)
def _refusal(policy: AddressPolicy, host: str, address: str) -> str | None:
    return policy._decide(host, address)


# NAT64's well-known prefix (RFC 6052): the last 32 bits are the IPv4 address reached.
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")


def embedded_ipv4(ip: Address) -> tuple[ipaddress.IPv4Address, ...]:
    """The IPv4 addresses an IPv6 address leads to: 6to4 (2002::/16), NAT64 (64:ff9b::/96)
    and both ends of Teredo (2001::/32). A private one makes the IPv6 address private too."""
    if not isinstance(ip, ipaddress.IPv6Address):
        return ()
    found = [ip.sixtofour, *(ip.teredo or ())]
    if ip in _NAT64:
        found.append(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
    return tuple(address for address in found if address is not None)


def is_private(ip: Address) -> bool:
    """Loopback, link-local, private (RFC 1918, ULA, CGNAT...), multicast or unspecified;
    NAT64 addresses are judged by the IPv4 address they embed."""
    if isinstance(ip, ipaddress.IPv6Address) and ip in _NAT64:
        return False  # judged by embedded_ipv4
    return (
        ip.is_loopback
        or ip.is_link_local
        or ip.is_private
        or ip.is_multicast
        or ip.is_unspecified
        or ip.is_reserved
        or not ip.is_global
    )
