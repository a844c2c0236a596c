"""systemd's readiness protocol (sd_notify): ``Type=notify`` units learn when feedmill is
ready, reloading and stopping. One datagram to the socket systemd names in NOTIFY_SOCKET;
nothing at all when it is not set (not run by systemd)."""

from __future__ import annotations

import logging
import os
import socket
import time

log = logging.getLogger("feedmill.systemd")


def notify(*fields: str) -> bool:
    """Send ``READY=1``, ``STATUS=...`` and the like; True if systemd was told."""
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return False
    if address.startswith("@"):  # an abstract socket
        address = "\0" + address[1:]
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.connect(address)
            sock.sendall("\n".join(fields).encode())
    except OSError as exc:
        log.warning("cannot notify systemd at %s: %s", address, exc)
        return False
    return True


def reloading() -> bool:
    """RELOADING=1 with the monotonic time systemd wants with it; READY=1 ends the reload."""
    return notify("RELOADING=1", f"MONOTONIC_USEC={time.monotonic_ns() // 1000}")
