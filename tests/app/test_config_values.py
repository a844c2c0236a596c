"""Config values that used to crash with a traceback are config errors naming the key, the
line or the position (exit status 2 from every command)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from feedmill.cli import main
from feedmill.errors import ConfigError

SOURCE = "sources:\n  - id: a\n    url: https://a.example/feed\n"


def check(tmp_path: Path, text: str | bytes, capsys: pytest.CaptureFixture[str]) -> str:
    path = tmp_path / "config.yaml"
    if isinstance(text, str):
        text = text.encode("utf-8")
    path.write_bytes(text)
    assert main(["--config", str(path), "check-config"]) == 2
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    return " ".join(captured.err.split())


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("fetch:\n  interval: 99999999999d\n", "fetch.interval: '99999999999d' is too long"),
        ("fetch:\n  interval: .inf\n", "fetch.interval: inf is not a duration"),
        ("fetch:\n  interval: .nan\n", "fetch.interval: nan is not a duration"),
        ("stories:\n  headline_window: -3h\n", "stories: headline_window: '-3h' is not"),
        ("fetch:\n  interval: 1.0e+300\n", "fetch.interval: 1e+300 is too long"),
        ("retention:\n  max_age: 9999999999d\n", "retention.max_age: '9999999999d' is too long"),
        ("retention:\n  max_age: 999999999d\n", "retention.max_age: 999999999d is too long"),
        ("scheduler:\n  heartbeat: 99999999999999999999\n", "scheduler.heartbeat: 99999"),
        ("retention:\n  max_entries: 99999999999\n", "retention.max_entries: Input should be"),
        (
            SOURCE + "    max_age: 18251d\n",
            "sources[0] (id 'a').max_age: 18251d is too long: at most 18250d",
        ),
        ("feeds:\n  - id: f\n    title: F\n    max_age: -inf\n", "feeds[0] (id 'f').max_age:"),
    ],
)
def test_a_huge_or_infinite_duration_is_a_config_error(
    tmp_path: Path, text: str, expected: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert expected in check(tmp_path, text, capsys)


def test_the_longest_duration_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text("retention:\n  max_age: 18250d\n", encoding="utf-8")
    assert main(["--config", str(path), "check-config"]) == 0


def test_a_byte_that_is_not_utf8_is_named_by_line_and_column(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = SOURCE.encode() + b"    title: Caf\xe9\n"
    assert "not UTF-8 at line 4, column 15 (byte 0xe9)" in check(tmp_path, text, capsys)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "fetch:\n  interval: 1h\nfetch:\n  jitter: 0\n",
            "fetch: the key is given twice in one mapping (lines 1 and 3)",
        ),
        (
            "fetch:\n  interval: 1h\n  interval: 2h\n",
            "fetch.interval: the key is given twice in one mapping (lines 2 and 3)",
        ),
        (
            SOURCE + "    url: https://b.example/feed\n",
            "sources[0].url: the key is given twice in one mapping (lines 3 and 4)",
        ),
        ("{a: 1, a: 2}\n", "a: the key is given twice"),
    ],
)
def test_a_key_given_twice_is_refused_naming_it(
    tmp_path: Path, text: str, expected: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert expected in check(tmp_path, text, capsys)


def test_a_merge_key_may_override(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(
        "x-base: &base {interval: 1h}\nfetch:\n  <<: *base\n  jitter: 0\n", encoding="utf-8"
    )
    main(["--config", str(path), "check-config"])  # x-base is an unknown key; no crash
    from feedmill.config import parse_yaml

    assert parse_yaml(path.read_bytes(), "c")["fetch"] == {"interval": "1h", "jitter": 0}


@pytest.mark.parametrize(
    "text",
    [
        "sources:\n  - {id: a, url: 'https://a.example/'}\n  - id: b\n    tags: [x, y]\n",
        "port: 8080\njitter: 0.5\non: yes\nnothing: ~\nday: 2026-12-02\nt: !!str 12\n",
        "base: &b {x: 1, y: [a, b]}\nm: {<<: *b, y: 2}\ncopy: *b\nlist: [*b, *b]\n",
        "1: one\n? [a, b]\n: listed\n",  # keys that are not strings: PyYAML decides
        "s: 'quoted'\nd: \"double\\n\"\nblock: |\n  two\n  lines\nfolded: >\n  one\n",
    ],
)
def test_values_are_read_as_pyyaml_reads_them(text: str) -> None:
    """parse_yaml builds strings, lists and string-keyed mappings itself: the values must
    be those of PyYAML's own constructor (or its error) for every kind of node."""
    from feedmill.config import parse_yaml

    try:
        expected: Any = yaml.load(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        with pytest.raises(ConfigError, match="not valid YAML"):
            parse_yaml(text.encode(), "c")
        return
    assert parse_yaml(text.encode(), "c") == expected


def test_aliases_that_expand_without_bound_are_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 9)]
    assert "more than 100000 values" in check(tmp_path, "\n".join(lines) + "\n", capsys)


