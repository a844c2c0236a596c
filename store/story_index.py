"""Story clustering on the database: the table-backed StoryIndex and the ingest step.

    new entries of one ingest, oldest first
      -> store.stories.assign_story(entry, SqlStoryIndex(conn), settings)   (pure decision)
         lookups: entries.canonical_link (indexed) joined to story_members (by entry uid);
                  story_keys (key, story id) by primary key; story_members by story id
         writes:  stories row, the member (unique per entry: ON CONFLICT DO NOTHING),
                  band keys (upsert, latest published), event-mode term counts
      -> the member row keeps the decision's kind and scores, for `feedmill explain`

Everything runs on the caller's sync Connection (``AsyncConnection.run_sync``) inside the
ingest transaction, the same on SQLite and PostgreSQL. Every query is by primary key or an
index; none scans the stored entries. Two workers on PostgreSQL clustering copies of one
story at once: the story row is locked (UPDATE) before its counts and representative are
recomputed, in a statement that then sees the other's committed member, so no member is lost;
two simultaneous *first* copies each found a story (neither sees the other yet).
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, bindparam, delete, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from store.stories import (
    EntryFeatures,
    StoryDecision,
    StoryEntry,
    StoryMode,
    StoryScore,
    StorySettings,
    StoryState,
    assign_story,
    featurize_entry,
)
from store.tables import (
    Base,
    EntryRow,
    SourceRow,
    StoryKeyRow,
    StoryMemberRow,
    StoryRow,
    StoryTermRow,
    TermFrequencyRow,
)

MAX_TERM_LENGTH = 200  # longer "words" are noise; they are left out of the term tables
SCORES_KEPT = 5  # candidate scores kept per member for explain
_TOTAL = ""  # the term_frequencies row that counts the entries
_IN_CHUNK = 2000  # values per IN (...): under SQLite's and PostgreSQL's parameter limits


@dataclass(frozen=True, slots=True)
class Clustered:
    """What clustering one ingest's new entries did."""

    decisions: Mapping[str, StoryDecision]  # entry uid -> decision
    joined: frozenset[str]  # stories that gained a member from another entry


def _insert(conn: Connection) -> Any:
    return postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert


def _greatest(conn: Connection, left: Any, right: Any) -> Any:
    return (func.greatest if conn.dialect.name == "postgresql" else func.max)(left, right)


