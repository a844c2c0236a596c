"""The command line for scripts and people: --help without the heavy imports, --version,
`fetch SOURCE`, --json, exit codes, and operational errors as one line to act on."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from feedmill.cli import main
from tests.app.configs import outlets_config, serve_outlets, write_config
from tests.conftest import fixture_bytes
from tests.upstream import Upstream

HEAVY = (
    "sqlalchemy",
    "httpx",
    "feedparser",
    "pydantic",
    "yaml",
    "rich",
    "uvicorn",
    "starlette",
    "apscheduler",
    "prometheus_client",
    "alembic",
    "feedgen",
    "nh3",
)
# Runs feedmill's main() in a Python where the PostgreSQL driver cannot be imported.
WITHOUT_PSYCOPG = (
    "import sys; sys.modules['psycopg'] = None; "
    "from feedmill.cli import main; sys.exit(main(sys.argv[1:]))"
)


@pytest.fixture
def config_file(tmp_path: Path, upstream: Upstream) -> Path:
    sources = serve_outlets(upstream)
    sources["missing"] = upstream.url("/missing.rss")
    return write_config(tmp_path / "config.yaml", outlets_config(sources, tmp_path))


def run(*args: str, code: str | None = None) -> subprocess.CompletedProcess[str]:
    command = ["-c", code, *args] if code else ["-m", "feedmill", *args]
    return subprocess.run(
        [sys.executable, *command], capture_output=True, text=True, timeout=120, check=False
    )


def json_out(capsys: pytest.CaptureFixture[str], *args: str) -> Any:
    main([*args, "--json"])
    return json.loads(capsys.readouterr().out)


@pytest.mark.parametrize("command", [[], ["run"], ["fetch"], ["check-config"]])
def test_help_imports_none_of_the_heavy_libraries(command: list[str]) -> None:
    script = (
        "import sys\n"
        "from feedmill.cli import main\n"
        "try:\n"
        f"    main({[*command, '--help']!r})\n"
        "except SystemExit as exc:\n"
        "    assert exc.code == 0, exc.code\n"
        f"print(' '.join(m for m in {HEAVY!r} if m in sys.modules))\n"
    )
    done = run(code=script)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == ""  # no heavy module was imported


def test_version() -> None:
    done = run("--version")
    assert (done.returncode, done.stdout) == (0, "feedmill 0.1.0\n")


def test_fetch_pulls_only_the_named_sources(
    config_file: Path, upstream: Upstream, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--config", str(config_file), "fetch", "outlet-a", "--json"]) == 0
    (result,) = json.loads(capsys.readouterr().out)
    assert result["source"] == "outlet-a" and result["result"] == "new"
    assert (result["new"], result["updated"], result["unchanged"]) == (3, 0, 0)
    assert result["bytes"] == len(fixture_bytes("outlet-a.rss"))
    assert upstream.counts() == {"/a.rss": 1}
    assert main(["--config", str(config_file), "fetch", "outlet-a", "nope"]) == 2
    err = capsys.readouterr().err
    assert err == "feedmill: no active source with id 'nope' (`feedmill sources` lists them)\n"


def test_fetch_fails_when_a_source_fails_and_logs_only_with_v(
    config_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--config", str(config_file), "fetch"]) == 1  # `missing` is a 404
    done = capsys.readouterr()
    assert done.err == ""
    assert done.out.splitlines()[-1] == "4 sources pulled, 1 failed"
    assert main(["-v", "--config", str(config_file), "fetch", "outlet-b"]) == 0
    assert "pull outlet-b: unchanged" in capsys.readouterr().err


def test_json_for_scripts(config_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = ["--config", str(config_file)]
    main([*config, "fetch"])
    capsys.readouterr()
    sources = {s["id"]: s for s in json_out(capsys, *config, "sources")}
    assert sources["outlet-a"]["state"] == "ok" and sources["outlet-a"]["entries"] == 3
    assert sources["missing"]["state"] == "backing off"
    assert sources["missing"]["error_kind"] == "http_4xx"
    preview = json_out(capsys, *config, "preview", "ai-infrastructure")
    assert preview["count"] == 2
    lenovo = next(e for e in preview["entries"] if "Lenovo expands" in e["title"])
    why = json_out(capsys, *config, "preview", "ai-infrastructure", "--why")
    bike = next(e for e in why["entries"] if "bike lanes" in e["title"])
    assert bike["included"] is False and "no include rule matched" in bike["reason"]
    explained = json_out(capsys, *config, "explain", lenovo["uid"])
    assert explained["entry"]["uid"] == lenovo["uid"]
    verdicts = {f["feed"]: f["included"] for f in explained["feeds"]}
    assert verdicts == {"ai-infrastructure": True, "everything": True}
    checked = json_out(capsys, *config, "check-config")
    assert checked == {
        "config": str(config_file),
        "ok": True,
        "problems": [],
        "sources": 4,
        "feeds": 2,
    }


def test_bad_usage_is_exit_status_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["fetch", "--no-such-option"])
    assert exited.value.code == 2


def test_check_config_reports_every_problem_in_one_pass(tmp_path: Path) -> None:
    config = {
        "database": "postgresql://postgres@127.0.0.1/test",
        "sources": [
            {"id": "a", "url": "not a url"},
            {"id": "a", "url": "https://a.example/"},
        ],
        "feeds": [{"id": "f", "title": "F", "sources": ["b"], "limit": 0}],
    }
    path = write_config(tmp_path / "config.yaml", config)
    done = run("--config", str(path), "check-config", "--json", code=WITHOUT_PSYCOPG)
    assert done.returncode == 2, done.stderr
    problems = json.loads(done.stdout)["problems"]
    name = str(path)
    assert problems == [
        f"{name}: sources[0] (id 'a').url: 'not a url' is not an http(s) URL",
        f"{name}: feeds[0] (id 'f').limit: Input should be greater than or equal to 1",
        f"{name}: sources: id 'a' is used 2 times (sources[0], sources[1])",
        f"{name}: feeds[0] (id 'f').sources: no source has id 'b'",
        f"{name}: database: the postgresql database driver (psycopg) is not installed: "
        "pip install 'feedmill[postgres]'",
    ]


def test_a_missing_database_driver_names_the_extra(tmp_path: Path) -> None:
    path = write_config(tmp_path / "config.yaml", {"database": "postgresql://db.example/x"})
    done = run("--config", str(path), "sources", code=WITHOUT_PSYCOPG)
    assert (done.returncode, done.stderr) == (
        1,
        "feedmill: the postgresql database driver (psycopg) is not installed: "
        "pip install 'feedmill[postgres]'\n",
    )


def test_an_unreachable_database_names_host_and_port(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    closed = "postgresql+psycopg://postgres@127.0.0.1:1/test"  # nothing listens on port 1
    path = write_config(tmp_path / "config.yaml", {"database": closed})
    assert main(["--config", str(path), "sources"]) == 1
    assert capsys.readouterr().err == (
        "feedmill: cannot connect to the database at 127.0.0.1:1: Connection refused\n"
    )
    assert main(["-v", "--config", str(path), "sources"]) == 1
    assert "Traceback (most recent call last)" in capsys.readouterr().err  # with -v only


def test_a_locked_sqlite_file_says_so(
    config_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--config", str(config_file), "sources"]) == 0  # creates the schema
    capsys.readouterr()
    holder = sqlite3.connect(tmp_path / "feedmill.db", isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another process writing, for longer than 10 s
    try:
        assert main(["--config", str(config_file), "sources"]) == 1
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    err = capsys.readouterr().err
    assert err.startswith(f"feedmill: the SQLite database {tmp_path / 'feedmill.db'} is locked")
    assert len(err.splitlines()) == 1


def test_fetch_shows_a_progress_bar_on_a_terminal(config_file: Path) -> None:
    """stderr a terminal: a progress bar there while pulling, the table on stdout after."""
    controller, terminal = os.openpty()
    env = {**os.environ, "TERM": "xterm", "COLUMNS": "120"}
    process = subprocess.Popen(
        [sys.executable, "-m", "feedmill", "--config", str(config_file), "fetch"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=terminal,
        env=env,
    )
    os.close(terminal)
    shown = bytearray()
    reader = threading.Thread(target=_read_all, args=(controller, shown))
    reader.start()
    out, _ = process.communicate(timeout=120)
    reader.join(timeout=120)
    os.close(controller)
    screen = shown.decode(errors="replace")
    assert process.returncode == 1
    assert "pulling" in screen and "4/4" in screen
    assert "pull missing" not in screen  # no log lines without -v
    assert out.decode().splitlines()[-1] == "4 sources pulled, 1 failed"


def _read_all(fd: int, into: bytearray) -> None:
    while True:
        try:
            chunk = os.read(fd, 4096)
        except OSError:  # EIO: the other side closed
            return
        if not chunk:
            return
        into.extend(chunk)