def test_a_long_config_without_aliases_is_read(tmp_path: Path) -> None:
    """Tens of thousands of sources: more values than MAX_YAML_NODES, but each is written
    out in the file, so none is refused, and libyaml's parser reads them."""
    from feedmill.config import MAX_YAML_NODES, _Loader, load_config

    count = MAX_YAML_NODES // 3 + 1
    lines = ["sources:"]
    for i in range(count):
        lines += [f"  - id: s{i}", f"    url: http://127.0.0.{1 + i % 9}:8080/f/{i}.xml"]
    path = tmp_path / "config.yaml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    settings = load_config(path)
    assert len(settings.sources) == count
    assert (
        settings.sources[-1].url == f"http://127.0.0.{1 + (count - 1) % 9}:8080/f/{count - 1}.xml"
    )
    assert issubclass(_Loader, yaml.CSafeLoader)


def test_a_key_given_twice_in_a_long_config_is_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lines = ["sources:"]
    for i in range(3000):
        lines += [f"  - id: s{i}", f"    url: https://a.example/{i}"]
    lines.insert(4001, "    url: https://b.example/again")
    found = check(tmp_path, "\n".join(lines) + "\n", capsys)
    assert "sources[1999].url: the key is given twice in one mapping (lines 4001 and 4002)" in found


def test_deep_nesting_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert "not valid YAML" in check(tmp_path, "a: " + "[" * 100_000 + "\n", capsys)


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        ("(a|aa)+$", "an alternation under a repeat"),
        ("(\\\\w+\\\\s?)+$", "a nested quantifier"),
        ("((((a{100}){100}){100}){100}){100}", "multiply out to more than 10000"),
    ],
)
def test_check_config_refuses_a_pattern_that_could_hang_naming_the_rule(
    tmp_path: Path, pattern: str, expected: str, capsys: pytest.CaptureFixture[str]
) -> None:
    text = f'feeds:\n  - id: f\n    title: F\n    include:\n      - regex: "{pattern}"\n'
    err = check(tmp_path, text, capsys)
    assert "feeds[0] (id 'f').include[0]: regular expression" in err
    assert expected in err


def test_a_control_character_in_the_file_is_named_by_line_and_column(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = SOURCE + "    title: a\x01b\n"
    err = check(tmp_path, text, capsys)
    assert "not valid YAML at line 4, column 13: the character U+0001 is not allowed" in err


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080/f/1.xml",
        "https://example.org/feed?x=1#y",
        "https://xn--bcher-kva.example/a",
        "http://localhost",
        "http://a.example/{x}|^`%zz",
        "http://0177.0.0.1/",
        "http://2130706433/",
        "http://0x7f.1/",
        "http://1.2.3.04/",
        "http://256.1.1.1/",
        "http://a.9/",
        "http://a.example:99999/",
        "http://user@a.example/",
        "http://a.example/ b",
        "http://a.example/\x01",
        "http://a.example/\u200b",
        "ftp://a.example/",
    ],
)
def test_the_quick_url_check_accepts_only_what_the_full_one_does(url: str) -> None:
    from feedmill.config import _PLAIN_HTTP_URL
    from sources.urls import url_problem

    if _PLAIN_HTTP_URL.fullmatch(url):
        assert url_problem(url) is None