class SqlStoryIndex:
    """The StoryIndex Protocol over the story tables, on one sync connection, for one ingest.

    Reads are batched per document: :meth:`prefetch` looks up every canonical link, band key
    (and, in event mode, term key and term frequency) of the document's new entries at once,
    then the members and terms of every story those found, a handful of indexed ``IN``
    queries in all; the per-entry lookups are answered from what it read. Anything a lookup
    needs that was not prefetched is read then (one query). Writes wait in memory until
    :meth:`flush`, which the ingest calls once per document: a handful of multi-row
    statements. Lookups see the waiting writes too, so entries of one document see each
    other. Term statistics (event mode's IDF and story terms) are kept only when
    ``track_terms``.
    """

    def __init__(self, conn: Connection, now: datetime, *, track_terms: bool) -> None:
        self.conn = conn
        self.now = now
        self.track_terms = track_terms
        # What was read from the tables, by lookup key.
        self._by_link: dict[str, set[str]] = {}
        # key -> story -> its latest member's publication (Unix seconds), as stored
        self._key_rows: dict[int, dict[str, int]] = {}
        self._keys_since: int | None = None  # key rows were read from this time on
        self._stored: dict[str, list[EntryFeatures]] = {}  # story -> its stored members
        self._stored_terms: dict[str, Counter[str]] = {}
        self._df: dict[str, int] = {}
        # What this document's entries add, not yet written.
        self._new_links: dict[str, set[str]] = defaultdict(set)
        self._new_keys: dict[int, dict[str, int]] = defaultdict(dict)
        self._new_members: dict[str, list[EntryFeatures]] = defaultdict(list)
        self._rows: dict[str, dict[str, Any]] = {}  # entry uid -> story_members row
        self._founded: list[str] = []
        self._terms: Counter[tuple[str, str]] = Counter()
        self._frequencies: Counter[str] = Counter()

    # -- batched reads ---------------------------------------------------------------------

    def prefetch(self, features: Sequence[EntryFeatures], settings: StorySettings) -> None:
        """Read what the lookups of these entries will ask for, in a few queries."""
        self._read_links(sorted({f.link for f in features if f.link}))
        if settings.mode == StoryMode.LINK or not features:
            return
        keys: set[int] = set()
        for found in features:
            keys.update(found.band_keys)
            keys.update(found.term_keys)  # every term's key: any may be among the rarest
        if self.track_terms:
            self._read_frequencies(sorted({t for f in features for t in f.terms}))
        since = min(f.published for f in features) - settings.window
        self._read_keys(sorted(keys), _seconds(since))
        stories = {s for key in keys for s in self._key_rows.get(key, {})}
        stories.update(s for found in self._by_link.values() for s in found)
        self._read_stories(sorted(stories))

    def _read_links(self, links: Sequence[str]) -> None:
        wanted = [link for link in links if link not in self._by_link]
        for link in wanted:
            self._by_link[link] = set()
        for chunk in _chunks(wanted):
            query = (
                select(EntryRow.canonical_link, StoryMemberRow.story_id)
                .join(EntryRow, EntryRow.uid == StoryMemberRow.entry_uid)
                .where(EntryRow.canonical_link.in_(chunk))
            )
            for found, story_id in self.conn.execute(query):
                self._by_link[found or ""].add(story_id)

    def _read_keys(self, keys: Sequence[int], since: int) -> None:
        """Every (story, latest) row of these keys from ``since`` (Unix seconds) on; a later
        call with an earlier ``since`` reads all keys again."""
        if self._keys_since is not None and since < self._keys_since:
            self._key_rows.clear()
        if self._keys_since is None or since < self._keys_since:
            self._keys_since = since
        wanted = [key for key in keys if key not in self._key_rows]
        for key in wanted:
            self._key_rows[key] = {}
        for chunk in _chunks(wanted):
            query = select(StoryKeyRow.key, StoryKeyRow.story_id, StoryKeyRow.last_published_s)
            query = query.where(
                StoryKeyRow.key.in_(chunk), StoryKeyRow.last_published_s >= self._keys_since
            )
            for key, story_id, latest in self.conn.execute(query):
                self._key_rows[key][story_id] = latest

    def _read_stories(self, story_ids: Sequence[str]) -> None:
        wanted = [s for s in story_ids if s not in self._stored]
        for story_id in wanted:
            self._stored[story_id] = []
        for chunk in _chunks(wanted):
            query = select(
                StoryMemberRow.story_id,
                StoryMemberRow.entry_uid,
                StoryMemberRow.source_id,
                StoryMemberRow.published,
                StoryMemberRow.signature,
            ).where(StoryMemberRow.story_id.in_(chunk))
            for story_id, uid, source_id, published, signature in self.conn.execute(query):
                self._stored[story_id].append(
                    EntryFeatures(uid, source_id, published, None, signature, (), frozenset(), ())
                )
        if not self.track_terms:
            return
        for story_id in wanted:
            self._stored_terms[story_id] = Counter()
        for chunk in _chunks(wanted):
            terms = select(StoryTermRow.story_id, StoryTermRow.term, StoryTermRow.count).where(
                StoryTermRow.story_id.in_(chunk)
            )
            for story_id, term, count in self.conn.execute(terms):
                self._stored_terms[story_id][term] += count

    def _read_frequencies(self, terms: Sequence[str]) -> None:
        wanted = [t for t in ([_TOTAL, *terms]) if t not in self._df]
        wanted = [t for t in wanted if len(t) <= MAX_TERM_LENGTH]
        for term in wanted:
            self._df[term] = 0
        for chunk in _chunks(wanted):
            query = select(TermFrequencyRow.term, TermFrequencyRow.count).where(
                TermFrequencyRow.term.in_(chunk)
            )
            for term, count in self.conn.execute(query):
                self._df[term] = count

    # -- the StoryIndex Protocol -------------------------------------------------------------

    def stories_by_link(self, link: str) -> Sequence[str]:
        self._read_links([link])
        return sorted(self._by_link[link] | self._new_links.get(link, set()))

    def stories_by_keys(self, keys: Sequence[int], since: datetime, limit: int) -> Sequence[str]:
        if not keys:
            return []
        wanted = sorted(set(keys))
        after = _seconds(since)  # whole seconds: a candidate a second early is harmless
        self._read_keys(wanted, after)
        counts: Counter[str] = Counter()
        for key in wanted:
            latest = self._key_rows[key]
            added = self._new_keys.get(key)
            if added:
                latest = {**latest}
                for story_id, published in added.items():
                    if published > latest.get(story_id, published - 1):
                        latest[story_id] = published
            counts.update(s for s, published in latest.items() if published >= after)
        ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
        return [story_id for story_id, _ in ranked[:limit]]

    def load_stories(
        self, story_ids: Sequence[str], max_members: int, max_terms: int
    ) -> Sequence[StoryState]:
        if not story_ids:
            return []
        self._read_stories(story_ids)
        stories = []
        for story_id in story_ids:
            found = self._stored[story_id] + self._new_members.get(story_id, [])
            if not found:  # pruned meanwhile
                continue
            recent = sorted(found, key=lambda m: (m.published, m.uid))[-max_members:]
            sources = frozenset(m.source_id for m in found)
            terms = self._story_terms(story_id, max_terms)
            stories.append(StoryState(story_id, tuple(recent), terms, sources))
        return stories

    def _story_terms(self, story_id: str, max_terms: int) -> dict[str, int]:
        if not self.track_terms:
            return {}
        counts = Counter(self._stored_terms.get(story_id, Counter()))
        for (story, term), count in self._terms.items():
            if story == story_id:
                counts[term] += count
        return dict(sorted(counts.items(), key=lambda t: (-t[1], t[0]))[:max_terms])

    def term_frequencies(self, terms: Sequence[str]) -> tuple[int, Mapping[str, int]]:
        if not self.track_terms:
            return 0, {}
        wanted = [t for t in terms if len(t) <= MAX_TERM_LENGTH]
        self._read_frequencies(wanted)
        total = self._df[_TOTAL] + self._frequencies[_TOTAL]
        found = {t: self._df[t] + self._frequencies[t] for t in wanted}
        return total, {t: n for t, n in found.items() if n}

    def add_member(self, story_id: str, features: EntryFeatures) -> None:
        if features.uid in self._rows:
            return
        if story_id == features.uid:
            self._founded.append(story_id)
        self._new_members[story_id].append(features)
        self._rows[features.uid] = {
            "entry_uid": features.uid,
            "story_id": story_id,
            "source_id": features.source_id,
            "published": features.published,
            "signature": features.signature,
            "kind": None,
            "scores": [],
            "joined_at": self.now,
        }
        if features.link:
            self._new_links[features.link].add(story_id)
        published = _seconds(features.published)
        for key in (*features.band_keys, *features.term_keys):
            latest = self._new_keys[key].get(story_id)
            if latest is None or published > latest:
                self._new_keys[key][story_id] = published
        if self.track_terms:
            kept = [t for t in features.terms if len(t) <= MAX_TERM_LENGTH]
            self._terms.update((story_id, t) for t in kept)
            self._frequencies.update([_TOTAL, *kept])

    def record(self, uid: str, decision: StoryDecision) -> None:
        """Keep the decision (kind, best scores) on the entry's member row, for explain."""
        row = self._rows.get(uid)
        if row is not None:
            row["kind"] = decision.kind
            row["scores"] = [_score(s) for s in decision.scores[:SCORES_KEPT]]

    def flush(self) -> None:
        """Write what the document's entries did: stories, members, keys, terms; then recount
        the stories that gained members. A few multi-row statements."""
        conn, insert = self.conn, _insert(self.conn)
        if not self._rows:
            return
        founded = set(self._founded)
        stories = [
            {
                "id": story_id,
                "representative_uid": story_id,
                "member_count": 1,
                "source_count": 1,
                "created_at": self.now,
                "updated_at": self.now,
            }
            for story_id in sorted(founded)
        ]
        if stories:
            conn.execute(insert(StoryRow).on_conflict_do_nothing(index_elements=["id"]), stories)
        members = insert(StoryMemberRow).on_conflict_do_nothing(index_elements=["entry_uid"])
        conn.execute(members, [self._rows[uid] for uid in sorted(self._rows)])
        self._flush_keys()
        if self.track_terms:
            self._flush_terms()
        joined = {row["story_id"] for row in self._rows.values()} - founded
        joined |= {s for s in founded if len(self._new_members[s]) > 1}
        refresh_stories(conn, sorted(joined), self.now)

    def _flush_keys(self) -> None:
        statement = _insert(self.conn)(StoryKeyRow)
        statement = statement.on_conflict_do_update(
            index_elements=["key", "story_id"],
            set_={
                "last_published_s": _greatest(
                    self.conn, StoryKeyRow.last_published_s, statement.excluded.last_published_s
                )
            },
        )
        stored = self._key_rows
        rows = [  # rows the table has already, as late or later, need no writing
            {"key": key, "story_id": story_id, "last_published_s": latest}
            for key, stories in sorted(self._new_keys.items())
            for story_id, latest in sorted(stories.items())
            if not (story_id in stored.get(key, ()) and stored[key][story_id] >= latest)
        ]
        for start in range(0, len(rows), 500):
            self.conn.execute(statement, rows[start : start + 500])

    def _flush_terms(self) -> None:
        insert = _insert(self.conn)
        counted = insert(StoryTermRow)
        counted = counted.on_conflict_do_update(
            index_elements=["story_id", "term"],
            set_={"count": StoryTermRow.count + counted.excluded.count},
        )
        rows = [
            {"story_id": story_id, "term": term, "count": count}
            for (story_id, term), count in sorted(self._terms.items())
        ]
        for start in range(0, len(rows), 500):
            self.conn.execute(counted, rows[start : start + 500])
        frequency = insert(TermFrequencyRow)
        frequency = frequency.on_conflict_do_update(
            index_elements=["term"],
            set_={"count": TermFrequencyRow.count + frequency.excluded.count},
        )
        rows = [{"term": t, "count": c} for t, c in sorted(self._frequencies.items())]
        for start in range(0, len(rows), 500):
            self.conn.execute(frequency, rows[start : start + 500])


