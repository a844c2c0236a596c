"""Stories in the database: the engine's index kept in step with ``story_members``, and
stories read back for curated feeds, explain and the status page.

    an ingest's new entries, inside its transaction (StoryClusterer.transaction held):
      seq = UPDATE story_clock SET seq = seq + 1      # the row lock: clustering writers
                                                      # of every process take turns
      no index yet?  build it: the members within its horizon (terms, vectors) and
                     their stories' sources           (load_members)
      else catch up: members written since index.seq by other processes
      index.forget(entries this process pruned since)
      per entry, oldest first: index.evict(); decision = index.assign(features)
        (an entry published more than a window before the newest member: a back-fill
        index of its time decides it, loaded from story_members in chunks of two windows,
        kept across transactions up to BACKFILL_MEMBERS; every index follows every
        decision, and the catch-up reaches them all)
      write: founded stories, members (terms, vector, kind, scores, seq), merges
             (members relabelled, the merged-away row deleted), changed stories recounted,
             their sources' content versions bumped

``story_members`` is the record; the index is memory only, rebuilt at a process's first
clustering. A transaction that fails after changing the index drops it (rebuilt next time).
"""

from __future__ import annotations

import math
import threading
from collections import Counter, OrderedDict, defaultdict
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, bindparam, case, delete, func, null, select, tuple_, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from store.model import StoredEntry, StoredStory, StoryMember, StorySummary
from store.stories.model import EntryFeatures, MatchKind, StoryDecision, StoryEntry, StoryScore
from store.stories.settings import StorySettings
from store.tables import Base, EntryRow, SourceRow, StoryClockRow, StoryMemberRow, StoryRow
from store.versions import NEXT_VERSION, lock_versions

if TYPE_CHECKING:  # store.stories.index (numpy) loads where an index is first built
    from store.stories.index import StoryIndex

SCORES_KEPT = 5  # candidate scores kept per member, for explain
STORY_TEXT_LIMIT = 4000  # characters of summary/content clustering looks at
_CHUNK = 500
# Members held by back-fill indexes at most (about 1.3 kB each, docs/dedup.md).
BACKFILL_MEMBERS = 50_000


