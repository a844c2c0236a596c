"""The story engine: the entries of the clustering window in memory, and the decision for
each new one. Pure: the store builds it from ``story_members`` and applies its decisions.

    features = featurize_entries(entries, settings)   # terms with flags (and vectors)
    index.evict(before=now - window)                   # the window moves on
    decision = index.assign(features)                  # decide, merge bridged stories, add

A decision, in order: the same canonical link joins that story; else the entry is scored
against the members that share its rarest terms (cosine of weighted terms, less the time
decay; docs/dedup.md) and joins the story of the best one at the near-copy or event
threshold; else it founds a story whose id is its own uid. Two headlines with no summary
are scored as headlines instead: every word alike, no short-text discount, against the
headline threshold, within the headline window. A story that has a member from
the entry's source is never joined (by link either). An entry that joins one story and
scores at least ``merge_threshold`` against others bridges them: they merge into the one
with the most sources, as long as no source would have entries in two of them.

Everything a decision reads (document frequencies, the members in the window, their stories
and those stories' sources) is a function of the set of members held, never of the order
they came in: an index rebuilt from the store decides as the live one did.
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Iterable, Sequence
from dataclasses import replace
from datetime import datetime, timedelta

import numpy as np
import numpy.typing as npt

from store.stories.embed import load_embedder, unpack_vectors
from store.stories.model import (
    EntryFeatures,
    MatchKind,
    StoryDecision,
    StoryEntry,
    StoryScore,
)
from store.stories.settings import StoryMode, StorySettings
from store.stories.text import NAME, NUMBER, TITLE, entry_terms, plain_text, term_hash


def pack_terms(terms: dict[int, int]) -> bytes:
    """{term key: flags} as bytes: the keys (uint32 LE, ascending), then their flags (uint8)."""
    keys = sorted(terms)
    return np.asarray(keys, "<u4").tobytes() + bytes(terms[k] for k in keys)


def unpack_terms(packed: bytes) -> tuple[npt.NDArray[np.uint32], npt.NDArray[np.uint8]]:
    count = len(packed) // 5
    keys = np.frombuffer(packed, "<u4", count).astype(np.uint32)
    return keys, np.frombuffer(packed, np.uint8, count, 4 * count)


# The IDF counts this many documents more than the window holds, so that in a window of a
# few entries a term two of them share is not taken for a common one.
BACKGROUND_DOCUMENTS = 1000
SHORT_TEXT = 12  # terms below which an entry's cosines are scaled down
SCORES_KEPT = 5  # candidate stories a decision reports, best first
LOOKUP_TERMS = 12  # an entry's heaviest terms, whose members are its candidates
# With an embedder, the word cosine's share of the score (the vectors' cosine has the rest):
# chosen on half A of story-rewrites (bench/dedup.py).
LEXICAL_SHARE = 0.3
EMBED_WORDS = 96  # an embedder reads the title and the start of the summary
SAME_SOURCE = "same source"


def featurize_entries(
    entries: Sequence[StoryEntry],
    settings: StorySettings,
    embeddings: Sequence[bytes] | None = None,
) -> list[EntryFeatures]:
    """Each entry's features; with an embedder (event mode), the entries' vectors in one
    model call unless ``embeddings`` gives them."""
    if embeddings is None:
        embeddings = embed_entries(entries, settings)
    features = []
    for entry, vector in zip(entries, embeddings, strict=True):
        terms: dict[int, int] = {}
        for term, flags in entry_terms(entry.title, entry.text).items():
            key = term_hash(term)
            terms[key] = terms.get(key, 0) | flags
        features.append(
            EntryFeatures(
                entry.uid, entry.source_id, entry.published, entry.link, pack_terms(terms), vector
            )
        )
    return features


def embed_entries(entries: Sequence[StoryEntry], settings: StorySettings) -> list[bytes]:
    if settings.mode != StoryMode.EVENT or not settings.embedder or not entries:
        return [b""] * len(entries)
    return load_embedder(settings.embedder)([embed_text(entry) for entry in entries])


def embed_text(entry: StoryEntry) -> str:
    """What an embedder reads: the title and the start of the summary, as plain text."""
    words = " ".join(plain_text(f"{entry.title}. {entry.text}").split()).split(" ")
    return " ".join(words[:EMBED_WORDS])


class StoryIndex:
    """The members of the clustering window in compact arrays, by slot: uid, source,
    story, time, link, a span of (term id, flags) and an optional vector; an inverted list
    of slots per term, document frequencies, and each story's live slots and sources
    (every source it ever had a member from, so a story stays closed to them)."""

    def __init__(self, settings: StorySettings) -> None:
        self.settings = settings
        self._weight = np.array([_class_weight(settings, f) for f in range(8)], np.float64)
        self._uids: list[str] = []
        self._slot: dict[str, int] = {}
        self._sources: list[str] = []
        self._story: list[str] = []
        self._code = array("i")  # each slot's story as a number (_story_code)
        self._story_code: dict[str, int] = {}
        self._links: list[str | None] = []
        self._vectors: list[bytes] = []
        self._published = array("d")
        self._alive = bytearray()
        self._starts = array("q", [0])
        self._terms = array("i")
        self._flags = array("B")
        self._term_id: dict[int, int] = {}
        self._df = array("i")
        self._postings: list[array[int]] = []
        # Lists and tuples rather than sets: a story has a few members and sources, a link
        # one entry or two, and a small set costs four times a small list.
        self._members: dict[str, list[int]] = {}
        self._story_sources: dict[str, tuple[str, ...]] = {}
        self._by_link: dict[str, list[int]] = {}
        self._scratch = np.zeros(1024, np.float64)
        self.live = 0
        # A back-fill index (StoryClusterer) holds the members of a fixed span of time,
        # [start, end) in POSIX seconds, and never evicts; the live one follows the newest.
        self.span: tuple[float, float] | None = None
        self.newest = -math.inf  # the latest time of any member held (a POSIX timestamp)
        self.seq = 0  # the store's story clock when the index was last in step with it
        # What the engine did in this process (/metrics): stories founded, entries that
        # joined one, stories merged into another.
        self.founded = self.joined = self.merged = 0

    def __contains__(self, uid: str) -> bool:
        return uid in self._slot

    def __len__(self) -> int:
        return self.live

    def story_of(self, uid: str) -> str:
        return self._story[self._slot[uid]]

    def sources_of(self, story_id: str) -> tuple[str, ...]:
        """Every source the story held here ever had a member from."""
        return self._story_sources.get(story_id, ())

    def holds_time(self, published: float) -> bool:
        """Whether a member published then (POSIX seconds) belongs in this index."""
        if self.span is not None:
            return self.span[0] <= published < self.span[1]
        return published >= self.newest - self.horizon.total_seconds()

    def stories(self) -> dict[str, frozenset[str]]:
        """Every story held, with its members' uids (tests, bench)."""
        return {s: frozenset(self._uids[i] for i in slots) for s, slots in self._members.items()}

    # -- changes ------------------------------------------------------------------------

    def add(self, features: EntryFeatures, story_id: str, sources: Iterable[str] = ()) -> None:
        """Hold the entry as a member of ``story_id`` (whose members elsewhere have
        ``sources``); an entry held already moves to that story (another process merged)."""
        slot = self._slot.get(features.uid)
        if slot is not None:
            self._move(slot, story_id)
        else:
            self._append(features, story_id)
        self._add_sources(story_id, (*sources, features.source_id))

    def hold(self, features: EntryFeatures, story_id: str, sources: Iterable[str] = ()) -> None:
        """``add`` the entry if its time is one this index holds (or it is held already);
        else only note ``sources`` on the story, if the story is held here."""
        if features.uid in self._slot or self.holds_time(features.published.timestamp()):
            self.add(features, story_id, sources)
        elif story_id in self._story_sources:
            self._add_sources(story_id, sources)

    def follow(
        self, features: EntryFeatures, decision: StoryDecision, sources: Iterable[str]
    ) -> None:
        """Apply a decision another index of the same store took: the merges of stories
        held here, then the entry (its story has ``sources`` there)."""
        for gone in decision.merged:
            if gone in self._members:
                self.merge(decision.story_id, gone)
        self.hold(features, decision.story_id, sources)

    def _append(self, features: EntryFeatures, story_id: str) -> None:
        slot = len(self._uids)
        self._uids.append(features.uid)
        self._slot[features.uid] = slot
        self._sources.append(features.source_id)
        self._story.append(story_id)
        self._code.append(self._code_of(story_id))
        self._links.append(features.link)
        self._vectors.append(features.embedding)
        self._published.append(features.published.timestamp())
        self.newest = max(self.newest, self._published[slot])
        self._alive.append(1)
        keys, flags = unpack_terms(features.terms)
        term_id, df, postings = self._term_id, self._df, self._postings
        terms = []
        for key in keys.tolist():
            term = term_id.get(key)
            if term is None:
                term = term_id[key] = len(df)
                df.append(0)
                postings.append(array("i"))
            terms.append(term)
            df[term] += 1
            postings[term].append(slot)
        self._terms.extend(terms)
        self._flags.frombytes(flags.tobytes())
        self._starts.append(len(self._terms))
        self._members.setdefault(story_id, []).append(slot)
        if features.link:
            self._by_link.setdefault(features.link, []).append(slot)
        self.live += 1

    def _move(self, slot: int, story_id: str) -> None:
        old = self._story[slot]
        if old == story_id:
            return
        self._leave(slot, old)
        self._story[slot] = story_id
        self._code[slot] = self._code_of(story_id)
        self._members.setdefault(story_id, []).append(slot)
        self._add_sources(story_id, (self._sources[slot],))

    def _add_sources(self, story_id: str, sources: Iterable[str]) -> None:
        known = self._story_sources.get(story_id, ())
        more = [s for s in dict.fromkeys(sources) if s not in known]
        if more or story_id not in self._story_sources:
            self._story_sources[story_id] = (*known, *more)

    def _code_of(self, story_id: str) -> int:
        code = self._story_code.get(story_id)
        if code is None:
            code = self._story_code[story_id] = len(self._story_code)
        return code

    def _leave(self, slot: int, story_id: str) -> None:
        members = self._members[story_id]
        members.remove(slot)
        if not members:
            del self._members[story_id]
            self._story_sources.pop(story_id, None)

    @property
    def horizon(self) -> timedelta:
        """How far behind the newest member the index holds members: two windows, so that
        an entry published up to a window before the newest still finds its whole window."""
        return 2 * self.settings.window

    def evict(self, before: datetime | None = None) -> int:
        """Let go of the members published before ``before`` (default: the horizon behind
        the newest member, a function of what is held, so a rebuilt index holds the same);
        returns how many."""
        limit = self.newest - self.horizon.total_seconds() if before is None else before.timestamp()
        published = np.frombuffer(self._published, np.float64)
        alive = np.frombuffer(self._alive, np.uint8)
        victims = np.flatnonzero((published < limit) & (alive == 1))
        for slot in victims.tolist():
            self._remove(slot)
        self._compact_if_sparse()
        return len(victims)

    def forget(self, uids: Iterable[str]) -> None:
        """Let go of these members (pruned from the store)."""
        for uid in uids:
            slot = self._slot.get(uid)
            if slot is not None:
                self._remove(slot)

    def _remove(self, slot: int) -> None:
        self._alive[slot] = 0
        self.live -= 1
        del self._slot[self._uids[slot]]
        for term in self._terms[self._starts[slot] : self._starts[slot + 1]]:
            self._df[term] -= 1
        self._leave(slot, self._story[slot])
        link = self._links[slot]
        if link:
            slots = self._by_link[link]
            slots.remove(slot)
            if not slots:
                del self._by_link[link]

    def _compact_if_sparse(self) -> None:
        """Rebuild the arrays without the members let go of, once they are most of them."""
        if len(self._uids) < 2 * self.live + 1024:
            return
        kept = [slot for slot in range(len(self._uids)) if self._alive[slot]]
        renumber = {old: new for new, old in enumerate(kept)}
        terms = np.frombuffer(self._terms, np.int32)
        used = np.flatnonzero(np.frombuffer(self._df, np.int32) > 0)
        term_of = np.full(len(self._df), -1, np.int32)
        term_of[used] = np.arange(len(used), dtype=np.int32)
        starts, new_terms, new_flags = array("q", [0]), array("i"), array("B")
        for slot in kept:
            span = slice(self._starts[slot], self._starts[slot + 1])
            new_terms.frombytes(term_of[terms[span]].tobytes())
            new_flags.extend(self._flags[span])
            starts.append(len(new_terms))
        self._term_id = {k: int(term_of[t]) for k, t in self._term_id.items() if term_of[t] >= 0}
        self._df = array("i", np.frombuffer(self._df, np.int32)[used].tolist())
        self._postings = [array("i") for _ in used]
        for new in range(len(kept)):
            for term in new_terms[starts[new] : starts[new + 1]]:
                self._postings[term].append(new)
        self._starts, self._terms, self._flags = starts, new_terms, new_flags
        for name in ("_uids", "_sources", "_story", "_links", "_vectors"):
            values = getattr(self, name)
            setattr(self, name, [values[slot] for slot in kept])
        self._published = array("d", [self._published[slot] for slot in kept])
        self._story_code = {}
        self._code = array("i", [self._code_of(story_id) for story_id in self._story])
        self._alive = bytearray(b"\x01" * len(kept))
        self._slot = {uid: slot for slot, uid in enumerate(self._uids)}
        self._members = {s: [renumber[i] for i in slots] for s, slots in self._members.items()}
        self._by_link = {k: [renumber[i] for i in slots] for k, slots in self._by_link.items()}

    # -- decisions ----------------------------------------------------------------------

    def assign(self, features: EntryFeatures) -> StoryDecision:
        """Decide the entry's story, merge the stories it bridges, and hold it."""
        decision = self.decide(features)
        for gone in decision.merged:
            self.merge(decision.story_id, gone)
        self.add(features, decision.story_id)
        self.count(decision)
        return decision

    def count(self, decision: StoryDecision) -> None:
        """Count a decision in what the engine did (assign's, or a back-fill index's)."""
        self.merged += len(decision.merged)
        if decision.joined:
            self.joined += 1
        else:
            self.founded += 1

    def merge(self, keep: str, gone: str) -> None:
        sources = self._story_sources.get(gone, ())  # its members let go of had some too
        for slot in sorted(self._members.get(gone, ())):
            self._move(slot, keep)
        self._add_sources(keep, sources)

    def decide(self, features: EntryFeatures) -> StoryDecision:
        """Which story the entry belongs to, and why (changes nothing)."""
        source = features.source_id
        linked = self._linked_stories(features.link) if features.link else set()
        by_link = [self._link_score(story_id, source) for story_id in sorted(linked)]
        by_link.sort(key=lambda s: (not s.matches, s.story_id))
        if by_link and by_link[0].matches:
            story_id = by_link[0].story_id
            return StoryDecision(story_id, True, MatchKind.LINK, tuple(by_link[:SCORES_KEPT]))
        if self.settings.mode == StoryMode.LINK or not self.live:
            return StoryDecision(features.uid, False, None, tuple(by_link[:SCORES_KEPT]))
        scores = self._similar_stories(features)
        best = scores[0] if scores and scores[0].matches else None
        if best is None:
            return StoryDecision(features.uid, False, None, tuple(scores[:SCORES_KEPT]))
        decision = StoryDecision(best.story_id, True, best.kind, tuple(scores[:SCORES_KEPT]))
        return self._plan_merges(features, decision, scores)

    def _linked_stories(self, link: str) -> set[str]:
        return {self._story[slot] for slot in self._by_link.get(link, ())}

    def _link_score(self, story_id: str, source: str) -> StoryScore:
        excluded = SAME_SOURCE if source in self._story_sources[story_id] else None
        return StoryScore(story_id, MatchKind.LINK, 1.0, 1.0, None, excluded)

    def _similar_stories(self, features: EntryFeatures) -> list[StoryScore]:
        """Every story with a member sharing one of the entry's heaviest terms, scored by its
        best such member; matching ones first, then by score."""
        settings = self.settings
        keys, flags = unpack_terms(features.terms)
        term_id = self._term_id
        known = np.asarray([term_id.get(key, -1) for key in keys.tolist()], np.intp)
        held = known >= 0
        mine = known[held]
        df = np.zeros(len(known), np.float64)
        df[held] = np.frombuffer(self._df, np.int32)[mine]
        df += 1
        total = self.live + 1 + BACKGROUND_DOCUMENTS
        idf = _idf(total, df)
        weights = self._weight[flags] * idf
        norm = math.sqrt(float(np.dot(weights, weights)))
        candidates = self._candidates(known, weights, df, features.published.timestamp())
        if not candidates.size or not norm:
            return []
        scratch = self._scratch_for(len(self._df))
        scratch[mine] = weights[held]
        starts = np.frombuffer(self._starts, np.int64)
        lengths = starts[candidates + 1] - starts[candidates]
        offsets = np.concatenate(([0], np.cumsum(lengths)[:-1]))
        spans = np.repeat(starts[candidates] - offsets, lengths) + np.arange(int(lengths.sum()))
        terms = np.frombuffer(self._terms, np.int32)[spans]
        member_flags = np.frombuffer(self._flags, np.uint8)[spans]
        member_df = np.frombuffer(self._df, np.int32)[terms].astype(np.float64)
        entry_weights = scratch[terms]
        member_df += entry_weights > 0  # the entry counts in the frequencies of its terms
        member_idf = _idf(total, member_df)
        member_weights = self._weight[member_flags] * member_idf
        cosines = _cosines(member_weights, entry_weights, offsets, norm)
        # Few terms are thin evidence (a headline with no summary): the cosine of entries
        # with fewer than SHORT_TEXT terms is scaled down.
        scarce = np.minimum(1.0, lengths / SHORT_TEXT) * min(1.0, len(known) / SHORT_TEXT)
        cosines *= np.sqrt(scarce)
        published = np.frombuffer(self._published, np.float64)[candidates]
        apart = np.abs(published - features.published.timestamp())
        decay = 1 - settings.time_decay * apart / settings.window.total_seconds()
        scores = cosines * decay
        if settings.embedder and features.embedding:
            scores = self._with_vectors(features.embedding, candidates, cosines) * decay
        headlines = np.zeros(len(candidates), bool)
        if settings.mode == StoryMode.EVENT and np.all(flags & TITLE):
            # Two headlines with no summary: every word alike, no discount (see above).
            # Beyond the headline window they do not match.
            headlines = np.minimum.reduceat(member_flags & TITLE, offsets) > 0
            scratch[mine] = idf[held]
            plain = _cosines(member_idf, scratch[terms], offsets, float(np.linalg.norm(idf)))
            plain *= decay * (apart <= settings.headline_window.total_seconds())
            scores = np.where(headlines, plain, scores)
        scratch[mine] = 0.0
        return self._story_scores(features.source_id, candidates, cosines, scores, headlines)

    def _scratch_for(self, size: int) -> npt.NDArray[np.float64]:
        """A zeroed array of at least ``size`` term weights (zeroed again after use)."""
        if len(self._scratch) < size:
            self._scratch = np.zeros(max(size, 2 * len(self._scratch)), np.float64)
        return self._scratch

    def _candidates(
        self,
        known: npt.NDArray[np.intp],
        weights: npt.NDArray[np.float64],
        df: npt.NDArray[np.float64],
        published: float,
    ) -> npt.NDArray[np.intp]:
        """The live members within the window that share one of the entry's heaviest terms
        (names, figures, rare words): up to LOOKUP_TERMS of its terms held by other members,
        heaviest first (then by key), while their frequencies add up to at most
        ``max_candidates`` (when none does, see below); sorted slots."""
        budget = self.settings.max_candidates
        shared = np.flatnonzero((known >= 0) & (df > 1))
        shared = shared[np.argsort(-weights[shared], kind="stable")][:LOOKUP_TERMS]  # ties: key
        counts = (df[shared] - 1).astype(int).tolist()
        terms = list(zip(known[shared].tolist(), counts, strict=True))
        found = []
        for term, count in terms:
            if count > budget:
                continue
            budget -= count
            found.append(np.frombuffer(self._postings[term], np.int32))
        window = self.settings.window.total_seconds()
        if not found and terms:
            # Every term is common here: the heaviest one's members, in a time band as
            # much narrower than the window as the term is more frequent than the budget.
            term, count = terms[0]
            found.append(np.frombuffer(self._postings[term], np.int32))
            window *= self.settings.max_candidates / count
        if not found:
            return np.empty(0, np.intp)
        slots = np.unique(np.concatenate(found)).astype(np.intp)
        alive = np.frombuffer(self._alive, np.uint8)[slots] == 1
        near = np.abs(np.frombuffer(self._published, np.float64)[slots] - published)
        kept: npt.NDArray[np.intp] = slots[alive & (near <= window)]
        return kept

    def _with_vectors(
        self,
        vector: bytes,
        candidates: npt.NDArray[np.intp],
        cosines: npt.NDArray[np.float64],
    ) -> npt.NDArray[np.float64]:
        """LEXICAL_SHARE of the word cosine plus the rest of the sentence vectors' cosine
        (members without a vector keep their word cosine)."""
        blended = cosines.copy()
        usable = [
            i
            for i, slot in enumerate(candidates.tolist())
            if len(self._vectors[slot]) == len(vector)
        ]
        if usable:
            members = unpack_vectors([self._vectors[candidates[i]] for i in usable])
            meaning = members @ unpack_vectors([vector])[0]
            blended[usable] = LEXICAL_SHARE * cosines[usable] + (1 - LEXICAL_SHARE) * meaning
        return blended

    def _story_scores(
        self,
        source: str,
        candidates: npt.NDArray[np.intp],
        cosines: npt.NDArray[np.float64],
        scores: npt.NDArray[np.float64],
        headlines: npt.NDArray[np.bool_],
    ) -> list[StoryScore]:
        """Each candidate story's best member: the stories that may match, and the best
        others up to SCORES_KEPT, matching ones first, then by score."""
        settings = self.settings
        near_copy = settings.near_copy_threshold
        threshold = settings.embedding_threshold if settings.embedder else settings.event_threshold
        if settings.mode == StoryMode.EVENT:
            copies = cosines >= near_copy
            values = np.where(copies, cosines, scores)
            limits = np.where(headlines, settings.headline_threshold, threshold)
            below = ~copies & (scores < limits)
        else:
            copies = np.ones(len(candidates), bool)
            values, below = cosines, cosines < near_copy
        codes = np.frombuffer(self._code, np.int32)[candidates]
        order = np.lexsort((~copies, -values, below, codes))
        first = np.ones(len(order), bool)
        first[1:] = codes[order][1:] != codes[order][:-1]
        best = order[first]  # each story's best member (exact ties settled below)
        ranked = best[np.lexsort((-values[best], below[best]))]
        chosen = set(ranked[:SCORES_KEPT].tolist()) | set(best[~below[best]].tolist())
        # Members of one story that tie exactly: the smallest uid speaks for it, as in any
        # order of arrival.
        ordered = order.tolist()
        same = (codes[order][1:] == codes[order][:-1]) & (values[order][1:] == values[order][:-1])
        tied_after = {ordered[k] for k in np.flatnonzero(same).tolist()}
        found = []
        for i in sorted(chosen):
            story_id = self._story[candidates[i]]
            uid = self._uids[candidates[i]]
            if i in tied_after:
                tied = (codes == codes[i]) & (values == values[i]) & (below == below[i])
                uid = min(self._uids[candidates[j]] for j in np.flatnonzero(tied).tolist())
            if copies[i]:
                kind, limit = MatchKind.NEAR_COPY, near_copy
            elif headlines[i]:
                kind, limit = MatchKind.HEADLINE, settings.headline_threshold
            else:
                kind, limit = MatchKind.EVENT, threshold
            excluded = SAME_SOURCE if source in self._story_sources[story_id] else None
            found.append(StoryScore(story_id, kind, float(values[i]), limit, uid, excluded))
        found.sort(key=_rank)
        return found

    def _plan_merges(
        self, features: EntryFeatures, decision: StoryDecision, scores: list[StoryScore]
    ) -> StoryDecision:
        """The stories the entry bridges (see the module docstring), merged into one."""
        threshold = self.settings.merge_threshold
        if not threshold:
            return decision
        group = {decision.story_id}
        taken = set(self._story_sources[decision.story_id]) | {features.source_id}
        for score in scores[1:]:
            if not score.matches or score.score < threshold:
                continue
            sources = set(self._story_sources[score.story_id])
            if sources & taken:
                continue
            group.add(score.story_id)
            taken |= sources
        if len(group) == 1:
            return decision
        keep = min(group, key=lambda s: (-len(self._story_sources[s]), s))
        return replace(decision, story_id=keep, merged=tuple(sorted(group - {keep})))