def refresh_stories(conn: Connection, story_ids: Sequence[str], now: datetime) -> list[str]:
    """Recount the stories' members and sources and re-choose their representatives (the
    earliest member); delete those left without members. Returns the deleted ones.

    The first UPDATE locks the story rows (PostgreSQL waits there for another writer of the
    same stories to commit, rows in id order); the recount is a later statement, so it sees
    that writer's members.
    """
    wanted = sorted(set(story_ids))
    gone: list[str] = []
    for start in range(0, len(wanted), 500):
        chunk = wanted[start : start + 500]
        conn.execute(update(StoryRow).where(StoryRow.id.in_(chunk)).values(updated_at=now))
        counts: dict[str, tuple[int, int]] = {}
        query = (
            select(
                StoryMemberRow.story_id,
                func.count(),
                func.count(StoryMemberRow.source_id.distinct()),
            )
            .where(StoryMemberRow.story_id.in_(chunk))
            .group_by(StoryMemberRow.story_id)
        )
        for story_id, count, sources in conn.execute(query):
            counts[story_id] = (count, sources)
        earliest: dict[str, str] = {}
        ordered = (
            select(StoryMemberRow.story_id, StoryMemberRow.entry_uid)
            .where(StoryMemberRow.story_id.in_(chunk))
            .order_by(StoryMemberRow.story_id, StoryMemberRow.published, StoryMemberRow.entry_uid)
        )
        for story_id, uid in conn.execute(ordered):
            earliest.setdefault(story_id, uid)
        rows = [
            {"_id": story_id, "member_count": n, "source_count": k, "representative_uid": first}
            for story_id, (n, k) in sorted(counts.items())
            for first in [earliest[story_id]]
        ]
        if rows:
            conn.execute(_REFRESH, rows)
        for story_id in chunk:
            if story_id not in counts:
                _delete_story(conn, story_id)
                gone.append(story_id)
    return gone


