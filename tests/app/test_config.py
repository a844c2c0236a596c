from __future__ import annotations

import dataclasses
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import BaseModel

from feedmill.cli import main
from feedmill.config import (
    FeedSettings,
    FetchConfig,
    HttpSettings,
    LinksSettings,
    PerHostSettings,
    RetentionSettings,
    RuleSettings,
    SchedulerSettings,
    SearchConfig,
    ServerSettings,
    Settings,
    SourceSettings,
    WebSubSettings,
    config_path,
    load_config,
)
from feedmill.errors import ConfigError
from store.stories import StorySettings
from tests.conftest import ROOT

GOOD: dict[str, Any] = {
    "sources": [
        {"id": "a", "url": "https://a.example/feed", "tags": ["news"]},
        {"id": "b", "url": "https://b.example/feed", "interval": "2h"},
    ],
    "feeds": [{"id": "f", "title": "F", "sources": ["b"], "tags": ["news"]}],
}


def load(tmp_path: Path, config: Any) -> Settings:
    path = tmp_path / "config.yaml"
    path.write_text(config if isinstance(config, str) else yaml.safe_dump(config), encoding="utf-8")
    return load_config(path)


def problems(tmp_path: Path, config: Any) -> list[str]:
    with pytest.raises(ConfigError) as raised:
        load(tmp_path, config)
    return raised.value.problems


def with_changes(**changes: Any) -> dict[str, Any]:
    return {**GOOD, **changes}


def test_a_good_config_becomes_definitions(tmp_path: Path) -> None:
    settings = load(tmp_path, GOOD)
    sources = settings.source_definitions()
    assert [(s.id, s.interval) for s in sources] == [
        ("a", timedelta(minutes=30)),
        ("b", timedelta(hours=2)),
    ]
    [feed] = settings.feed_definitions()
    assert feed.source_ids == ("b", "a")
    assert settings.database == f"sqlite:///{tmp_path / 'feedmill.db'}"
    assert settings.site().base_url == "http://127.0.0.1:8080/"


def test_the_repository_config_is_valid() -> None:
    settings = load_config(ROOT / "config.yaml")
    [ai] = [f for f in settings.feed_definitions() if f.id == "ai-infrastructure"]
    assert len(ai.source_ids) >= 5
    assert {"GPU", "LLM", "data center", "AI server"} <= set(ai.include)


def test_a_feed_without_sources_or_tags_draws_from_every_source(tmp_path: Path) -> None:
    settings = load(tmp_path, with_changes(feeds=[{"id": "all", "title": "All"}]))
    assert settings.feed_definitions()[0].source_ids == ("a", "b")


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        ({**GOOD, "colour": "blue"}, "colour: unknown key"),
        (with_changes(server={"prot": 80}), "server.prot: unknown key"),
        (
            with_changes(sources=[{**GOOD["sources"][0], "ur": "x"}, GOOD["sources"][1]]),
            "sources[0] (id 'a').ur: unknown key",
        ),
        (
            with_changes(sources=[GOOD["sources"][0], GOOD["sources"][0], GOOD["sources"][1]]),
            "sources: id 'a' is used 2 times (sources[0], sources[1])",
        ),
        (
            with_changes(feeds=[GOOD["feeds"][0], GOOD["feeds"][0]]),
            "feeds: id 'f' is used 2 times (feeds[0], feeds[1])",
        ),
        (
            with_changes(feeds=[{"id": "f", "title": "F", "sources": ["nope"]}]),
            "feeds[0] (id 'f').sources: no source has id 'nope'",
        ),
        (
            with_changes(feeds=[{"id": "f", "title": "F", "tags": ["sport"]}]),
            "feeds[0] (id 'f').tags: no source has tag 'sport'",
        ),
        (
            with_changes(sources=[{"id": "a", "url": "ftp://a.example/feed"}]),
            "sources[0] (id 'a').url: 'ftp://a.example/feed' is not an http(s) URL",
        ),
        (
            with_changes(sources=[{"id": "a", "url": "not a url"}]),
            "sources[0] (id 'a').url: 'not a url' is not an http(s) URL",
        ),
        (
            with_changes(sources=[{"id": "a", "url": "https://a.example/", "interval": "soon"}]),
            "sources[0] (id 'a').interval: 'soon' is not a duration such as 30m, 2h or 1d",
        ),
        (
            with_changes(sources=[{"id": "a", "url": "https://a.example/", "interval": "10s"}]),
            "sources[0] (id 'a').interval: an interval must be between 1m and 7d, not 10s",
        ),
        (
            with_changes(sources=[{"id": "a", "url": "https://a.example/", "interval": -5}]),
            "sources[0] (id 'a').interval: an interval must be between 1m and 7d, not -5s",
        ),
        (
            with_changes(sources=[{"id": "Not A Slug", "url": "https://a.example/"}]),
            "sources[0] (id 'Not A Slug').id: must be a slug",
        ),
        (
            with_changes(sources=[{"url": "https://a.example/"}]),
            "sources[0].id: required key is missing",
        ),
        (with_changes(database="mysql://x/y"), "database: unsupported database 'mysql'"),
        (
            with_changes(feeds=[{"id": "f", "title": "F", "include": ["GPU", "  "]}]),
            "feeds[0] (id 'f').include[1].keyword: String should have at least 1 character",
        ),
        (
            with_changes(fetch={"interval": "1h", "concurrency": 0}),
            "fetch.concurrency: Input should be greater than or equal to 1",
        ),
    ],
)
def test_bad_configs_are_refused_naming_the_key(
    tmp_path: Path, config: dict[str, Any], expected: str
) -> None:
    found = problems(tmp_path, config)
    assert any(expected in p for p in found), found
    assert all(p.startswith(str(tmp_path / "config.yaml") + ": ") for p in found)


