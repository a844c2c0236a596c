"""Re-exports imported on first use (PEP 562), so that a package's ``__init__`` stays cheap.

A package lists its public names once at run time, as a mapping from module to names, and
once for the type checker, as ``if TYPE_CHECKING:`` imports (tests/app/test_imports.py
keeps the two equal)::

    if TYPE_CHECKING:
        from sources.fetch import make_client
    __all__ = ["make_client"]
    if not TYPE_CHECKING:  # the type checker sees the imports above instead
        __getattr__, __dir__ = lazy_exports(__name__, {"sources.fetch": ["make_client"]})

``from sources import make_client`` then imports sources.fetch (and aiohttp) on that line,
not whenever any module of the package is imported.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Iterable, Mapping
from typing import Any


def lazy_exports(
    package: str, exports: Mapping[str, Iterable[str]]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """A package's module ``__getattr__`` and ``__dir__`` for ``exports``: module -> names."""
    home = {name: module for module, names in exports.items() for name in names}

    def __getattr__(name: str) -> Any:
        module = home.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        setattr(sys.modules[package], name, value)  # the next lookup is a plain attribute
        return value

    def __dir__() -> list[str]:
        return sorted({*vars(sys.modules[package]), *home})

    return __getattr__, __dir__
