"""Hostile config at the edges: source URLs that check-config must refuse (naming the key),
and OPML files whose outlines carry such URLs or control characters."""

from __future__ import annotations

from pathlib import Path

import pytest

from feedmill.cli import main
from feedmill.config import load_config
from feedmill.errors import ConfigError
from tests.app.configs import write_config

BAD_URLS = [
    ("http://e.example/feed\nx", "whitespace or a control character"),
    ("http://e.example/fe\ted", "whitespace or a control character"),
    ("http://0177.0.0.1/feed", "not a canonical IPv4 address"),
    ("http://2130706433/feed", "not a canonical IPv4 address"),
    ("http://0x7f.0.0.1/feed", "not a canonical IPv4 address"),
    ("http://127.1/feed", "not a canonical IPv4 address"),
    ("http://user:secret@e.example/feed", "user info"),
    ("http://e.example:99999/feed", "cannot be parsed"),
    ("http://[::1/feed", "cannot be parsed"),
]


@pytest.mark.parametrize(("url", "problem"), BAD_URLS)
def test_check_config_refuses_a_source_url_naming_the_key(
    tmp_path: Path, url: str, problem: str, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(
        tmp_path / "config.yaml",
        {"database": f"sqlite:///{tmp_path / 'f.db'}", "sources": [{"id": "s", "url": url}]},
    )
    with pytest.raises(ConfigError) as raised:
        load_config(config)
    [line] = raised.value.problems
    assert line.startswith(f"{config}: sources[0] (id 's').url: ") and problem in line
    assert main(["--config", str(config), "check-config"]) == 2
    captured = capsys.readouterr()
    assert "sources[0] (id 's').url" in captured.err + captured.out
    assert "Traceback" not in captured.err


OPML = """<?xml version="1.0"?>
<opml version="2.0"><head><title>subs</title></head><body>
  <outline text="Good" title="Good &#127;DEL" type="rss" xmlUrl="https://good.example/feed"/>
  <outline text="Newline" type="rss" xmlUrl="http://e.example/feed&#10;x"/>
  <outline text="Octal" type="rss" xmlUrl="http://0177.0.0.1/feed"/>
  <outline text="Secret" type="rss" xmlUrl="http://user:pass@e.example/feed"/>
  <outline text="Controls &#x85;&#x9b;[2J" type="rss" xmlUrl="https://other.example/feed"/>
</body></opml>
"""


def test_import_opml_refuses_bad_urls_one_by_one_and_cleans_titles(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(f"database: sqlite:///{tmp_path / 'f.db'}\n", encoding="utf-8")
    opml = tmp_path / "subs.opml"
    opml.write_text(OPML, encoding="utf-8")
    assert main(["--config", str(config), "import-opml", str(opml)]) == 0
    out = capsys.readouterr().out
    assert "2 sources added" in out
    for refused in ("feed\\nx", "0177.0.0.1", "user:pass@"):
        assert any(line.startswith("refused") and refused in line for line in out.splitlines())
    settings = load_config(config)
    assert [(s.url, s.title) for s in settings.sources] == [
        ("https://good.example/feed", "Good DEL"),
        ("https://other.example/feed", "Controls [2J"),
    ]
    assert not list(tmp_path.glob(".*.import"))


def test_an_import_that_breaks_the_config_names_the_config_not_a_temporary_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "config.yaml"
    # valid, but a flow-style list that items cannot be appended to as block lines
    config.write_text(f"database: sqlite:///{tmp_path / 'f.db'}\nsources:\n  [ ]\n")
    opml = tmp_path / "subs.opml"
    opml.write_text(OPML, encoding="utf-8")
    assert main(["--config", str(config), "import-opml", str(opml)]) == 2
    err = capsys.readouterr().err
    assert ".import" not in err and str(config) in err
    assert not list(tmp_path.glob(".*.import"))
