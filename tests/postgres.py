"""A private PostgreSQL schema per test, on CI's server (127.0.0.1:5432, user postgres).

    with private_schema() as url:     # postgresql+psycopg://...?options=-csearch_path=fm_...
        ...                           # the schema is dropped afterwards

Skips when the server is unreachable, fails instead when FEEDMILL_REQUIRE_POSTGRES=1.
FEEDMILL_TEST_POSTGRES overrides the server's URL.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote

import pytest

SERVER = os.environ.get("FEEDMILL_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")


def _connect() -> object:
    try:
        import psycopg
    except ImportError:
        return _unavailable("psycopg is not installed")
    try:
        return psycopg.connect(SERVER, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        return _unavailable(f"PostgreSQL is not reachable at {SERVER}: {exc}")


def _unavailable(why: str) -> None:
    if os.environ.get("FEEDMILL_REQUIRE_POSTGRES", "") not in ("", "0"):
        pytest.fail(f"FEEDMILL_REQUIRE_POSTGRES is set but {why}")
    pytest.skip(why)


@contextmanager
def private_schema() -> Iterator[str]:
    admin = _connect()
    schema = f"fm_{uuid.uuid4().hex[:16]}"
    with admin:  # type: ignore[attr-defined]
        admin.execute(f'CREATE SCHEMA "{schema}"')  # type: ignore[attr-defined]
        try:
            base = SERVER.replace("postgresql://", "postgresql+psycopg://", 1)
            yield f"{base}?options={quote(f'-csearch_path={schema}')}"
        finally:
            admin.execute(f'DROP SCHEMA "{schema}" CASCADE')  # type: ignore[attr-defined]


@contextmanager
def database_url(kind: str, folder: Path) -> Iterator[str]:
    """A fresh database of ``kind`` (``sqlite``: a file in ``folder``; ``postgresql``: a
    private schema)."""
    if kind == "sqlite":
        yield f"sqlite:///{folder / 'feedmill.db'}"
        return
    with private_schema() as url:
        yield url