class StoryClusterer:
    """A process's clustering: settings, the index (None until first needed) and the lock
    its write transactions hold, so one of them at a time uses the index."""

    def __init__(self, settings: StorySettings) -> None:
        self.settings = settings
        self.index: StoryIndex | None = None
        self._lock = threading.Lock()
        self._touched = False
        self._pruned: list[str] = []  # pruned in the current transaction
        self._forget: set[str] = set()  # pruned by committed transactions, not yet forgotten
        self._past: OrderedDict[int, StoryIndex] = OrderedDict()  # back-fill, by chunk

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Hold around a write transaction that may cluster or prune (commit included)."""
        with self._lock:
            self._touched, self._pruned = False, []
            try:
                yield
            except BaseException:
                if self._touched:
                    self.index = None
                    self._past.clear()
                raise
            self._forget.update(self._pruned)

    def pruned(self, uids: Iterable[str]) -> None:
        self._pruned.extend(uids)

    def cluster(
        self, conn: Connection, entries: Sequence[StoryEntry], now: datetime
    ) -> tuple[int, int]:
        """Assign each new entry (oldest first) a story, and write what was decided.
        Returns how many stories the entries founded and how many were merged into another."""
        seq = conn.execute(_TICK).scalar_one()
        self._touched = True
        settings = self.settings
        from store.stories.index import StoryIndex, embed_entries, featurize_entries

        if self.index is None:
            self.index = StoryIndex(settings)
            self._past.clear()
            self._forget.clear()
            load_members(conn, self.index)
        else:
            catch_up(conn, [self.index, *self._past.values()])
        index = self.index
        for held in (index, *self._past.values()):
            held.forget(self._forget)
        self._forget.clear()
        ordered = sorted(entries, key=lambda e: (e.published, e.uid))
        features = featurize_entries(ordered, settings, embed_entries(ordered, settings))
        # An entry published more than a window before the newest member has part of its
        # window behind the live index's horizon (a back-filled entry, a feed's first
        # fetch): a back-fill index of its time decides it. They come first in time order.
        late = index.newest - settings.window.total_seconds()
        self._load_past(conn, [f.published.timestamp() for f in features], late)
        decisions = []
        for found in features:
            published = found.published.timestamp()
            if published < late:
                decider = self._past[self._chunk(published)]
                decision = decider.assign(found)
                index.count(decision)
            else:
                decider = index
                index.evict()
                decision = index.assign(found)
            sources = decider.sources_of(decision.story_id)
            for held in (index, *self._past.values()):
                if held is not decider:
                    held.follow(found, decision, sources)
            decisions.append(decision)
        write_decisions(conn, features, decisions, seq, now)
        index.seq = seq
        self._trim_past()
        founded = sum(not d.joined for d in decisions)
        return founded, sum(len(d.merged) for d in decisions)

    def _chunk(self, published: float) -> int:
        return math.floor(published / (2 * self.settings.window.total_seconds()))

    def _load_past(self, conn: Connection, times: Sequence[float], late: float) -> None:
        """Make sure a back-fill index holds the time of each entry before ``late``: chunks
        of two windows, each holding a window more on either side, so every entry of a
        chunk finds its whole window. Kept across transactions while they hold at most
        BACKFILL_MEMBERS members (least recently used let go), and kept in step with every
        decision."""
        from store.stories.index import StoryIndex

        size = 2 * self.settings.window.total_seconds()
        margin = self.settings.window.total_seconds()
        for chunk in sorted({self._chunk(t) for t in times if t < late}):
            if chunk in self._past:
                self._past.move_to_end(chunk)
                continue
            past = StoryIndex(self.settings)
            past.span = (chunk * size - margin, (chunk + 1) * size + margin)
            load_members(conn, past, past.span)
            self._past[chunk] = past

    def _trim_past(self) -> None:
        while self._past and sum(len(p) for p in self._past.values()) > BACKFILL_MEMBERS:
            self._past.popitem(last=False)


def story_entry(
    uid: str,
    source_id: str,
    published: datetime,
    title: str | None,
    summary: str | None,
    content: str | None,
    link: str | None,
) -> StoryEntry:
    """What clustering sees of a stored entry: title and summary (else content), its time
    (its sort time: its date, never later than when first seen) and canonical link."""
    text = summary or content or ""
    return StoryEntry(uid, source_id, published, title or "", text[:STORY_TEXT_LIMIT], link)


# -- the index from the record -------------------------------------------------------------


def load_members(
    conn: Connection, index: StoryIndex, span: tuple[float, float] | None = None
) -> None:
    """Fill an empty index with the members within its horizon of the newest (or within
    ``span``, POSIX seconds), with every source of their stories; ``index.seq`` becomes the
    clock's."""
    index.seq = conn.execute(select(StoryClockRow.seq)).scalar() or 0
    if span is None:
        newest = conn.execute(select(func.max(_MEMBER.published))).scalar()
        if newest is None:
            return
        within = _MEMBER.published >= newest - index.horizon
    else:
        start, end = (datetime.fromtimestamp(min(max(t, _FIRST), _LAST), UTC) for t in span)
        within = (_MEMBER.published >= start) & (_MEMBER.published < end)
    held = select(_MEMBER.story_id).where(within).scalar_subquery()
    sources: dict[str, set[str]] = defaultdict(set)
    query = select(_MEMBER.story_id, _MEMBER.source_id).where(_MEMBER.story_id.in_(held))
    for story_id, source_id in conn.execute(query.distinct()):
        sources[story_id].add(source_id)
    rows = conn.execute(_members_query(index).where(within))
    _add_rows(conn, [index], rows, sources)


