"""The story engine (store.stories), pure: terms, decisions, merges, the window, a rebuilt
index deciding as the live one, and the quality targets on the labelled sets."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from store.stories import (
    EntryFeatures,
    MatchKind,
    StoryDecision,
    StoryEntry,
    StoryIndex,
    StoryMode,
    StorySettings,
    featurize_entries,
    score_bcubed,
)
from store.stories.embed import EmbedderUnavailableError, embedder_installed
from store.stories.evaluate import (
    cluster_labels,
    read_news_dedup,
    read_story_rewrites,
    read_syndicated,
)
from store.stories.index import pack_terms, unpack_terms
from store.stories.text import NAME, NUMBER, TITLE, entry_terms, term_hash

SYNDICATED = Path(__file__).resolve().parent.parent / "data" / "syndicated" / "items.json"
T0 = datetime(2026, 11, 20, 6, 0, tzinfo=UTC)
DEFAULTS = StorySettings()
WIRE = (
    "Lenovo will expand its server manufacturing campus in Tianjin into a hub for artificial "
    "intelligence servers, the company said on Thursday, with mass production of liquid-cooled "
    "GPU racks planned by 2027. The expansion adds two production lines and about 1,200 jobs."
)
REWRITE = (
    "The Chinese PC maker is adding two lines at its plant in the northern port city, where "
    "Lenovo expects about 1,200 new jobs once liquid-cooled racks ship in 2027."
)
OTHER = (
    "Nvidia reported record data centre revenue for the quarter, driven by demand for its "
    "accelerators from cloud providers, and guided above analyst expectations for the next one."
)


def syndicated() -> tuple[list[StoryEntry], list[str]]:
    return read_syndicated(SYNDICATED)


def entry(uid: str, source: str, title: str, text: str = WIRE, **kw: object) -> StoryEntry:
    values: dict[str, object] = {"published": T0, "link": f"https://{source}.example/{uid}"}
    values.update(kw)
    return StoryEntry(uid=uid, source_id=source, title=title, text=text, **values)  # type: ignore[arg-type]


def assign(index: StoryIndex, *entries: StoryEntry) -> list[str]:
    return [index.assign(f).story_id for f in featurize_entries(entries, index.settings)]


def test_names_numbers_and_headline_words_are_flagged_and_common_words_left_out() -> None:
    terms = entry_terms(
        "Storm Isolde cuts power to 60,000 in Ireland",
        "About 60000 homes lost power on Wednesday, ESB Networks said. Crews in Galway worked.",
    )
    assert terms["isolde"] == TITLE  # a Title Case headline's capitals say nothing
    assert terms["60000"] == TITLE | NUMBER  # 60,000 and 60000 are one figure
    assert terms["esb"] & NAME and terms["galway"] & NAME  # an acronym, a name mid-sentence
    assert terms["crews"] == 0  # capitalised where a sentence starts: not a name
    assert "wednesday" not in terms and "said" not in terms and "the" not in terms
    lower = entry_terms("Lenovo to expand AI server plant in Tianjin", "")
    assert lower["tianjin"] == TITLE | NAME and lower["ai"] == TITLE | NAME
    assert lower["lenovo"] == TITLE  # where the headline starts


def test_packed_terms_are_sorted_keys_and_their_flags() -> None:
    packed = pack_terms({term_hash("b"): 1, term_hash("a"): 6})
    keys, flags = unpack_terms(packed)
    assert keys.tolist() == sorted([term_hash("a"), term_hash("b")])
    assert dict(zip(keys.tolist(), flags.tolist(), strict=True)) == {
        term_hash("a"): 6,
        term_hash("b"): 1,
    }


def test_the_same_canonical_link_joins_across_sources_whatever_the_text() -> None:
    index = StoryIndex(DEFAULTS)
    first, other = featurize_entries(
        [
            entry("a", "wire", "Lenovo expands Tianjin hub"),
            entry("b", "digest", "Morning digest", "Nothing alike.", link="https://wire.example/a"),
        ],
        DEFAULTS,
    )
    index.assign(first)
    decision = index.assign(other)
    assert decision.joined and decision.kind is MatchKind.LINK and decision.story_id == "a"


@pytest.mark.parametrize("mode", list(StoryMode))
def test_two_entries_of_one_source_never_merge_in_any_mode(mode: StoryMode) -> None:
    index = StoryIndex(StorySettings(mode=mode))
    same_link = {"link": "https://wire.example/page"}
    first, again = featurize_entries(
        [
            entry("a", "wire", "Lenovo expands its Tianjin AI server hub", **same_link),
            entry("b", "wire", "Lenovo expands its Tianjin AI server hub", **same_link),
        ],
        index.settings,
    )
    index.assign(first)
    decision = index.assign(again)
    assert not decision.joined and decision.story_id == "b"
    assert {s.excluded for s in decision.scores} == {"same source"}


def test_a_story_with_a_member_from_the_source_is_closed_to_it() -> None:
    index = StoryIndex(DEFAULTS)
    assign(
        index,
        entry("a", "wire", "Lenovo expands its Tianjin AI server hub"),
        entry("b", "post", "Lenovo expands its Tianjin AI server hub"),
    )
    [again] = featurize_entries(
        [entry("c", "post", "Lenovo grows Tianjin AI server hub")], DEFAULTS
    )
    decision = index.decide(again)
    assert not decision.joined
    assert {s.excluded for s in decision.scores} == {"same source"}


def test_a_copy_joins_as_a_near_copy_and_a_rewrite_as_the_same_event() -> None:
    index = StoryIndex(DEFAULTS)
    first, copy, rewrite, other = featurize_entries(
        [
            entry("a", "wire", "Lenovo expands its Tianjin AI server hub"),
            entry("b", "post", "Lenovo expands Tianjin AI server hub"),
            entry("c", "ledger", "Lenovo bets on Tianjin for AI racks", REWRITE),
            entry("d", "gazette", "Nvidia posts record quarter", OTHER),
        ],
        DEFAULTS,
    )
    index.assign(first)
    near = index.assign(copy)
    assert near.joined and near.kind is MatchKind.NEAR_COPY and near.story_id == "a"
    assert near.scores[0].score >= DEFAULTS.near_copy_threshold
    event = index.assign(rewrite)
    assert event.joined and event.kind is MatchKind.EVENT and event.story_id == "a"
    assert DEFAULTS.event_threshold <= event.scores[0].score < DEFAULTS.near_copy_threshold
    assert not index.assign(other).joined
    near_copy_only = StoryIndex(StorySettings(mode=StoryMode.NEAR_COPY))
    near_copy_only.assign(first)
    assert not near_copy_only.assign(rewrite).joined


def headline(uid: str, source: str, title: str, hours: float = 0) -> StoryEntry:
    """An entry with a headline and no summary, ``hours`` after T0."""
    return entry(uid, source, title, "", published=T0 + timedelta(hours=hours))


def test_headlines_with_no_summary_join_as_headlines_and_other_news_stays_apart() -> None:
    index = StoryIndex(DEFAULTS)
    first = "Bitcoin exchange Mt. Gox files for bankruptcy protection in the US"
    decisions = [
        index.assign(f)
        for f in featurize_entries(
            [
                headline("a", "wire", first),
                headline("b", "cnbc", "Mt. Gox files for US bankruptcy to halt class action"),
                headline("c", "bbc", "Sbarro pizza chain files for bankruptcy for the second time"),
                headline("d", "ap", "Mt. Gox files for US bankruptcy protection", hours=20),
            ],
            DEFAULTS,
        )
    ]
    joined = decisions[1]
    assert (joined.story_id, joined.kind) == ("a", MatchKind.HEADLINE)
    assert joined.scores[0].threshold == DEFAULTS.headline_threshold
    assert decisions[2].story_id == "c"  # another company's bankruptcy
    assert decisions[3].story_id == "d"  # beyond the headline window
    wider = StoryIndex(replace(DEFAULTS, headline_window=timedelta(hours=24)))
    later = headline("d", "ap", "Mt. Gox files for US bankruptcy protection", hours=20)
    assert assign(wider, headline("a", "wire", first), later) == ["a", "a"]


def test_a_headline_is_compared_with_an_entry_with_a_summary_as_any_entry() -> None:
    index = StoryIndex(DEFAULTS)
    assign(index, entry("a", "wire", "Lenovo to build AI servers in Tianjin"))
    decision = index.decide(
        featurize_entries(
            [headline("b", "blog", "Lenovo to build AI servers in Tianjin")], DEFAULTS
        )[0]
    )
    assert [s.kind for s in decision.scores] == [MatchKind.EVENT]


def test_link_mode_joins_links_only() -> None:
    assert assign(
        StoryIndex(StorySettings(mode=StoryMode.LINK)),
        entry("a", "wire", "Lenovo expands Tianjin hub"),
        entry("b", "post", "Lenovo expands Tianjin hub"),
    ) == ["a", "b"]


def test_entries_a_window_apart_stay_apart_and_the_window_moves_on() -> None:
    late = T0 + DEFAULTS.window + timedelta(hours=1)
    index = StoryIndex(DEFAULTS)
    first, copy = featurize_entries(
        [
            entry("a", "wire", "Lenovo expands Tianjin hub"),
            entry("b", "post", "Lenovo expands Tianjin hub", published=late),
        ],
        DEFAULTS,
    )
    index.assign(first)
    assert not index.decide(copy).joined
    assert index.evict(late - DEFAULTS.window) == 1
    assert len(index) == 0 and "a" not in index


def test_an_entry_that_bridges_two_stories_merges_them_under_the_larger_ones_id() -> None:
    index = StoryIndex(DEFAULTS)
    a, b, c, bridge = featurize_entries(
        [
            entry("a", "wire", "Lenovo expands Tianjin hub", WIRE),
            entry("b", "post", "Chinese PC giant bets on northern plant", REWRITE),
            entry("c", "ledger", "Chinese PC giant bets on northern plant", REWRITE),
            entry("d", "gazette", "Lenovo expands Tianjin hub", f"{WIRE} {REWRITE}"),
        ],
        replace(DEFAULTS, merge_threshold=0.3),
    )
    strict = replace(DEFAULTS, merge_threshold=0.3, event_threshold=0.6)
    index = StoryIndex(strict)
    for found in (a, b, c):
        index.assign(found)
    assert index.stories() == {"a": {"a"}, "b": {"b", "c"}}
    index.settings = replace(strict, event_threshold=0.3)
    decision = index.assign(bridge)
    assert decision.joined and decision.merged == ("a",) and decision.story_id == "b"
    assert index.stories() == {"b": {"a", "b", "c", "d"}}
    off = StoryIndex(replace(strict, merge_threshold=0))
    for found in (a, b, c):
        off.assign(found)
    off.settings = replace(strict, event_threshold=0.3, merge_threshold=0)
    assert off.assign(bridge).merged == ()


def test_stories_never_merge_over_a_shared_source() -> None:
    strict = replace(DEFAULTS, merge_threshold=0.3, event_threshold=0.6)
    a, b, bridge = featurize_entries(
        [
            entry("a", "wire", "Lenovo expands Tianjin hub", WIRE),
            entry("b", "wire", "Chinese PC giant bets on northern plant", REWRITE),
            entry("d", "gazette", "Lenovo expands Tianjin hub", f"{WIRE} {REWRITE}"),
        ],
        strict,
    )
    index = StoryIndex(strict)
    index.assign(a)
    index.assign(b)
    index.settings = replace(strict, event_threshold=0.3)
    assert index.assign(bridge).merged == ()


def test_the_syndicated_set_meets_its_targets() -> None:
    entries, gold = syndicated()
    result = score_bcubed(cluster_labels(entries, DEFAULTS), gold)
    assert result.precision >= 0.99
    assert result.recall >= 0.95


def test_story_rewrites_meet_the_targets_with_the_defaults(corpus: Path) -> None:
    entries, gold = read_story_rewrites(corpus / "story-rewrites" / "story-rewrites.json")
    result = score_bcubed(cluster_labels(entries, DEFAULTS), gold)
    assert result.precision >= 0.97
    assert result.recall >= 0.70


def test_news_dedup_headlines_are_clustered_without_error(corpus: Path) -> None:
    entries, gold = read_news_dedup(corpus / "news-dedup" / "uci_news_aggregator_first6366.csv")
    near = score_bcubed(cluster_labels(entries, StorySettings(mode=StoryMode.NEAR_COPY)), gold)
    assert near.recall > score_bcubed([e.uid for e in entries], gold).recall


def test_news_dedup_headlines_meet_the_recall_reached_at_precision_095(corpus: Path) -> None:
    entries, gold = read_news_dedup(corpus / "news-dedup" / "uci_news_aggregator_first6366.csv")
    result = score_bcubed(cluster_labels(entries, DEFAULTS), gold)
    assert result.precision >= 0.95
    assert result.recall >= 0.22  # BENCHMARKS.md, issue 11: the target 0.30 is not met


class Store:
    """What story_members keeps: every member ever assigned, under its current story."""

    def __init__(self, settings: StorySettings) -> None:
        self.index = StoryIndex(settings)
        self.members: dict[str, EntryFeatures] = {}
        self.story: dict[str, str] = {}

    def assign(self, found: EntryFeatures) -> StoryDecision:
        decision = self.index.assign(found)
        for gone in decision.merged:
            for uid, story_id in self.story.items():
                if story_id == gone:
                    self.story[uid] = decision.story_id
        self.members[found.uid] = found
        self.story[found.uid] = decision.story_id
        return decision

    def rebuild(self) -> StoryIndex:
        """A fresh index of the members ``index`` holds, added in another order (as the
        store reads them back), each story with the sources of all its members."""
        sources: dict[str, set[str]] = defaultdict(set)
        for uid, story_id in self.story.items():
            sources[story_id].add(self.members[uid].source_id)
        again = StoryIndex(self.index.settings)
        for uid in sorted(self.story, reverse=True):
            if uid in self.index:
                story_id = self.story[uid]
                again.add(self.members[uid], story_id, sources[story_id])
        return again


@pytest.mark.parametrize("headlines_only", [False, True])
@settings(max_examples=40, deadline=None)
@given(order=st.permutations(list(range(24))), evict_at=st.integers(0, 23))
def test_a_rebuilt_index_decides_exactly_as_the_live_one(
    headlines_only: bool, order: list[int], evict_at: int
) -> None:
    entries, _ = syndicated()
    if headlines_only:  # compared as headlines (no summary)
        entries = [replace(e, text="") for e in entries]
    spread = [replace(e, published=T0 + timedelta(hours=2 * i)) for i, e in enumerate(entries)]
    chosen = [spread[i] for i in order] + spread[24:40]
    features = featurize_entries(chosen, DEFAULTS)
    live = Store(DEFAULTS)
    for position, found in enumerate(features[:24]):
        if position == evict_at:
            live.index.evict(found.published - DEFAULTS.window / 2)
        live.assign(found)
    again = live.rebuild()
    assert again.stories() == live.index.stories()
    for found in features[24:]:
        assert again.decide(found) == live.index.decide(found)
        assert again.assign(found) == live.assign(found)


def test_an_index_compacted_after_evictions_decides_as_a_rebuilt_one() -> None:
    entries, _ = syndicated()
    many = [
        replace(e, uid=f"{e.uid}-{n}", published=T0 + timedelta(minutes=30 * (i + 99 * n)))
        for n in range(30)
        for i, e in enumerate(entries)
    ]
    features = featurize_entries(many, DEFAULTS)
    live = Store(DEFAULTS)
    for found in features[:-20]:
        live.index.evict(found.published - DEFAULTS.window)
        live.assign(found)
    assert len(live.index) < 200  # most were let go of, and the arrays compacted
    again = live.rebuild()
    for found in features[-20:]:
        assert again.decide(found) == live.index.decide(found)


def test_an_embedder_that_is_not_installed_is_a_clear_error() -> None:
    if embedder_installed("all-minilm-l6-v2"):
        pytest.skip("the embeddings extra is installed")
    with_embedder = StorySettings(embedder="all-minilm-l6-v2")
    with pytest.raises(EmbedderUnavailableError, match=r"feedmill\[embeddings\]"):
        featurize_entries([entry("a", "wire", "Lenovo expands Tianjin hub")], with_embedder)


def test_with_an_embedder_paraphrases_join_and_other_news_stays_apart() -> None:
    if not embedder_installed("all-minilm-l6-v2"):
        pytest.skip("needs the embeddings extra: pip install 'feedmill[embeddings]'")
    index = StoryIndex(StorySettings(embedder="all-minilm-l6-v2"))
    labels = assign(
        index,
        entry("a", "wire", "Edward Snowden tells SXSW he has no regrets over NSA leaks", ""),
        entry(
            "b", "post", "Snowden tells SXSW audience he has no regrets about leaking NSA files", ""
        ),
        entry("c", "blog", "McDonald's February sales fall as cold weather keeps diners home", ""),
    )
    assert labels == ["a", "a", "c"]


def test_settings_reject_impossible_values() -> None:
    with pytest.raises(ValueError, match="near_copy_threshold"):
        StorySettings(near_copy_threshold=1.5)
    with pytest.raises(ValueError, match="embedder"):
        StorySettings(embedder="a-model-from-the-hub")
    with pytest.raises(ValueError, match="window"):
        StorySettings(window=timedelta(0))
    with pytest.raises(ValueError, match="headline_window"):
        StorySettings(headline_window=timedelta(0))
    with pytest.raises(ValueError, match="headline_threshold"):
        StorySettings(headline_threshold=0)
    with pytest.raises(ValueError, match="cluster"):
        StorySettings(cluster="sometimes")
    with pytest.raises(ValueError, match="time_decay"):
        StorySettings(time_decay=1.0)
    assert StorySettings(merge_threshold=0).merge_threshold == 0  # 0: merging off


def test_bcubed_scores_a_known_clustering() -> None:
    perfect = score_bcubed(["x", "x", "y"], ["a", "a", "b"])
    assert (perfect.precision, perfect.recall) == (1.0, 1.0)
    merged = score_bcubed(["x", "x", "x"], ["a", "a", "b"])
    assert merged.precision == pytest.approx((2 / 3 + 2 / 3 + 1 / 3) / 3)
    assert merged.recall == 1.0
