"""The store suite runs on SQLite and on PostgreSQL: ``db_url`` is parametrised here."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.postgres import private_schema


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'feedmill.db'}"
        return
    with private_schema() as url:
        yield url