def test_invalid_yaml_names_the_line(tmp_path: Path) -> None:
    [problem] = problems(tmp_path, "sources:\n  - id: a\n   url: [\n")
    assert "not valid YAML at line 3" in problem


def test_a_list_at_the_top_is_refused(tmp_path: Path) -> None:
    [problem] = problems(tmp_path, "- a\n- b\n")
    assert "top level must be a mapping" in problem


def test_a_missing_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read the config file"):
        load_config(tmp_path / "absent.yaml")


def test_the_cli_refuses_a_bad_config_with_exit_code_2_and_no_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(with_changes(colour="blue", server={"port": "eighty"})))
    assert main(["--config", str(path), "fetch"]) == 2
    err = capsys.readouterr().err
    assert "colour: unknown key" in err
    assert "server.port: Input should be a valid integer" in err
    assert "Traceback" not in err


def test_a_bad_database_url_from_the_environment_is_blamed_on_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FEEDMILL_DATABASE_URL", "oracle://db/x")
    assert problems(tmp_path, GOOD) == [
        "FEEDMILL_DATABASE_URL: unsupported database 'oracle': use sqlite or postgresql"
    ]


def test_an_ipv6_host_gets_brackets_in_the_public_url(tmp_path: Path) -> None:
    settings = load(tmp_path, with_changes(server={"host": "::1", "port": 8081}))
    assert settings.site().base_url == "http://[::1]:8081/"


def test_config_path_prefers_the_flag_then_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FEEDMILL_CONFIG", "/etc/feedmill.yaml")
    assert config_path("mine.yaml") == Path("mine.yaml")
    assert config_path(None) == Path("/etc/feedmill.yaml")
    monkeypatch.delenv("FEEDMILL_CONFIG")
    assert config_path(None) == Path("config.yaml")


SECTIONS = [
    ("", Settings),
    ("server", ServerSettings),
    ("fetch", FetchConfig),
    ("fetch.per_host", PerHostSettings),
    ("scheduler", SchedulerSettings),
    ("retention", RetentionSettings),
    ("links", LinksSettings),
    ("sources", SourceSettings),
    ("feeds", FeedSettings),
    ("feeds.include", RuleSettings),
    ("http", HttpSettings),
    ("websub", WebSubSettings),
    ("search", SearchConfig),
]


def test_retention_links_and_lease_keys(tmp_path: Path) -> None:
    config = with_changes(
        retention={"max_age": "30d", "max_entries": 500},
        links={"tracking_parameters": ["ref", "pk_*"]},
        scheduler={"lease": "5m"},
        sources=[
            {"id": "a", "url": "https://a.example/feed", "tags": ["news"], "max_entries": 20},
            {"id": "b", "url": "https://b.example/feed", "max_age": "1d"},
        ],
    )
    settings = load(tmp_path, config)
    a, b = settings.source_definitions()
    assert (a.retention.max_age, a.retention.max_entries) == (timedelta(days=30), 20)
    assert (b.retention.max_age, b.retention.max_entries) == (timedelta(days=1), 500)
    assert settings.scheduler.lease == timedelta(minutes=5)
    assert settings.links.tracking_filter().is_tracking("pk_source")
    assert not settings.links.tracking_filter().is_tracking("utm_source")
    too_short = problems(tmp_path, with_changes(scheduler={"lease": "30s"}))
    assert any(
        p.endswith(
            "scheduler.lease: must be longer than fetch.deadline plus fetch.parse_deadline "
            "(90s), not 30s"
        )
        for p in too_short
    )