def _rank(score: StoryScore) -> tuple[bool, float, bool, str, str]:
    """Matching first, then the higher score, a near-copy before an event, then by ids."""
    return (
        not score.matches,
        -score.score,
        score.kind != MatchKind.NEAR_COPY,
        score.story_id,
        score.member_uid or "",
    )


def _class_weight(settings: StorySettings, flags: int) -> float:
    weight = 1.0
    if flags & NAME:
        weight = settings.name_weight
    if flags & NUMBER:
        weight = max(weight, settings.number_weight)
    if flags & TITLE:
        weight *= settings.title_weight
    return weight


def _cosines(
    member_weights: npt.NDArray[np.float64],
    entry_weights: npt.NDArray[np.float64],
    offsets: npt.NDArray[np.int64],
    norm: float,
) -> npt.NDArray[np.float64]:
    """Each candidate's cosine with the entry: its weights laid end to end from ``offsets``,
    the entry's weight of each of those terms beside them, the entry's norm."""
    dots = np.add.reduceat(member_weights * entry_weights, offsets)
    norms = np.sqrt(np.add.reduceat(member_weights * member_weights, offsets))
    cosines: npt.NDArray[np.float64] = dots / (norms * norm)
    return cosines


def _idf(total: float, df: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """Smoothed inverse document frequency: ln(total / (df + 1)) + 1."""
    return np.log(total / (df + 1)) + 1
