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

from collections import defaultdict
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
    """The StoryIndex Protocol over the story tables, on one sync connection.

    Term statistics (event mode's IDF and story terms) are kept only when ``track_terms``:
    they cost a dozen upserts per entry, and only event mode reads them.
    """

    def __init__(self, conn: Connection, now: datetime, *, track_terms: bool) -> None:
        self.conn = conn
        self.now = now
        self.track_terms = track_terms

    def stories_by_link(self, link: str) -> Sequence[str]:
        query = (
            select(StoryMemberRow.story_id)
            .join(EntryRow, EntryRow.uid == StoryMemberRow.entry_uid)
            .where(EntryRow.canonical_link == link)
            .distinct()
            .order_by(StoryMemberRow.story_id)
        )
        return list(self.conn.execute(query).scalars())

    def stories_by_keys(self, keys: Sequence[int], since: datetime, limit: int) -> Sequence[str]:
        if not keys:
            return []
        shared = func.count().label("shared")
        query = (
            select(StoryKeyRow.story_id, shared)
            .where(StoryKeyRow.key.in_(sorted(set(keys))), StoryKeyRow.last_published >= since)
            .group_by(StoryKeyRow.story_id)
            .order_by(shared.desc(), StoryKeyRow.story_id)
            .limit(limit)
        )
        return [story_id for story_id, _ in self.conn.execute(query)]

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
        counts: dict[str, list[tuple[str, int]]] = defaultdict(list)
        query = select(StoryTermRow.story_id, StoryTermRow.term, StoryTermRow.count).where(
            StoryTermRow.story_id.in_(story_ids)
        )
        for story_id, term, count in self.conn.execute(query):
            counts[story_id].append((term, count))
        return {
            story_id: dict(sorted(found, key=lambda t: (-t[1], t[0]))[:max_terms])
            for story_id, found in counts.items()
        }

    def term_frequencies(self, terms: Sequence[str]) -> tuple[int, Mapping[str, int]]:
        if not self.track_terms:
            return 0, {}
        wanted = [t for t in terms if len(t) <= MAX_TERM_LENGTH]
        query = select(TermFrequencyRow.term, TermFrequencyRow.count).where(
            TermFrequencyRow.term.in_([_TOTAL, *wanted])
        )
        found = {term: count for term, count in self.conn.execute(query)}
        return found.pop(_TOTAL, 0), found

    def add_member(self, story_id: str, features: EntryFeatures) -> None:
        conn, insert = self.conn, _insert(self.conn)
        conn.execute(
            insert(StoryRow)
            .values(
                id=story_id,
                representative_uid=features.uid,
                member_count=0,
                source_count=0,
                created_at=self.now,
                updated_at=self.now,
            )
            .on_conflict_do_nothing(index_elements=["id"])
        )
        added = conn.execute(
            insert(StoryMemberRow)
            .values(
                entry_uid=features.uid,
                story_id=story_id,
                source_id=features.source_id,
                published=features.published,
                signature=features.signature,
                kind=None,
                scores=[],
                joined_at=self.now,
            )
            .on_conflict_do_nothing(index_elements=["entry_uid"])
            .returning(StoryMemberRow.entry_uid)
        ).first()
        if added is None:  # another writer clustered this entry already
            return
        refresh_stories(conn, [story_id], self.now)
        self._add_keys(story_id, features)
        if self.track_terms:
            self._add_terms(story_id, features.terms)

    def _add_keys(self, story_id: str, features: EntryFeatures) -> None:
        keys = sorted(set(features.band_keys) | set(features.term_keys))
        if not keys:
            return
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
            {"key": key, "story_id": story_id, "last_published": features.published} for key in keys
        ]
        self.conn.execute(statement, rows)

    def _add_terms(self, story_id: str, terms: Iterable[str]) -> None:
        kept = sorted(t for t in terms if len(t) <= MAX_TERM_LENGTH)
        insert = _insert(self.conn)
        if kept:
            counted = insert(StoryTermRow)
            counted = counted.on_conflict_do_update(
                index_elements=["story_id", "term"], set_={"count": StoryTermRow.count + 1}
            )
            self.conn.execute(
                counted, [{"story_id": story_id, "term": t, "count": 1} for t in kept]
            )
        frequency = insert(TermFrequencyRow)
        frequency = frequency.on_conflict_do_update(
            index_elements=["term"], set_={"count": TermFrequencyRow.count + 1}
        )
        self.conn.execute(frequency, [{"term": t, "count": 1} for t in [_TOTAL, *kept]])


def refresh_stories(conn: Connection, story_ids: Sequence[str], now: datetime) -> list[str]:
    """Recount the stories' members and sources and re-choose their representatives (the
    earliest member); delete those left without members. Returns the deleted ones.

    The first UPDATE locks each story row (PostgreSQL waits there for another writer of the
    same story to commit); the recount is a later statement, so it sees that writer's member.
    """
    gone = []
    for story_id in sorted(set(story_ids)):
        conn.execute(update(StoryRow).where(StoryRow.id == story_id).values(updated_at=now))
        members = select(StoryMemberRow).where(StoryMemberRow.story_id == story_id).subquery()
        count, sources, first = conn.execute(
            select(
                func.count(),
                func.count(members.c.source_id.distinct()),
                func.min(members.c.published),
            )
        ).one()
        if not count:
            _delete_story(conn, story_id)
            gone.append(story_id)
            continue
        earliest = conn.execute(
            select(StoryMemberRow.entry_uid)
            .where(StoryMemberRow.story_id == story_id, StoryMemberRow.published == first)
            .order_by(StoryMemberRow.entry_uid)
            .limit(1)
        ).scalar_one()
        conn.execute(
            update(StoryRow)
            .where(StoryRow.id == story_id)
            .values(member_count=count, source_count=sources, representative_uid=earliest)
        )
    return gone


def _delete_story(conn: Connection, story_id: str) -> None:
    for table in (StoryKeyRow, StoryTermRow):
        conn.execute(delete(table).where(table.story_id == story_id))
    conn.execute(delete(StoryRow).where(StoryRow.id == story_id))


def cluster_entries(
    conn: Connection, entries: Sequence[StoryEntry], settings: StorySettings, now: datetime
) -> Clustered:
    """Assign each new entry (oldest first) a story, recording the decision on its member."""
    index = SqlStoryIndex(conn, now, track_terms=settings.mode == StoryMode.EVENT)
    decisions: dict[str, StoryDecision] = {}
    for entry in sorted(entries, key=lambda e: (e.published, e.uid)):
        decision = assign_story(entry, index, settings)
        decisions[entry.uid] = decision
        if decision.joined or decision.scores:
            conn.execute(
                update(StoryMemberRow)
                .where(StoryMemberRow.entry_uid == entry.uid)
                .values(
                    kind=decision.kind, scores=[_score(s) for s in decision.scores[:SCORES_KEPT]]
                )
            )
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