def catch_up(conn: Connection, indexes: Sequence[StoryIndex]) -> None:
    """Add the members other processes wrote since the live index's ``seq`` (and move the
    ones they merged into another story) to the indexes (the live one first, then the
    back-fill ones); the live horizon then moves on as it would have."""
    rows = conn.execute(_members_query(indexes[0]).where(_MEMBER.seq > indexes[0].seq)).all()
    _add_rows(conn, indexes, rows)
    indexes[0].evict()


def _members_query(index: StoryIndex) -> Any:
    wanted = bool(index.settings.embedder)
    missing = _MEMBER.terms.is_(None)
    return select(
        _MEMBER.entry_uid,
        _MEMBER.story_id,
        _MEMBER.source_id,
        _MEMBER.published,
        _MEMBER.terms,
        (_MEMBER.embedding if wanted else null()).label("embedding"),
        EntryRow.canonical_link,
        case((missing, EntryRow.title)).label("title"),
        case((missing, EntryRow.summary)).label("summary"),
        case((missing, EntryRow.content)).label("content"),
    ).join(EntryRow, EntryRow.uid == _MEMBER.entry_uid)


def _add_rows(
    conn: Connection,
    indexes: Sequence[StoryIndex],
    rows: Iterable[Any],
    sources: dict[str, set[str]] | None = None,
) -> None:
    rows = list(rows)
    if not rows:
        return
    from store.stories.index import featurize_entries

    settings = indexes[0].settings
    if sources is None:
        sources = _story_sources(conn, sorted({row.story_id for row in rows}))
    old = [
        story_entry(r.entry_uid, r.source_id, r.published, r.title, r.summary, r.content, None)
        for r in rows
        if r.terms is None
    ]  # clustered before members kept their terms: featurized from the entry
    terms_of = {f.uid: f.terms for f in featurize_entries(old, settings, [b""] * len(old))}
    for row in rows:
        features = EntryFeatures(
            row.entry_uid,
            row.source_id,
            row.published,
            row.canonical_link,
            row.terms if row.terms is not None else terms_of[row.entry_uid],
            row.embedding or b"",
        )
        for index in indexes:
            index.hold(features, row.story_id, sources[row.story_id])


def _story_sources(conn: Connection, story_ids: Sequence[str]) -> dict[str, set[str]]:
    found: dict[str, set[str]] = defaultdict(set)
    for start in range(0, len(story_ids), _CHUNK):
        chunk = story_ids[start : start + _CHUNK]
        query = select(_MEMBER.story_id, _MEMBER.source_id).where(_MEMBER.story_id.in_(chunk))
        for story_id, source_id in conn.execute(query.distinct()):
            found[story_id].add(source_id)
    return found


# -- decisions to the record ---------------------------------------------------------------


def write_decisions(
    conn: Connection,
    features: Sequence[EntryFeatures],
    decisions: Sequence[StoryDecision],
    seq: int,
    now: datetime,
) -> None:
    """Members, merges, founded stories; then the changed stories recounted."""
    insert = _insert(conn)
    final: dict[str, str] = {}  # story -> the story it was merged into in this document
    for decision in decisions:
        for gone in decision.merged:
            final[gone] = decision.story_id
    members = [
        _member_row(found, _final(final, d.story_id), d, seq, now)
        for found, d in zip(features, decisions, strict=True)
    ]
    conn.execute(
        insert(StoryMemberRow).on_conflict_do_nothing(index_elements=["entry_uid"]), members
    )
    sizes = Counter(row["story_id"] for row in members)
    # Stories that gained a member from elsewhere: joined, merged into, or founded here
    # and joined here. A story founded by one entry is right as inserted.
    changed = {_final(final, d.story_id) for d in decisions if d.joined}
    changed |= {story_id for story_id, size in sizes.items() if size > 1}
    for gone, keep in final.items():
        keep = _final(final, keep)
        conn.execute(
            update(StoryMemberRow)
            .where(StoryMemberRow.story_id == gone)
            .values(story_id=keep, seq=seq)
        )
        conn.execute(delete(StoryRow).where(StoryRow.id == gone))
        changed.add(keep)
    stories = [_story_row(story_id, now) for story_id in sorted(sizes)]  # founded ones
    conn.execute(insert(StoryRow).on_conflict_do_nothing(index_elements=["id"]), stories)
    if changed:
        bump_sources(conn, refresh_stories(conn, sorted(changed), now))


