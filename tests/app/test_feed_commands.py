"""`feedmill preview`, `check-config` and `import-opml` (issue 6)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from feedmill.cli import main
from feedmill.config import load_config
from feedmill.opml_import import add_sources_to_text, plan_sources
from feeds.opml import OpmlFeed, read_opml
from tests.app.configs import outlets_config, serve_outlets, write_config
from tests.upstream import Upstream

OPML = b"""<?xml version="1.0"?>
<opml version="2.0"><head><title>my feeds</title></head><body>
  <outline text="Hardware">
    <outline type="rss" text="Server Desk" xmlUrl="https://serverdesk.example/feed.rss"/>
    <outline type="rss" text="Chip News!" xmlUrl="https://chips.example/atom" htmlUrl="https://chips.example/"/>
  </outline>
  <outline type="rss" title="Server Desk" xmlUrl="https://other.example/rss"/>
  <outline type="rss" text="gopher" xmlUrl="gopher://old.example/"/>
</body></opml>"""

COMMENTED = """# my feedmill
database: sqlite:///feedmill.db

sources:
  # the first one
  - id: server-desk
    url: https://serverdesk.example/feed.rss   # keep this comment

# curated feeds below
feeds:
  - id: all
    title: All
"""


@pytest.fixture
def config_file(tmp_path: Path, upstream: Upstream) -> Path:
    return write_config(tmp_path / "config.yaml", outlets_config(serve_outlets(upstream), tmp_path))


def test_preview_prints_the_feed_and_why(
    config_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--config", str(config_file), "fetch"]) == 0
    capsys.readouterr()
    assert main(["--config", str(config_file), "preview", "ai-infrastructure"]) == 0
    out = capsys.readouterr().out
    assert "Lenovo expands its Tianjin AI server hub" in out
    assert "bike lanes" not in out
    assert "2 entries in ai-infrastructure" in out
    assert main(["--config", str(config_file), "preview", "ai-infrastructure", "--why"]) == 0
    out = capsys.readouterr().out
    bike = next(line for line in out.splitlines() if "bike lanes" in line)
    assert bike.split()[0] == "out" and "no include rule matched" in bike
    lenovo = next(line for line in out.splitlines() if "Lenovo expands" in line)
    assert lenovo.split()[0] == "in" and "include keyword 'AI server' matched" in lenovo
    assert "exclude keyword 'deal' matched" in out


def test_preview_of_an_unknown_feed_fails(
    config_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--config", str(config_file), "preview", "nope"]) == 1
    assert "no curated feed with id 'nope'" in capsys.readouterr().err


def test_check_config(config_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--config", str(config_file), "check-config"]) == 0
    assert "ok: 3 sources, 2 feeds" in capsys.readouterr().out
    config = yaml.safe_load(config_file.read_text())
    config["feeds"][0]["include"].append({"regex": "(unclosed"})
    write_config(config_file, config)
    assert main(["--config", str(config_file), "check-config"]) == 2
    err = " ".join(capsys.readouterr().err.split())  # the console wraps long lines
    assert "feeds[0] (id 'ai-infrastructure').include[4]: invalid regular expression" in err
    assert not (config_file.parent / "feedmill.db").exists()


def test_read_opml_keeps_folders() -> None:
    feeds = read_opml(OPML)
    assert feeds[0] == OpmlFeed(
        "https://serverdesk.example/feed.rss", "Server Desk", None, ("Hardware",)
    )
    assert feeds[2].folders == ()


def test_import_opml_keeps_comments_and_skips_known_urls(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(COMMENTED, encoding="utf-8")
    opml = tmp_path / "subs.opml"
    opml.write_bytes(OPML)
    assert main(["--config", str(config), "import-opml", str(opml)]) == 0
    assert "2 sources added" in capsys.readouterr().out
    text = config.read_text(encoding="utf-8")
    assert text.startswith(COMMENTED.split("# curated")[0].rstrip("\n"))
    assert "# keep this comment" in text and "# curated feeds below\nfeeds:" in text
    settings = load_config(config)
    assert [(s.id, s.url, s.tags) for s in settings.sources] == [
        ("server-desk", "https://serverdesk.example/feed.rss", []),
        ("chip-news", "https://chips.example/atom", ["hardware"]),
        ("server-desk-2", "https://other.example/rss", []),
    ]
    assert main(["--config", str(config), "import-opml", str(opml)]) == 0  # idempotent
    assert "0 sources added" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("feeds: []\n", "feeds: []\n\nsources:\n  - id: a\n"),
        ("sources: []\nfeeds: []\n", "sources:\n  - id: a\n"),
        ("sources:\n- id: x\n  url: https://x.example/\n", "\n- id: a\n"),
    ],
)
def test_sources_are_added_to_any_layout(text: str, expected: str) -> None:
    settings = load_config_text(text)
    planned = plan_sources(settings, [OpmlFeed("https://a.example/", "A", None)])
    result = add_sources_to_text(text, planned)
    assert expected in result
    assert yaml.safe_load(result)["sources"][-1] == {
        "id": "a",
        "url": "https://a.example/",
        "title": "A",
    }


def load_config_text(text: str):  # type: ignore[no-untyped-def]
    from feedmill.config import Settings

    return Settings.model_validate(yaml.safe_load(text))
