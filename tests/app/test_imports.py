"""What a command imports: the packages re-export their names on first use (sources/lazy.py),
and `check-config` and `sources` load neither the server, the HTTP client, Alembic nor numpy.
"""

from __future__ import annotations

import ast
import importlib
import subprocess
import sys
from pathlib import Path

import pytest

from tests.app.configs import write_config
from tests.conftest import ROOT

PACKAGES = ("sources", "store", "feeds", "store.stories", "store.search")
# Libraries that neither `check-config` nor `sources` (on a database at the current schema)
# has any use for; each took a good part of their start-up when they were imported anyway.
UNUSED = (
    "aiohttp",
    "alembic",
    "apscheduler",
    "feedgen",
    "feedparser",
    "httpx",
    "nh3",
    "numpy",
    "prometheus_client",
    "scipy",
    "starlette",
    "uvicorn",
)
NOT_FOR_CHECK_CONFIG = (*UNUSED, "rich", "sqlalchemy.ext.asyncio", "store.store")


def type_checked_names(package: str) -> dict[str, str]:
    """name -> module, from the ``if TYPE_CHECKING:`` imports of the package's __init__."""
    path = ROOT / Path(*package.split(".")) / "__init__.py"
    names: dict[str, str] = {}
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.If) and ast.unparse(node.test) == "TYPE_CHECKING":
            for statement in node.body:
                assert isinstance(statement, ast.ImportFrom) and statement.module
                names.update((alias.name, statement.module) for alias in statement.names)
    return names


@pytest.mark.parametrize("package", PACKAGES)
def test_every_public_name_is_the_one_the_type_checker_sees(package: str) -> None:
    module = importlib.import_module(package)
    names = type_checked_names(package)
    assert sorted(names) == sorted(module.__all__)
    for name, home in names.items():
        assert getattr(module, name) is getattr(importlib.import_module(home), name), name
    assert set(module.__all__) <= set(dir(module))
    with pytest.raises(AttributeError, match="no attribute 'nothing_here'"):
        _ = module.nothing_here


def test_a_module_of_a_package_does_not_import_its_siblings() -> None:
    script = (
        "import sys\n"
        "import sources.errors, store.model, feeds.model\n"
        "print(' '.join(m for m in ('sources.fetch', 'store.store', 'feeds.app') "
        "if m in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == ""


def loaded_after(args: list[str], unwanted: tuple[str, ...]) -> list[str]:
    """The unwanted modules loaded by `feedmill ARGS`, run in a process of its own."""
    script = (
        "import sys\n"
        "from feedmill.cli import main\n"
        "status = main(sys.argv[1:])\n"
        f"print(' '.join(m for m in {unwanted!r} if m in sys.modules))\n"
        "sys.exit(status)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, *args], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()[-1].split()


@pytest.fixture
def config(tmp_path: Path) -> Path:
    """Stories clustered (a `dedupe: story` feed), a regex rule: the costly settings."""
    return write_config(
        tmp_path / "config.yaml",
        {
            "database": f"sqlite:///{tmp_path / 'feedmill.db'}",
            "sources": [
                {"id": "a", "url": "https://a.example/feed.xml"},
                {"id": "b", "url": "https://b.example/rss", "max_entries": 10},
            ],
            "feeds": [
                {"id": "stories", "title": "Stories", "dedupe": "story"},
                {"id": "gpus", "title": "GPUs", "include": [{"regex": "GPUs?"}]},
            ],
        },
    )


def test_check_config_imports_only_the_config(config: Path) -> None:
    assert loaded_after(["--config", str(config), "check-config"], NOT_FOR_CHECK_CONFIG) == []


def test_sources_imports_only_the_config_and_the_store(config: Path) -> None:
    loaded_after(["--config", str(config), "db", "upgrade"], ())
    assert loaded_after(["--config", str(config), "sources"], UNUSED) == []
    assert loaded_after(["--config", str(config), "sources", "--json"], UNUSED) == []