def _final(final: dict[str, str], story_id: str) -> str:
    while story_id in final:
        story_id = final[story_id]
    return story_id


def _story_row(story_id: str, now: datetime) -> dict[str, Any]:
    return {
        "id": story_id,
        "representative_uid": story_id,
        "member_count": 1,
        "source_count": 1,
        "created_at": now,
        "updated_at": now,
    }


def _member_row(
    found: EntryFeatures, story_id: str, decision: StoryDecision, seq: int, now: datetime
) -> dict[str, Any]:
    return {
        "entry_uid": found.uid,
        "story_id": story_id,
        "source_id": found.source_id,
        "published": found.published,
        "terms": found.terms,
        "embedding": found.embedding or None,
        "kind": decision.kind,
        "scores": [_score(s) for s in decision.scores[:SCORES_KEPT]],
        "joined_at": now,
        "seq": seq,
    }


def _score(score: StoryScore) -> dict[str, Any]:
    return {
        "story": score.story_id,
        "kind": str(score.kind),
        "score": round(score.score, 4),
        "threshold": score.threshold,
        "member": score.member_uid,
        "excluded": score.excluded,
    }


def refresh_stories(conn: Connection, story_ids: Sequence[str], now: datetime) -> set[str]:
    """Recount the stories' members and sources, re-choose their representatives (the
    earliest member) and delete those left without members. Returns the sources with a
    member in the stories that remain."""
    sources: set[str] = set()
    for start in range(0, len(story_ids), _CHUNK):
        chunk = list(story_ids[start : start + _CHUNK])
        members: dict[str, list[tuple[str, str]]] = defaultdict(list)
        for story_id, uid, source_id in conn.execute(_MEMBERS_IN_ORDER, {"values": chunk}):
            members[story_id].append((uid, source_id))
        rows = []
        for story_id, found in sorted(members.items()):
            found_sources = {source_id for _, source_id in found}
            sources |= found_sources
            rows.append(
                {
                    "_id": story_id,
                    "member_count": len(found),
                    "source_count": len(found_sources),
                    "representative_uid": found[0][0],
                    "updated_at": now,
                }
            )
        if rows:
            conn.execute(_REFRESH, rows)
        gone = [story_id for story_id in chunk if story_id not in members]
        if gone:
            conn.execute(delete(StoryRow).where(StoryRow.id.in_(gone)))
    return sources


def bump_sources(conn: Connection, sources: Iterable[str]) -> None:
    """Stories changed: bump the content version of every source with a member in them, so
    rendered feeds that show one of their members (and credit the others) are rendered
    again. One UPDATE over the sorted ids, so two writers lock source rows in one order."""
    wanted = sorted(set(sources))
    if wanted:
        lock_versions(conn)
        conn.execute(
            update(SourceRow).where(SourceRow.id.in_(wanted)).values(content_version=NEXT_VERSION)
        )


def forget_entries(conn: Connection, uids: Sequence[str], now: datetime) -> list[str]:
    """Remove pruned entries from their stories, keeping each story consistent (counts,
    representative; a story left empty is deleted). Returns the story ids that changed."""
    stories: set[str] = set()
    for start in range(0, len(uids), _CHUNK):
        chunk = list(uids[start : start + _CHUNK])
        found = conn.execute(select(_MEMBER.story_id).where(_MEMBER.entry_uid.in_(chunk)))
        stories.update(found.scalars())
        conn.execute(delete(StoryMemberRow).where(StoryMemberRow.entry_uid.in_(chunk)))
    bump_sources(conn, refresh_stories(conn, sorted(stories), now))
    return sorted(stories)


