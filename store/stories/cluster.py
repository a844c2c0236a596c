"""The incremental clustering decision: which story a new entry belongs to. Pure.

    features = featurize_entry(entry, settings)  # a document's all at once: featurize_entries
    candidates = index: stories with the entry's canonical link, or sharing an LSH band key
                 (or, in event mode, a content term) with activity within the window
    decision = decide_story(features, candidates, idf, settings)
    decision = plan_merges(features, decision, candidates, settings)  # event mode
    index.merge_stories(decision.story_id, decision.merged)  # if the index can merge
    index.add_member(decision.story_id, features)

Rules, in order: the same canonical link joins that story; else the best-scoring candidate
above the near-copy threshold (estimated Jaccard of title + text shingles against the story's
closest member); else, in event mode, the best above the event threshold (IDF-weighted cosine
against the story's terms). A story that already has a member from the entry's source, or
none within the window, is never joined by similarity. Otherwise the entry founds a story
whose id is its own uid, and that id never changes as members join. In event mode, an entry
that joined a story and also scores at least the merge threshold against other eligible
candidates bridges them: they merge into the one with the most sources, unless a source
would then have entries in two of them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import replace

from store.stories.embed import load_embedder, story_similarity
from store.stories.model import (
    EntryFeatures,
    MatchKind,
    StoryDecision,
    StoryEntry,
    StoryScore,
    StoryState,
)
from store.stories.settings import StoryMode, StorySettings
from store.stories.sketch import (
    band_key_rows,
    estimate_jaccards,
    hash_array,
    minhash_rows,
    signature_bytes,
    term_keys,
)
from store.stories.text import (
    content_terms,
    hash_shingles,
    normalise_spaces,
    strip_tags,
    tokenize_both,
    tokenize_utf8,
)

# An embedder reads the title and the start of the summary: about a paragraph.
EMBED_WORDS = 96
# With an embedder, the event score is 0.7 x the vector similarity (the higher of the cosines
# to the story's mean vector and to its closest member) + 0.3 x the lexical score: measured
# on one half of news-dedup (bench/dedup.py --split), it buys a few points of recall over
# either alone at the same precision.
LEXICAL_SHARE = 0.3


def featurize_entry(
    entry: StoryEntry, settings: StorySettings, embedding: bytes | None = None
) -> EntryFeatures:
    """The entry's features; ``embedding``, when the caller embedded it already (in a batch:
    :func:`embed_entries`)."""
    return featurize_entries([entry], settings, None if embedding is None else [embedding])[0]


def featurize_entries(
    entries: Sequence[StoryEntry],
    settings: StorySettings,
    embeddings: Sequence[bytes] | None = None,
) -> list[EntryFeatures]:
    """Each entry's features, the same as :func:`featurize_entry` gives it, computed for
    all of them at once (a document's new entries): the MinHash minimums and band keys of
    every entry in one numpy pass each (tokens: :func:`tokenize_utf8`, which splits most
    texts without a regex). ``embeddings``, one per entry, when the caller embedded them
    already; else they are embedded in one model call (:func:`embed_entries`)."""
    if embeddings is None:
        embeddings = embed_entries(entries, settings)
    elif len(embeddings) != len(entries):
        raise ValueError(f"{len(embeddings)} embeddings for {len(entries)} entries")
    # Only event mode weighs terms (and looks stories up by them); the others keep none.
    event = settings.mode == StoryMode.EVENT
    size = settings.shingle_size
    hashes = hash_array()
    counts: list[int] = []  # shingles per entry, in ``hashes`` one entry after another
    entry_terms: list[frozenset[str]] = []
    for entry in entries:
        text = f"{entry.title}\n{entry.text}"
        if event:
            tokens, words = tokenize_both(text)
            entry_terms.append(content_terms(tokens))
        else:
            words = tokenize_utf8(text)
        counts.append(hash_shingles(words, size, hashes))
    minimums = minhash_rows(hashes, [n for n in counts if n], settings.num_perm)
    signed = iter(signature_bytes(minimums))
    banded = iter(band_key_rows(minimums, settings.bands, settings.rows))
    keys_of = _term_keys_of(entry_terms) if event else None
    features = []
    for i, (entry, count, embedding) in enumerate(zip(entries, counts, embeddings, strict=True)):
        features.append(
            EntryFeatures(
                uid=entry.uid,
                source_id=entry.source_id,
                published=entry.published,
                link=entry.link,
                signature=next(signed) if count else b"",
                band_keys=next(banded) if count else (),
                terms=entry_terms[i] if event else frozenset(),
                term_keys=keys_of[i] if keys_of is not None else (),
                embedding=embedding,
            )
        )
    return features


def _term_keys_of(entry_terms: Sequence[frozenset[str]]) -> list[tuple[int, ...]]:
    """Each entry's sorted term keys, all terms keyed in one call."""
    keys = term_keys(t for terms in entry_terms for t in terms)
    keyed, start = [], 0
    for terms in entry_terms:
        keyed.append(tuple(sorted(keys[start : start + len(terms)])))
        start += len(terms)
    return keyed


def embed_entries(entries: Sequence[StoryEntry], settings: StorySettings) -> list[bytes]:
    """The entries' sentence vectors in one model call (batches are several times cheaper
    per entry than one at a time), when event mode uses an embedder; else empty ones."""
    if settings.mode != StoryMode.EVENT or not settings.embedder or not entries:
        return [b""] * len(entries)
    return load_embedder(settings.embedder)([embed_text(entry) for entry in entries])


def embed_text(entry: StoryEntry) -> str:
    """What an embedder reads: the title and the start of the summary, as plain text."""
    words = normalise_spaces(f"{entry.title}. {strip_tags(entry.text)}").split(" ")
    return " ".join(words[:EMBED_WORDS])


def decide_story(
    entry: EntryFeatures,
    by_link: Sequence[StoryState],
    candidates: Sequence[StoryState],
    idf: Idf,
    settings: StorySettings,
) -> StoryDecision:
    """Join a story found by link, else the best similar candidate, else found a new one."""
    if by_link:
        story = min(by_link, key=lambda s: s.story_id)
        score = StoryScore(story.story_id, MatchKind.LINK, 1.0, 1.0)
        return StoryDecision(story.story_id, True, MatchKind.LINK, (score,))
    closest: Sequence[tuple[float, str | None] | None] = [None] * len(candidates)
    if settings.mode != StoryMode.LINK and candidates:
        closest = closest_members(entry, candidates)  # one comparison for all of them
    scores = [
        score
        for story, found in zip(candidates, closest, strict=True)
        for score in score_story(entry, story, idf, settings, found)
    ]
    scores.sort(key=lambda s: (not s.matches, -s.score, s.kind != MatchKind.NEAR_COPY))
    best = scores[0] if scores and scores[0].matches else None
    if best is None:
        return StoryDecision(entry.uid, False, None, tuple(scores))
    return StoryDecision(best.story_id, True, best.kind, tuple(scores))


def plan_merges(
    entry: EntryFeatures,
    decision: StoryDecision,
    candidates: Sequence[StoryState],
    settings: StorySettings,
) -> StoryDecision:
    """The decision with the stories the entry bridges merged into one (event mode).

    An entry that joined a story by similarity and also has an event score of at least
    ``merge_threshold`` (``embedding_merge_threshold`` with an embedder) against other
    eligible candidates shows that their stories are one:
    they merge, best-scoring first, as long as no source would have entries in two of them
    (so the same-source rule still holds in the merged story). The story with the most
    sources keeps its id (the one readers most likely have seen); the others are named in
    ``merged`` for the index to fold into it.
    """
    threshold = settings.merge_threshold
    if settings.embedder:
        threshold = settings.embedding_merge_threshold
    if not threshold or not decision.joined or decision.kind == MatchKind.LINK:
        return decision
    stories = {story.story_id: story for story in candidates}
    joined = stories.get(decision.story_id)
    if joined is None:
        return decision
    group = {decision.story_id: story_sources(joined)}
    taken = set(group[decision.story_id]) | {entry.source_id}
    for score in decision.scores:  # best first
        story = stories.get(score.story_id)
        if (
            story is None
            or score.kind != MatchKind.EVENT
            or score.excluded is not None
            or score.score < threshold
            or score.story_id in group
        ):
            continue
        sources = story_sources(story)
        if sources & taken:
            continue
        group[score.story_id] = sources
        taken |= sources
    if len(group) == 1:
        return decision
    keep = min(group, key=lambda story_id: (-len(group[story_id]), story_id))
    merged = tuple(sorted(story_id for story_id in group if story_id != keep))
    return replace(decision, story_id=keep, merged=merged)


def story_sources(story: StoryState) -> frozenset[str]:
    return story.sources or frozenset(m.source_id for m in story.members)


def score_story(
    entry: EntryFeatures,
    story: StoryState,
    idf: Idf,
    settings: StorySettings,
    closest_found: tuple[float, str | None] | None = None,
) -> list[StoryScore]:
    """The entry's near-copy (and event) scores against one story, with any exclusion.
    ``closest_found``: :func:`closest_member`'s answer, when the caller has it already."""
    excluded = exclusion(entry, story, settings)
    scores = []
    if settings.mode != StoryMode.LINK:
        similarity, closest = closest_found or closest_member(entry, story)
        scores.append(
            StoryScore(
                story.story_id,
                MatchKind.NEAR_COPY,
                similarity,
                settings.near_copy_threshold,
                closest,
                excluded,
            )
        )
    if settings.mode == StoryMode.EVENT:
        similarity = event_similarity(entry.terms, story.term_counts, idf)
        threshold = settings.event_threshold
        if settings.embedder:
            members = [m.embedding for m in story.members]
            meaning = story_similarity(entry.embedding, members)
            similarity = (1 - LEXICAL_SHARE) * meaning + LEXICAL_SHARE * similarity
            threshold = settings.embedding_threshold
        scores.append(
            StoryScore(story.story_id, MatchKind.EVENT, similarity, threshold, None, excluded)
        )
    return scores


def exclusion(entry: EntryFeatures, story: StoryState, settings: StorySettings) -> str | None:
    if entry.source_id in story_sources(story):
        return "same source"
    if not any(abs(entry.published - m.published) <= settings.window for m in story.members):
        return "outside window"
    return None


def closest_member(entry: EntryFeatures, story: StoryState) -> tuple[float, str | None]:
    return closest_members(entry, [story])[0]


def closest_members(
    entry: EntryFeatures, stories: Sequence[StoryState]
) -> list[tuple[float, str | None]]:
    """For each story, (the estimated Jaccard similarity, uid) of its member closest to the
    entry: all the stories' members compared in one vectorised call."""
    signatures = [m.signature for story in stories for m in story.members]
    similarities = iter(estimate_jaccards(entry.signature, signatures))
    found = []
    for story in stories:
        best, uid = 0.0, None
        for member in story.members:
            similarity = next(similarities)
            if similarity > best or uid is None:
                best, uid = similarity, member.uid
        found.append((best, uid))
    return found


def event_similarity(terms: frozenset[str], story_terms: Mapping[str, int], idf: Idf) -> float:
    """Cosine between the entry's IDF-weighted terms and the story's (term count x IDF)."""
    if not terms or not story_terms:
        return 0.0
    weights, entry_norm = idf.weigh(terms)
    dot = sum([w * story_terms.get(t, 0) * w for t, w in weights.items()])
    story_norm = math.sqrt(sum([(c * v) ** 2 for c, v in idf.counted(story_terms)]))
    if not entry_norm or not story_norm:
        return 0.0
    return dot / (entry_norm * story_norm)


class Idf:
    """Smoothed IDF from the index's document frequencies: log((N + 1) / (df + 1)) + 1.

    One is made for each entry and asked about the entry's terms against every candidate
    story's, so it remembers each term's value and the entry's weights (same values, same
    order of summing as computing them afresh: the scores do not change)."""

    def __init__(self, total: int, frequencies: Mapping[str, int]) -> None:
        self._total = total
        self._frequencies = frequencies
        self._known: dict[str, float] = {}
        self._weighed: tuple[frozenset[str], dict[str, float], float] | None = None

    def __call__(self, term: str) -> float:
        value = self._known.get(term)
        if value is None:
            df = self._frequencies.get(term, 0)
            value = self._known[term] = math.log((self._total + 1) / (df + 1)) + 1.0
        return value  # the same expression as in counted()

    def weigh(self, terms: frozenset[str]) -> tuple[dict[str, float], float]:
        """The terms' weights and their Euclidean norm (of the last terms asked, kept)."""
        weighed = self._weighed
        if weighed is not None and weighed[0] is terms:
            return weighed[1], weighed[2]
        weights = {t: self(t) for t in terms}
        norm = math.sqrt(sum([w * w for w in weights.values()]))
        self._weighed = (terms, weights, norm)
        return weights, norm

    def counted(self, counts: Mapping[str, int]) -> list[tuple[int, float]]:
        """(count, IDF) of each of ``counts``' terms, in its order."""
        known, frequency, log = self._known, self._frequencies.get, math.log
        base = self._total + 1
        pairs = []
        for term, count in counts.items():  # __call__, inlined: a story has dozens of terms
            value = known.get(term)
            if value is None:
                value = known[term] = log(base / (frequency(term, 0) + 1)) + 1.0
            pairs.append((count, value))
        return pairs


def make_idf(total: int, frequencies: Mapping[str, int]) -> Idf:
    """Smoothed IDF from the index's document frequencies: log((N + 1) / (df + 1)) + 1."""
    return Idf(total, frequencies)


def choose_representative(
    members: Sequence[EntryFeatures], prefer: Sequence[str] = ()
) -> EntryFeatures:
    """The earliest member, or the one from the first source in ``prefer`` (earliest of it).

    Depends only on the set of members, never on the order they arrived in.
    """
    if not members:
        raise ValueError("a story has at least one member")
    rank = {source: position for position, source in enumerate(prefer)}
    return min(members, key=lambda m: (rank.get(m.source_id, len(rank)), m.published, m.uid))
