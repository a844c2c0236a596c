from __future__ import annotations

from datetime import timedelta

import pytest

from feeds import Selector, select_entries
from feeds.model import Rule
from feeds.rules import RuleError
from sources import Author
from store import StoredEntry
from tests.fakes import T0, feed_definition, stored_entry

INCLUDE = ("AI server", "GPU", "data center", "LLM")
EXCLUDE = ("deal",)


@pytest.mark.parametrize(
    ("title", "summary", "included", "reason"),
    [
        ("Lenovo expands its AI server hub", None, True, "include keyword 'AI server' matched"),
        ("New AI servers ship", None, True, "include keyword 'AI server' matched"),
        ("ai   SERVER demand soars", None, True, "include keyword 'AI server' matched"),
        ("Cheap GPUs for everyone", None, True, "include keyword 'GPU' matched"),
        (
            "A calm day",
            "<p>The <b>data center</b> is quiet</p>",
            True,
            "include keyword 'data center' matched",
        ),
        ("Serving an LLM's context", None, True, "include keyword 'LLM' matched"),
        ("He said the maintainer left", None, False, "no include rule matched"),
        ("GPUdirect is not a word match", None, False, "no include rule matched"),
        ("Best GPU deal of the week", None, False, "exclude keyword 'deal' matched"),
        ("GPU news", "a great deal", False, "exclude keyword 'deal' matched"),
        ("GPU news", "ideal for inference", True, "include keyword 'GPU' matched"),
        (None, None, False, "no include rule matched"),
    ],
)
def test_keywords(title: str | None, summary: str | None, included: bool, reason: str) -> None:
    selector = Selector(feed_definition(include=INCLUDE, exclude=EXCLUDE))
    verdict = selector.judge(stored_entry(title=title, summary=summary))
    assert (verdict.included, verdict.reason) == (included, reason)


def test_exclude_is_decided_before_include() -> None:
    selector = Selector(feed_definition(include=("GPU",), exclude=("GPU",)))
    assert selector.judge(stored_entry(title="GPU")).reason == "exclude keyword 'GPU' matched"


def test_without_include_keywords_every_entry_of_the_sources_is_in() -> None:
    verdict = Selector(feed_definition()).judge(stored_entry(title="Anything"))
    assert verdict.included


def test_entries_of_other_sources_are_out() -> None:
    verdict = Selector(feed_definition()).judge(stored_entry(source_id="elsewhere"))
    assert not verdict.included
    assert "elsewhere" in verdict.reason


def test_the_first_limit_matching_entries_are_selected_in_order() -> None:
    candidates = [
        stored_entry("1", title="GPU one"),
        stored_entry("2", title="nothing"),
        stored_entry("3", title="GPU three"),
        stored_entry("4", title="GPU four"),
    ]
    chosen = select_entries(feed_definition(include=("GPU",), limit=2), candidates)
    assert [e.entry_key for e in chosen] == ["1", "3"]


# -- issue 6: rule kinds, fields, groups, metadata filters, evaluation order ---------------

LONG = " ".join(["word"] * 40)


def entry(**fields: object) -> StoredEntry:
    values: dict[str, object] = {"title": "Plain title", "summary": "<p>plain summary</p>"}
    values.update(fields)
    return stored_entry(**values)


@pytest.mark.parametrize(
    ("rule", "fields", "included", "reason"),
    [
        (Rule("keyword", "GPU"), {"title": "New GPUs"}, True, "include keyword 'GPU' matched"),
        (Rule("phrase", "AI server"), {"title": "AI servers"}, False, "no include rule matched"),
        (
            Rule("phrase", "AI server"),
            {"title": "an AI   server"},
            True,
            "include phrase 'AI server' matched",
        ),
        (Rule("regex", r"\bH[12]00\b"), {"title": "the h100"}, True, "include regex"),
        (Rule("regex", r"(?-i)\bH100\b"), {"title": "the h100"}, False, "no include rule"),
        (
            Rule("keyword", "Nvidia", fields=("content",)),
            {"title": "Nvidia", "content": "<p>AMD</p>"},
            False,
            "no include rule matched",
        ),
        (
            Rule("keyword", "Nvidia", fields=("content",)),
            {"content": "<p>about <b>Nvidia</b></p>"},
            True,
            "include keyword 'Nvidia' in content matched",
        ),
        (
            Rule("keyword", "Mei Lin", fields=("author",)),
            {"authors": (Author("Mei Lin"),)},
            True,
            "",
        ),
        (Rule("keyword", "hpc", fields=("categories",)), {"categories": ("HPC",)}, True, ""),
        (
            Rule("regex", r"/2026/", fields=("link",)),
            {"link": "https://x.example/2026/a"},
            True,
            "",
        ),
        (Rule("keyword", "outlet-a", fields=("source",)), {}, True, ""),
        (Rule("keyword", "Server Desk", fields=("source",)), {}, True, ""),
        (
            Rule("all", rules=(Rule("keyword", "GPU"), Rule("keyword", "Lenovo"))),
            {"title": "GPU news"},
            False,
            "no include rule matched",
        ),
        (
            Rule("all", rules=(Rule("keyword", "GPU"), Rule("keyword", "Lenovo"))),
            {"title": "Lenovo GPU news"},
            True,
            "include all(keyword 'GPU', keyword 'Lenovo') matched",
        ),
        (
            Rule("any", fields=("content",), rules=(Rule("keyword", "TPU"), Rule("phrase", "x"))),
            {"title": "TPU", "content": "<p>a TPU pod</p>"},
            True,
            "include any(",
        ),
        (
            Rule("any", fields=("content",), rules=(Rule("keyword", "TPU"),)),
            {"title": "TPU"},
            False,
            "no include rule matched",
        ),
    ],
)
def test_rule_kinds_and_fields(
    rule: Rule, fields: dict[str, object], included: bool, reason: str
) -> None:
    selector = Selector(feed_definition(include=(rule,)), {"outlet-a": "Server Desk"})
    verdict = selector.judge(entry(**fields))
    assert verdict.included is included
    assert verdict.reason.startswith(reason)