def cluster_backlog(
    conn: Connection,
    clusterer: StoryClusterer,
    now: datetime,
    limit: int,
    after: tuple[datetime, int] | None = None,
) -> tuple[int, tuple[datetime, int] | None]:
    """Give a story to up to ``limit`` stored entries that have none (stored while clustering
    was off), oldest first, from after ``after`` (sort time, row id) on. Returns how many,
    and where to go on from. On PostgreSQL the rows are locked with SKIP LOCKED."""
    is_member = select(_MEMBER.entry_uid).where(_MEMBER.entry_uid == EntryRow.uid)
    query = (
        select(
            EntryRow.id,
            EntryRow.sort_at,
            EntryRow.uid,
            EntryRow.source_id,
            EntryRow.published,
            EntryRow.title,
            EntryRow.summary,
            EntryRow.content,
            EntryRow.canonical_link,
        )
        .where(~is_member.exists())
        .order_by(EntryRow.sort_at, EntryRow.id)
        .limit(limit)
        .with_for_update(of=EntryRow, skip_locked=True)
    )
    if after is not None:
        query = query.where(tuple_(EntryRow.sort_at, EntryRow.id) > after)
    rows = conn.execute(query).all()
    if not rows:
        return 0, after
    entries = [
        story_entry(
            r.uid,
            r.source_id,
            r.sort_at,
            r.title,
            r.summary,
            r.content,
            r.canonical_link,
        )
        for r in rows
    ]
    clusterer.cluster(conn, entries, now)
    return len(rows), (rows[-1].sort_at, rows[-1].id)


# -- reading stories back ------------------------------------------------------------------


async def story_groups(
    conn: AsyncConnection, uids: Sequence[str], to_entry: Any
) -> dict[str, tuple[str, tuple[StoredEntry, ...]]]:
    """For each of ``uids`` that belongs to a story: (story id, every stored member). Three
    indexed look-ups: memberships by entry, members by story, entries by uid."""
    story_of: dict[str, str] = {}
    for chunk in _chunks(uids):
        query = select(_MEMBER.entry_uid, _MEMBER.story_id).where(_MEMBER.entry_uid.in_(chunk))
        story_of.update({uid: story for uid, story in await conn.execute(query)})
    member_uids: dict[str, list[str]] = defaultdict(list)
    for chunk in _chunks(sorted(set(story_of.values()))):
        query = select(_MEMBER.story_id, _MEMBER.entry_uid).where(_MEMBER.story_id.in_(chunk))
        for story_id, uid in await conn.execute(query):
            member_uids[story_id].append(uid)
    entries: dict[str, StoredEntry] = {}
    for chunk in _chunks(sorted({u for found in member_uids.values() for u in found})):
        for row in (await conn.execute(select(EntryRow).where(EntryRow.uid.in_(chunk)))).all():
            entries[row.uid] = to_entry(row)
    members = {
        story: tuple(entries[u] for u in sorted(found) if u in entries)
        for story, found in member_uids.items()
    }
    return {uid: (story, members[story]) for uid, story in story_of.items() if story in members}


async def link_groups(
    conn: AsyncConnection, links: Sequence[str], to_entry: Any
) -> dict[str, tuple[StoredEntry, ...]]:
    """Every stored entry with each of these canonical links."""
    found: dict[str, list[StoredEntry]] = defaultdict(list)
    for chunk in _chunks(sorted(set(links))):
        query = select(EntryRow).where(EntryRow.canonical_link.in_(chunk))
        for row in (await conn.execute(query)).all():
            found[row.canonical_link].append(to_entry(row))
    return {link: tuple(entries) for link, entries in found.items()}


