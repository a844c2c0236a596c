"""Re-exports imported on first use (PEP 562), so that a package's ``__init__`` stays cheap.

A package lists its public names once, as ``if TYPE_CHECKING:`` imports (what the type
checker reads) and in ``__all__``; at run time :func:`lazy_exports` reads those imports from
the package's own source the first time a name is asked for::

    if TYPE_CHECKING:
        from sources.fetch import make_client
    __all__ = ["make_client"]
    if not TYPE_CHECKING:  # the type checker sees the imports above instead
        __getattr__, __dir__ = lazy_exports(__name__)

``from sources import make_client`` then imports sources.fetch (and aiohttp) on that line,
not whenever any module of the package is imported (tests/app/test_imports.py checks that
every name of ``__all__`` is there and is the module's own).
"""

from __future__ import annotations

import ast
import importlib
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any


def lazy_exports(package: str) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """A package's module ``__getattr__`` and ``__dir__`` for the names its ``__init__``
    imports under ``if TYPE_CHECKING:``."""
    home: dict[str, str] = {}  # name -> module, read on first use

    def names() -> dict[str, str]:
        if not home:
            source = sys.modules[package].__file__
            assert source is not None
            home.update(type_checking_imports(Path(source)))
        return home

    def __getattr__(name: str) -> Any:
        module = names().get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        setattr(sys.modules[package], name, value)  # the next lookup is a plain attribute
        return value

    def __dir__() -> list[str]:
        return sorted({*vars(sys.modules[package]), *names()})

    return __getattr__, __dir__


def type_checking_imports(path: Path) -> dict[str, str]:
    """name -> module, from the ``from MODULE import NAME`` lines under a top-level
    ``if TYPE_CHECKING:`` of the file at ``path``."""
    found: dict[str, str] = {}
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.If) and ast.unparse(node.test) == "TYPE_CHECKING":
            for statement in node.body:
                if isinstance(statement, ast.ImportFrom) and statement.module:
                    found.update((alias.name, statement.module) for alias in statement.names)
    return found