@pytest.mark.parametrize(
    ("definition", "fields", "reason"),
    [
        # 1. sources before everything
        ({"exclude": ("GPU",)}, {"source_id": "elsewhere"}, "source 'elsewhere'"),
        # 2. max_age before languages, words and rules
        (
            {"max_age": timedelta(days=1), "languages": ("de",), "min_words": 99},
            {"sort_at": T0 - timedelta(days=2), "language": "en"},
            "older than max_age",
        ),
        # 3. languages before words
        ({"languages": ("de",), "min_words": 99}, {"language": "en-gb"}, "language 'en-gb'"),
        # 4. min_words before exclude
        ({"min_words": 10, "exclude": ("plain",)}, {}, "fewer than 10 words"),
        # 5. exclude before include
        ({"include": ("plain",), "exclude": ("title",)}, {}, "exclude keyword 'title' matched"),
        # 6. include
        ({"include": ("summary",), "min_words": 2}, {}, "include keyword 'summary' matched"),
    ],
)
def test_the_evaluation_order(
    definition: dict[str, object], fields: dict[str, object], reason: str
) -> None:
    verdict = Selector(feed_definition(**definition)).judge(entry(**fields), now=T0)
    assert not verdict.included or reason.startswith("include")
    assert verdict.reason.startswith(reason), verdict.reason


@pytest.mark.parametrize(
    ("languages", "language", "included"),
    [
        (("en",), "en-gb", True),
        (("en",), "en", True),
        (("en-gb",), "en-us", False),
        (("en",), "eng", False),
        (("de", "EN"), "en-us", True),
        (("de",), None, True),  # unknown language passes
    ],
)
def test_languages(languages: tuple[str, ...], language: str | None, included: bool) -> None:
    selector = Selector(feed_definition(languages=languages))
    assert selector.judge(entry(language=language)).included is included


def test_max_age_counts_from_the_injected_clock() -> None:
    selector = Selector(feed_definition(max_age=timedelta(hours=6)))
    young = entry(sort_at=T0 - timedelta(hours=5))
    old = entry(sort_at=T0 - timedelta(hours=7))
    assert selector.judge(young, now=T0).included
    assert not selector.judge(old, now=T0).included
    assert selector.judge(old, now=T0 - timedelta(hours=2)).included


def test_min_words_counts_the_body_not_the_title() -> None:
    selector = Selector(feed_definition(min_words=40))
    assert selector.judge(entry(summary=f"<p>{LONG}</p>")).included
    assert not selector.judge(entry(title=LONG, summary="short")).included
    assert selector.judge(entry(summary="short", content=LONG)).included


def test_a_catastrophic_regex_is_cut_off_not_hung() -> None:
    evil = Rule("regex", r"^(a|aa)+$")  # exponential backtracking, even in `regex`
    selector = Selector(feed_definition(include=(evil,)))
    verdict = selector.judge(entry(title="a" * 40 + "!"))
    assert not verdict.included
    assert "timed out" in verdict.reason
    excluding = Selector(feed_definition(exclude=(evil,)))
    assert "timed out" not in excluding.judge(entry(title="fine")).reason


def test_an_invalid_regex_is_refused_when_compiled() -> None:
    with pytest.raises(RuleError, match="invalid regular expression"):
        Selector(feed_definition(include=(Rule("regex", "(unclosed"),)))