@pytest.mark.parametrize(("section", "model"), SECTIONS)
def test_docs_describe_every_config_key(section: str, model: type[BaseModel]) -> None:
    documented = (ROOT / "docs" / "config.md").read_text(encoding="utf-8")
    for name in model.model_fields:
        key = f"{section}.{name}" if section else name
        assert f"`{key}`" in documented, f"docs/config.md does not describe `{key}`"


def test_docs_describe_every_stories_key() -> None:
    documented = (ROOT / "docs" / "config.md").read_text(encoding="utf-8")
    for field in dataclasses.fields(StorySettings):
        assert f"`stories.{field.name}`" in documented, f"`stories.{field.name}` undocumented"


def test_stories_keys_and_feed_dedupe(tmp_path: Path) -> None:
    config = with_changes(
        stories={
            "mode": "event",
            "near_copy_threshold": 0.5,
            "window": "2d",
            "headline_window": "6h",
        },
        sources=[
            {"id": "a", "url": "https://a.example/feed"},
            {"id": "b", "url": "https://b.example/feed"},
        ],
        feeds=[{"id": "top", "title": "Top", "dedupe": "story", "prefer": ["b", "a"]}],
    )
    settings = load(tmp_path, config)
    story = settings.stories
    assert (story.mode, story.near_copy_threshold, story.window) == (
        "event",
        0.5,
        timedelta(days=2),
    )
    assert story.headline_window == timedelta(hours=6)
    assert story.event_threshold == StorySettings().event_threshold
    (feed,) = settings.feed_definitions()
    assert (feed.dedupe, feed.prefer) == ("story", ("b", "a"))
    bad = with_changes(
        stories={"mode": "fuzzy", "near_copy_threshold": 0},
        sources=[{"id": "a", "url": "https://a.example/feed"}],
        feeds=[{"id": "top", "title": "Top", "dedupe": "yes", "prefer": ["zzz"]}],
    )
    found = problems(tmp_path, bad)
    assert any("stories.mode" in p for p in found), found
    bad_threshold = with_changes(stories={"near_copy_threshold": 0, "colour": "red"})
    found = problems(tmp_path, bad_threshold)
    assert any("stories" in p and "near_copy_threshold" in p for p in found), found
    found = problems(tmp_path, with_changes(stories={"colour": "red"}))
    assert any("stories" in p and "colour" in p for p in found), found
    found = problems(tmp_path, bad)
    assert any("feeds[0] (id 'top').dedupe" in p for p in found), found
    unknown = with_changes(
        sources=[{"id": "a", "url": "https://a.example/feed"}],
        feeds=[{"id": "top", "title": "Top", "prefer": ["zzz"]}],
    )
    assert any(
        p.endswith("feeds[0] (id 'top').prefer: no source has id 'zzz'")
        for p in problems(tmp_path, unknown)
    )


def test_event_mode_keys_and_an_embedder_that_is_not_installed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    event = {"mode": "event", "merge_threshold": 0, "embedding_threshold": 0.7}
    story = load(tmp_path, with_changes(stories=event)).stories
    assert (story.merge_threshold, story.embedding_threshold, story.embedder) == (0, 0.7, "")
    monkeypatch.setattr("feedmill.config.embedder_installed", lambda name: False)
    found = problems(tmp_path, with_changes(stories={**event, "embedder": "all-minilm-l6-v2"}))
    assert any("stories" in p and "feedmill[embeddings]" in p for p in found), found
    found = problems(tmp_path, with_changes(stories={"embedder": "word2vec"}))
    assert any("stories" in p and "embedder must be one of" in p for p in found), found
    monkeypatch.setattr("feedmill.config.embedder_installed", lambda name: True)
    chosen = {**event, "embedder": "all-minilm-l6-v2"}
    story = load(tmp_path, with_changes(stories=chosen)).stories
    assert story.embedder == "all-minilm-l6-v2"


def test_stories_are_clustered_only_when_a_feed_asks_for_them(tmp_path: Path) -> None:
    plain = load(tmp_path, GOOD)
    assert plain.story_settings() is None  # auto, and no feed has dedupe: story
    wanting = with_changes(feeds=[{"id": "f", "title": "F", "dedupe": "story"}])
    settings = load(tmp_path, wanting)
    story = settings.story_settings()
    assert story is not None and story.mode.value == "event"
    assert load(tmp_path, {**wanting, "stories": {"cluster": "never"}}).story_settings() is None
    forced = load(tmp_path, {**GOOD, "stories": {"cluster": "always", "mode": "link"}})
    assert forced.story_settings() is not None
    assert load_config(ROOT / "config.yaml").story_settings() is not None  # ai-infrastructure