_stories_table = Base.metadata.tables["stories"]
_REFRESH = (
    update(_stories_table)
    .where(_stories_table.c.id == bindparam("_id"))
    .values(
        member_count=bindparam("member_count"),
        source_count=bindparam("source_count"),
        representative_uid=bindparam("representative_uid"),
    )
)


def _delete_story(conn: Connection, story_id: str) -> None:
    for table in (StoryKeyRow, StoryTermRow):
        conn.execute(delete(table).where(table.story_id == story_id))
    conn.execute(delete(StoryRow).where(StoryRow.id == story_id))


def cluster_entries(
    conn: Connection, entries: Sequence[StoryEntry], settings: StorySettings, now: datetime
) -> Clustered:
    """Assign each new entry (oldest first) a story, recording the decision on its member."""
    index = SqlStoryIndex(conn, now, track_terms=settings.mode == StoryMode.EVENT)
    ordered = sorted(entries, key=lambda e: (e.published, e.uid))
    features = [featurize_entry(entry, settings) for entry in ordered]
    index.prefetch(features, settings)
    decisions: dict[str, StoryDecision] = {}
    for entry, found in zip(ordered, features, strict=True):
        decision = assign_story(entry, index, settings, features=found)
        decisions[entry.uid] = decision
        index.record(entry.uid, decision)
    index.flush()
    joined = frozenset(d.story_id for d in decisions.values() if d.joined)
    bump_story_sources(conn, joined)
    return Clustered(decisions, joined)


