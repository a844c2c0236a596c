from __future__ import annotations

import pytest

from feeds import Selector, select_entries
from tests.fakes import feed_definition, stored_entry

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
        ("He said the maintainer left", None, False, "no include keyword matched"),
        ("GPUdirect is not a word match", None, False, "no include keyword matched"),
        ("Best GPU deal of the week", None, False, "exclude keyword 'deal' matched"),
        ("GPU news", "a great deal", False, "exclude keyword 'deal' matched"),
        ("GPU news", "ideal for inference", True, "include keyword 'GPU' matched"),
        (None, None, False, "no include keyword matched"),
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
