"""Shared fixtures: the corpus, a loopback upstream, a migrated SQLite store, a fake clock."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from store import Store, ensure_schema
from tests.atom import atom_errors
from tests.upstream import Upstream

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(__file__).resolve().parent / "data"


def _required(variable: str) -> bool:
    return os.environ.get(variable, "") not in ("", "0")


def corpus_path() -> Path | None:
    path = Path(os.environ.get("FEEDMILL_CORPUS") or ROOT.parent / "shared" / "corpus")
    return path if path.is_dir() else None


@pytest.fixture(scope="session")
def corpus() -> Path:
    """../shared/corpus (or $FEEDMILL_CORPUS); skips when absent, fails in CI."""
    path = corpus_path()
    if path is None:
        if _required("FEEDMILL_REQUIRE_CORPUS"):
            pytest.fail("FEEDMILL_REQUIRE_CORPUS is set but the corpus is missing")
        pytest.skip("the shared corpus is not here (set FEEDMILL_CORPUS)")
    return path


def debian_tool(command: str, package: str) -> str:
    """The path of ``command``. Missing, it is installed with apt-get (Debian ``package``)
    when running as root; still missing, the test fails as root or in CI (as for the
    corpus), else it skips."""
    path = shutil.which(command)
    if path is None and os.geteuid() == 0 and shutil.which("apt-get"):
        wait = ["-o", "DPkg::Lock::Timeout=300"]  # another apt-get may hold the lock
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", *wait, "update", "-qq"], env=env, check=False)
        subprocess.run(["apt-get", *wait, "install", "-y", "-qq", package], env=env, check=False)
        path = shutil.which(command)
    if path is not None:
        return path
    why = f"{command} is missing (Debian package {package}; installed by the tests as root)"
    if os.geteuid() == 0 or _required("FEEDMILL_REQUIRE_CORPUS"):
        pytest.fail(why)
    pytest.skip(why)


@pytest.fixture(scope="session")
def validate_atom(corpus: Path) -> Callable[[bytes], None]:
    """Asserts that a document is valid Atom (RFC 4287 schema and rules)."""

    def check(document: bytes) -> None:
        errors = atom_errors(document, corpus / "schema")
        assert errors == [], "invalid Atom:\n" + "\n".join(errors)

    return check


@pytest.fixture
def upstream() -> Iterator[Upstream]:
    with Upstream() as server:
        yield server


class FakeClock:
    """An injected clock that only moves when told."""

    def __init__(self, start: datetime | None = None) -> None:
        self.now = start or datetime(2026, 11, 24, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta) -> None:
        self.now += delta


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'feedmill.db'}"


@pytest.fixture
async def store(db_url: str) -> AsyncIterator[Store]:
    opened = Store.open(db_url)
    await ensure_schema(opened)
    yield opened
    await opened.close()


def fixture_bytes(name: str) -> bytes:
    return (DATA / name).read_bytes()