def bump_story_sources(conn: Connection, story_ids: Iterable[str]) -> None:
    """A story changed: bump the content version of every source with a member in it, so
    rendered feeds that show one of its members (and credit the others) are rendered again.
    One UPDATE over the sorted ids, so two writers lock source rows in the same order."""
    wanted = sorted(set(story_ids))
    if not wanted:
        return
    sources: set[str] = set()
    for start in range(0, len(wanted), 500):
        query = select(StoryMemberRow.source_id).where(
            StoryMemberRow.story_id.in_(wanted[start : start + 500])
        )
        sources.update(conn.execute(query.distinct()).scalars())
    if sources:
        conn.execute(
            update(SourceRow)
            .where(SourceRow.id.in_(sorted(sources)))
            .values(content_version=SourceRow.content_version + 1)
        )


def _seconds(moment: datetime) -> int:
    """Unix time in whole seconds, rounded down: how story_keys keeps publication times."""
    return math.floor(moment.timestamp())


def _chunks(values: Sequence[Any], size: int = _IN_CHUNK) -> Iterable[Sequence[Any]]:
    return (values[start : start + size] for start in range(0, len(values), size))


def _score(score: StoryScore) -> dict[str, Any]:
    return {
        "story": score.story_id,
        "kind": str(score.kind),
        "score": round(score.score, 4),
        "threshold": score.threshold,
        "member": score.member_uid,
        "excluded": score.excluded,
    }


def forget_entries(conn: Connection, uids: Sequence[str], now: datetime) -> list[str]:
    """Remove pruned entries from their stories, keeping each story consistent (counts,
    representative; a story left empty is deleted with its keys). Returns the story ids
    that changed."""
    stories: set[str] = set()
    for start in range(0, len(uids), 500):
        chunk = list(uids[start : start + 500])
        found = conn.execute(
            select(StoryMemberRow.story_id).where(StoryMemberRow.entry_uid.in_(chunk))
        )
        stories.update(found.scalars())
        conn.execute(delete(StoryMemberRow).where(StoryMemberRow.entry_uid.in_(chunk)))
    refresh_stories(conn, sorted(stories), now)
    bump_story_sources(conn, stories)
    return sorted(stories)


async def forget_pruned(conn: AsyncConnection, row_ids: Sequence[int], now: datetime) -> None:
    """forget_entries for the entries with these row ids, before retention deletes them."""
    uids: list[str] = []
    for start in range(0, len(row_ids), 500):
        query = select(EntryRow.uid).where(EntryRow.id.in_(row_ids[start : start + 500]))
        uids += (await conn.execute(query)).scalars().all()
    if uids:
        await conn.run_sync(forget_entries, uids, now)
