"""The installed feedmill's version (``feedmill --version``, the status page, /metrics)."""

from __future__ import annotations

from functools import cache
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as _installed_version


@cache
def feedmill_version() -> str:
    try:
        return _installed_version("feedmill")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown"