async def load_story(conn: AsyncConnection, entry_uid: str) -> StoredStory | None:
    """The story of the entry, with every member and the decision that put it there."""
    found = select(_MEMBER.story_id).where(_MEMBER.entry_uid == entry_uid)
    story_id = (await conn.execute(found)).scalar()
    if story_id is None:
        return None
    story = (await conn.execute(select(StoryRow).where(StoryRow.id == story_id))).first()
    query = (
        select(StoryMemberRow, EntryRow.title, EntryRow.link)
        .outerjoin(EntryRow, EntryRow.uid == StoryMemberRow.entry_uid)
        .where(StoryMemberRow.story_id == story_id)
        .order_by(StoryMemberRow.published, StoryMemberRow.entry_uid)
    )
    members = tuple(_member(row) for row in (await conn.execute(query)).all())
    return StoredStory(
        id=story_id,
        representative_uid=story.representative_uid if story else members[0].entry_uid,
        member_count=len(members),
        source_count=len({m.source_id for m in members}),
        created_at=story.created_at if story else members[0].joined_at,
        updated_at=story.updated_at if story else members[-1].joined_at,
        members=members,
    )


async def find_story_entry(conn: AsyncConnection, story_id: str) -> str | None:
    """The representative of the story with this id, if there is one."""
    query = select(StoryRow.representative_uid).where(StoryRow.id == story_id)
    return (await conn.execute(query)).scalar()


async def recent_stories(
    conn: AsyncConnection, limit: int, min_sources: int = 2
) -> list[StorySummary]:
    """The most recently changed stories carried by at least ``min_sources`` sources."""
    query = (
        select(StoryRow, EntryRow.title)
        .outerjoin(EntryRow, EntryRow.uid == StoryRow.representative_uid)
        .where(StoryRow.source_count >= min_sources)
        .order_by(StoryRow.updated_at.desc(), StoryRow.id)
        .limit(limit)
    )
    return [
        StorySummary(
            row.id,
            row.title,
            row.representative_uid,
            row.member_count,
            row.source_count,
            row.updated_at,
        )
        for row in (await conn.execute(query)).all()
    ]


def _member(row: Any) -> StoryMember:
    scores = tuple(
        StoryScore(
            story_id=s["story"],
            kind=MatchKind(s["kind"]),
            score=s["score"],
            threshold=s["threshold"],
            member_uid=s.get("member"),
            excluded=s.get("excluded"),
        )
        for s in row.scores or ()
    )
    return StoryMember(
        entry_uid=row.entry_uid,
        source_id=row.source_id,
        published=row.published,
        kind=row.kind,
        scores=scores,
        joined_at=row.joined_at,
        title=row.title,
        link=row.link,
    )


def _chunks(values: Sequence[Any]) -> Iterator[Sequence[Any]]:
    return (values[start : start + _CHUNK] for start in range(0, len(values), _CHUNK))


def _insert(conn: Connection) -> Any:
    return postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert


_MEMBER = StoryMemberRow
_FIRST = datetime(1, 1, 2, tzinfo=UTC).timestamp()
_LAST = datetime(9999, 12, 30, tzinfo=UTC).timestamp()
_TICK = (
    update(StoryClockRow)
    .where(StoryClockRow.id == 1)
    .values(seq=StoryClockRow.seq + 1)
    .returning(StoryClockRow.seq)
)
_MEMBERS_IN_ORDER = (
    select(_MEMBER.story_id, _MEMBER.entry_uid, _MEMBER.source_id)
    .where(_MEMBER.story_id.in_(bindparam("values", expanding=True)))
    .order_by(_MEMBER.story_id, _MEMBER.published, _MEMBER.entry_uid)
)
_stories = Base.metadata.tables["stories"]
_REFRESH = (
    update(_stories)
    .where(_stories.c.id == bindparam("_id"))
    .values(
        member_count=bindparam("member_count"),
        source_count=bindparam("source_count"),
        representative_uid=bindparam("representative_uid"),
        updated_at=bindparam("updated_at"),
    )
)
