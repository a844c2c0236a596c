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

    Reads go to the tables (one indexed query per lookup; the document's canonical links are
    looked up together, up front). Writes wait in memory until :meth:`flush`, which the
    ingest calls once per document: a handful of multi-row statements instead of a dozen per
    entry. Lookups see the waiting writes too, so entries of one document see each other.
    Term statistics (event mode's IDF and story terms) are kept only when ``track_terms``.
    """

    def __init__(
        self,
        conn: Connection,
        now: datetime,
        *,
        track_terms: bool,
        links: Iterable[str] = (),
    ) -> None:
        self.conn = conn
        self.now = now
        self.track_terms = track_terms
        self._by_link = self._prefetch_links(sorted(set(links)))
        self._new_links: dict[str, set[str]] = defaultdict(set)
        self._new_keys: dict[int, dict[str, datetime]] = defaultdict(dict)
        self._new_members: dict[str, list[EntryFeatures]] = defaultdict(list)
        self._rows: dict[str, dict[str, Any]] = {}  # entry uid -> story_members row
        self._founded: list[str] = []
        self._terms: Counter[tuple[str, str]] = Counter()
        self._frequencies: Counter[str] = Counter()

    def _prefetch_links(self, links: Sequence[str]) -> dict[str, set[str]]:
        found: dict[str, set[str]] = defaultdict(set)
        for start in range(0, len(links), 500):
            query = (
                select(EntryRow.canonical_link, StoryMemberRow.story_id)
                .join(EntryRow, EntryRow.uid == StoryMemberRow.entry_uid)
                .where(EntryRow.canonical_link.in_(links[start : start + 500]))
            )
            for link, story_id in self.conn.execute(query):
                found[link or ""].add(story_id)
        return found

    def stories_by_link(self, link: str) -> Sequence[str]:
        return sorted(self._by_link.get(link, set()) | self._new_links.get(link, set()))

    def stories_by_keys(self, keys: Sequence[int], since: datetime, limit: int) -> Sequence[str]:
        if not keys:
            return []
        wanted = sorted(set(keys))
        shared = func.count().label("shared")
        query = (
            select(StoryKeyRow.story_id, shared)
            .where(StoryKeyRow.key.in_(wanted), StoryKeyRow.last_published >= since)
            .group_by(StoryKeyRow.story_id)
            .order_by(shared.desc(), StoryKeyRow.story_id)
            .limit(limit)
        )
        counts: Counter[str] = Counter({story_id: n for story_id, n in self.conn.execute(query)})
        for key in wanted:
            for story_id, latest in self._new_keys.get(key, {}).items():
                if latest >= since:
                    counts[story_id] += 1  # may count a key the table has too: an estimate
        ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
        return [story_id for story_id, _ in ranked[:limit]]

    def load_stories(
        self, story_ids: Sequence[str], max_members: int, max_terms: int
    ) -> Sequence[StoryState]:
        if not story_ids:
            return []
        members: dict[str, list[EntryFeatures]] = defaultdict(list)
        query = select(
            StoryMemberRow.story_id,
            StoryMemberRow.entry_uid,
            StoryMemberRow.source_id,
            StoryMemberRow.published,
            StoryMemberRow.signature,
        ).where(StoryMemberRow.story_id.in_(story_ids))
        for story_id, uid, source_id, published, signature in self.conn.execute(query):
            members[story_id].append(
                EntryFeatures(uid, source_id, published, None, signature, (), frozenset(), ())
            )
        for story_id in story_ids:
            members[story_id] += self._new_members.get(story_id, [])
        terms = self._story_terms(story_ids, max_terms)
        stories = []
        for story_id in story_ids:
            found = members.get(story_id)
            if not found:  # pruned meanwhile
                continue
            recent = sorted(found, key=lambda m: (m.published, m.uid))[-max_members:]
            sources = frozenset(m.source_id for m in found)
            stories.append(StoryState(story_id, tuple(recent), terms.get(story_id, {}), sources))
        return stories

    def _story_terms(self, story_ids: Sequence[str], max_terms: int) -> dict[str, dict[str, int]]:
        if not self.track_terms:
            return {}
        counts: dict[str, Counter[str]] = defaultdict(Counter)
        query = select(StoryTermRow.story_id, StoryTermRow.term, StoryTermRow.count).where(
            StoryTermRow.story_id.in_(story_ids)
        )
        for story_id, term, count in self.conn.execute(query):
            counts[story_id][term] += count
        for (story_id, term), count in self._terms.items():
            if story_id in counts or story_id in story_ids:
                counts[story_id][term] += count
        return {
            story_id: dict(sorted(found.items(), key=lambda t: (-t[1], t[0]))[:max_terms])
            for story_id, found in counts.items()
        }

    def term_frequencies(self, terms: Sequence[str]) -> tuple[int, Mapping[str, int]]:
        if not self.track_terms:
            return 0, {}
        wanted = [t for t in terms if len(t) <= MAX_TERM_LENGTH]
        query = select(TermFrequencyRow.term, TermFrequencyRow.count).where(
            TermFrequencyRow.term.in_([_TOTAL, *wanted])
        )
        found: Counter[str] = Counter({term: count for term, count in self.conn.execute(query)})
        for term in [_TOTAL, *wanted]:
            if self._frequencies[term]:
                found[term] += self._frequencies[term]
        total = found.pop(_TOTAL, 0)
        return total, dict(found)

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
        for key in (*features.band_keys, *features.term_keys):
            latest = self._new_keys[key].get(story_id)
            if latest is None or features.published > latest:
                self._new_keys[key][story_id] = features.published
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
                "last_published": _greatest(
                    self.conn, StoryKeyRow.last_published, statement.excluded.last_published
                )
            },
        )
        rows = [
            {"key": key, "story_id": story_id, "last_published": latest}
            for key, stories in sorted(self._new_keys.items())
            for story_id, latest in sorted(stories.items())
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
    links = [e.link for e in entries if e.link]
    tracking = settings.mode == StoryMode.EVENT
    index = SqlStoryIndex(conn, now, track_terms=tracking, links=links)
    decisions: dict[str, StoryDecision] = {}
    for entry in sorted(entries, key=lambda e: (e.published, e.uid)):
        decision = assign_story(entry, index, settings)
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


# Used by EXPLAIN tests and BENCHMARKS.md: the statements a new entry's lookup runs.
LOOKUP_BY_KEYS = (
    select(StoryKeyRow.story_id, func.count())
    .where(
        StoryKeyRow.key.in_(bindparam("keys", expanding=True)),
        StoryKeyRow.last_published >= bindparam("since"),
    )
    .group_by(StoryKeyRow.story_id)
)
LOOKUP_BY_LINK = (
    select(StoryMemberRow.story_id)
    .join(EntryRow, EntryRow.uid == StoryMemberRow.entry_uid)
    .where(EntryRow.canonical_link == bindparam("link"))
)
