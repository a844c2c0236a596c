from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from lxml import etree

from feedmill.cli import build_parser, main
from tests.app.configs import outlets_config, serve_outlets, write_config
from tests.conftest import fixture_bytes
from tests.upstream import Upstream


@pytest.fixture
def config_file(tmp_path: Path, upstream: Upstream) -> Path:
    sources = serve_outlets(upstream)
    sources["broken"] = upstream.add(
        "/page.html", fixture_bytes("page-without-feed.html"), content_type="text/html"
    )
    sources["missing"] = upstream.url("/missing.rss")
    return write_config(tmp_path / "config.yaml", outlets_config(sources, tmp_path))


def minimal_config(tmp_path: Path, database: Path | None = None) -> Path:
    database = database or tmp_path / "feedmill.db"
    config = {"database": f"sqlite:///{database}", "feeds": [{"id": "all", "title": "All"}]}
    return write_config(tmp_path / "config.yaml", config)


def rows(output: str) -> dict[str, list[str]]:
    table = {}
    for line in output.splitlines():
        cells = line.split()
        if cells and cells[0] != "source":
            table[cells[0]] = cells[1:]
    return table


def test_fetch_prints_what_each_source_did(
    config_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--config", str(config_file), "fetch"]) == 1  # two sources failed
    first = rows(capsys.readouterr().out)
    assert first["outlet-a"][:4] == ["new", "3", "0", "0"]
    assert first["outlet-b"][:4] == ["new", "2", "0", "0"]
    assert first["broken"][:5] == ["error", "-", "-", "-", "not_a_feed:"]
    assert first["missing"][:5] == ["error", "-", "-", "-", "http_4xx:"]
    assert main(["--config", str(config_file), "fetch"]) == 1
    second = rows(capsys.readouterr().out)
    assert second["outlet-a"][0] == "unchanged"  # 304
    assert second["outlet-b"][0] == "unchanged"


def test_fetch_reads_the_config_named_by_the_environment(
    config_file: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FEEDMILL_CONFIG", str(config_file))
    assert main(["fetch", "outlet-a"]) == 0
    assert "outlet-a" in capsys.readouterr().out


def test_build_writes_every_feed_and_the_index(
    config_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--config", str(config_file), "fetch"]) == 1
    out = tmp_path / "public"
    assert main(["--config", str(config_file), "build", "--out", str(out)]) == 0
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()) == [
        "feeds.opml",
        "feeds/ai-infrastructure.atom",
        "feeds/ai-infrastructure.json",
        "feeds/ai-infrastructure.rss",
        "feeds/everything.atom",
        "feeds/everything.json",
        "feeds/everything.rss",
        "index.html",
        "sources.opml",
    ]
    atom = (out / "feeds/ai-infrastructure.atom").read_bytes()
    assert b"Lenovo expands its Tianjin AI server hub" in atom
    # A static server's Last-Modified is the file's time: the document's own date.
    updated = etree.fromstring(atom).findtext("{http://www.w3.org/2005/Atom}updated")
    modified = datetime.fromtimestamp((out / "feeds/ai-infrastructure.atom").stat().st_mtime, UTC)
    assert modified.isoformat() == updated
    index = (out / "index.html").read_text(encoding="utf-8")
    assert "written by feedmill build at" in index and "5 sources: 3 ok, 2 backing off" in index


def test_db_upgrade_and_current(config_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--config", str(config_file), "db", "current"]) == 0
    assert "empty" in capsys.readouterr().out
    assert main(["--config", str(config_file), "db", "upgrade"]) == 0
    assert main(["--config", str(config_file), "db", "current"]) == 0
    assert re.search(r"^\d{4}", capsys.readouterr().out.splitlines()[-1])


@pytest.mark.parametrize("command", [[], ["run"], ["fetch"], ["build"], ["db"], ["db", "upgrade"]])
def test_every_command_explains_itself(
    command: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        build_parser().parse_args([*command, "--help"])
    assert exited.value.code == 0
    help_text = capsys.readouterr().out
    assert help_text.startswith("usage: feedmill")
    assert len(help_text.splitlines()) > 3


async def test_run_serves_pulls_and_stops_cleanly_on_sigterm(
    tmp_path: Path, upstream: Upstream
) -> None:
    config = write_config(
        tmp_path / "config.yaml", outlets_config(serve_outlets(upstream), tmp_path)
    )
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "feedmill",
        "--config",
        str(config),
        "run",
        stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert process.stderr is not None
    log: list[str] = []

    async def read_until(pattern: str) -> re.Match[str]:
        while True:
            line = (await asyncio.wait_for(process.stderr.readline(), timeout=60)).decode()
            assert line, "feedmill run exited early:\n" + "".join(log)
            log.append(line)
            if found := re.search(pattern, line):
                return found

    try:
        port = int((await read_until(r"listening on http://127\.0\.0\.1:(\d+)/")).group(1))
        await read_until(r"heartbeat: pulled 3 sources, 0 failed")
        async with httpx.AsyncClient() as client:
            response = await client.get(f"http://127.0.0.1:{port}/feeds/ai-infrastructure.atom")
        assert response.status_code == 200
        assert b"Tianjin" in response.content
    finally:
        process.send_signal(signal.SIGTERM)
        remaining = (await asyncio.wait_for(process.stderr.read(), timeout=60)).decode()
        code = await process.wait()
    assert code == 0, "".join(log) + remaining
    assert "stopped" in remaining
    assert "Traceback" not in "".join(log) + remaining
    with sqlite3.connect(tmp_path / "feedmill.db") as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert db.execute("SELECT count(*) FROM entries").fetchone() == (7,)


def test_a_database_that_cannot_be_opened_is_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = minimal_config(tmp_path, database=tmp_path / "no" / "such" / "folder" / "x.db")
    assert main(["--config", str(path), "fetch"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("feedmill: cannot open the database: folder ")
    assert "does not exist" in err
    assert "Traceback" not in err


def test_db_upgrade_refuses_a_foreign_database(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with sqlite3.connect(tmp_path / "feedmill.db") as db:
        db.execute("CREATE TABLE invoices (id INTEGER PRIMARY KEY)")
    path = minimal_config(tmp_path)
    assert main(["--config", str(path), "db", "upgrade"]) == 1
    assert "has tables but no feedmill revision" in capsys.readouterr().err


def test_build_reports_a_folder_it_cannot_write(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = minimal_config(tmp_path)
    blocker = tmp_path / "blocker"
    blocker.write_text("a file where a folder should be")
    assert main(["--config", str(path), "build", "--out", str(blocker / "public")]) == 1
    assert "cannot write" in capsys.readouterr().err


def test_sources_prints_each_sources_polling_state(
    config_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--config", str(config_file), "fetch"]) == 1
    capsys.readouterr()
    assert main(["--config", str(config_file), "sources"]) == 0
    table = rows(capsys.readouterr().out)
    assert table["outlet-a"][0] == "ok"
    assert table["outlet-a"][-1] == "3"  # entries stored
    assert table["missing"][:3] == ["backing", "off", table["missing"][2]]
    assert "http_4xx:" in table["missing"]
    assert table["broken"][-1] == "0"


def test_sources_are_listed_a_page_at_a_time_failing_first(
    config_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--config", str(config_file), "fetch"]) == 1
    capsys.readouterr()
    assert main(["--config", str(config_file), "sources", "--per-page", "2"]) == 0
    out = capsys.readouterr().out
    first = [line.split()[0] for line in out.splitlines()[1:3]]
    assert sorted(first) == ["broken", "missing"]  # the failing ones come first
    assert out.splitlines()[-1] == (
        "sources 1-2 of 5 (3 ok, 2 backing off); --page 2 for more, --all for every one"
    )
    assert main(["--config", str(config_file), "sources", "--per-page", "2", "--page", "3"]) == 0
    out = capsys.readouterr().out
    assert sorted(rows(out)) == ["id", "outlet-c", "sources"]  # ok ones after, by id
    assert out.splitlines()[-1] == "sources 5-5 of 5 (3 ok, 2 backing off)"
    assert main(["--config", str(config_file), "sources", "--state", "ok", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [s["id"] for s in listed] == ["outlet-a", "outlet-b", "outlet-c"]
    assert main(["--config", str(config_file), "sources", "--search", "OUTLET-B"]) == 0
    assert sorted(rows(capsys.readouterr().out)) == ["id", "outlet-b", "sources"]
    assert main(["--config", str(config_file), "sources", "--state", "sleeping"]) == 2
    assert "--state: one of ok" in capsys.readouterr().err
