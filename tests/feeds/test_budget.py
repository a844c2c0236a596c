"""One time budget for the regular expressions of a whole selection (feeds.rules.Budget):
once spent, no regular expression runs, and an entry they were to decide is left out."""

from __future__ import annotations

from feeds.model import Rule
from feeds.rules import REGEX_TIMEOUT, Budget
from feeds.select import Selector
from store.model import StoredEntry
from tests.fakes import feed_definition, stored_entry

EVIL = Rule("regex", r"^(a|aa)+$")  # exponential backtracking on "aaa...a!"
HOSTILE_TITLE = "a" * 40 + "!"


class Ticks:
    """A monotonic clock that moves only when told."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def hostile(count: int) -> list[StoredEntry]:
    return [stored_entry(f"e{i}", title=HOSTILE_TITLE) for i in range(count)]


def test_a_spent_budget_runs_no_regular_expression() -> None:
    ticks = Ticks()
    budget = Budget(1.0, clock=ticks)
    assert budget.next_timeout() == REGEX_TIMEOUT
    ticks.now += 0.99
    assert 0 < budget.next_timeout() < REGEX_TIMEOUT  # the last search gets what is left
    ticks.now += 0.01
    assert budget.spent and budget.next_timeout() <= 0
    selector = Selector(feed_definition(include=(Rule("regex", "fine"),)))
    verdict = selector.judge(stored_entry(title="fine"), budget=budget)
    assert not verdict.included and "timed out" in verdict.reason  # not even a cheap one
    assert budget.cut_off == 1


def test_a_selection_shares_one_budget() -> None:
    ticks = Ticks()
    budget = Budget(1.0, clock=ticks)
    selector = Selector(feed_definition(include=(EVIL,)))
    entries = hostile(200)
    ticks.now += 5  # as if the first searches had used it all
    assert selector.select(entries, now=None, budget=budget) == []
    assert budget.cut_off == 200  # each entry's search was not even started


def test_without_a_budget_each_judgement_gets_its_own() -> None:
    selector = Selector(feed_definition(include=(Rule("regex", "fine"),)))
    assert selector.judge(stored_entry(title="fine")).included


def test_an_exclude_rule_out_of_time_leaves_the_entry_out() -> None:
    ticks = Ticks()
    budget = Budget(1.0, clock=ticks)
    ticks.now += 2
    selector = Selector(feed_definition(exclude=(Rule("regex", "spam"),)))
    verdict = selector.judge(stored_entry(title="no spam here"), budget=budget)
    assert not verdict.included
    assert verdict.reason == "exclude regex 'spam' timed out: left out undecided"


def test_a_real_catastrophic_search_is_cut_off_and_charged() -> None:
    budget = Budget(10.0)
    selector = Selector(feed_definition(include=(EVIL,)))
    verdict = selector.judge(stored_entry(title=HOSTILE_TITLE), budget=budget)
    assert not verdict.included and "timed out" in verdict.reason
    assert budget.cut_off == 1
