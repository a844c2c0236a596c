"""Debian packages a test needs (chromium, systemd-analyze): found on the PATH, else installed
with apt-get when running as root (as CI does); a test that still lacks one fails in CI and
is skipped elsewhere."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest


def debian_command(command: str, package: str) -> str:
    """The path of ``command``, installing ``package`` first if it is missing and we are root."""
    found = shutil.which(command)
    if found is None and os.geteuid() == 0:
        quiet = {"capture_output": True, "check": False, "timeout": 900}
        subprocess.run(["apt-get", "update", "-qq"], **quiet)  # type: ignore[call-overload]
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(  # type: ignore[call-overload]
            ["apt-get", "install", "-y", "-qq", package], env=env, **quiet
        )
        found = shutil.which(command)
    if found is None:
        message = f"{command} is missing (Debian package {package}; installed here as root)"
        if os.environ.get("CI") or os.geteuid() == 0:
            pytest.fail(message)
        pytest.skip(message)
    return found
