"""Story clustering on the database: the table-backed StoryIndex and the ingest step.

    new entries of one document (or a backlog batch), oldest first
      -> features of all of them at once (featurize_entries; one embedder call, in event
         mode with an embedder)
      -> SqlStoryIndex.prefetch: a few IN queries read what their look-ups need: the
         entries with their canonical links and those entries' stories; story_keys rows
         (day, key, story) for their band keys (in event mode also their likely rarest
         terms' keys, and the terms' frequencies) on the days around them; the members
         (and terms) of every story found
      -> store.stories.assign_story(entry, index, settings) per entry, from memory
         (pure decision; event mode may merge stories the entry bridges)
      -> flush: founded stories, merges (members, keys, terms moved; the merged-away row
         left as a pointer), members (unique per entry: ON CONFLICT DO NOTHING), new key
         rows (story_keys keeps a story id as two 64-bit halves; PostgreSQL takes them by
         COPY), event-mode term counts; then the changed stories are recounted
      -> the member row keeps the decision's kind and scores, for `feedmill explain`

Everything runs on the caller's sync Connection inside the ingest transaction, in a writer
thread (store.database.create_thread_engine), the same on SQLite and PostgreSQL. Every
query is by primary key or an index; none scans the stored entries. Two workers on
PostgreSQL clustering copies of one story at once: the story row is locked (UPDATE) before
its counts and representative are recomputed, in a statement that then sees the other's
committed member, so no member is lost; two simultaneous *first* copies each found a story
(neither sees the other yet); a member added to a story merged away meanwhile follows the
pointer when its writer recounts.
"""

from __future__ import annotations

import math
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    BigInteger,
    BindParameter,
    Connection,
    String,
    and_,
    bindparam,
    delete,
    func,
    literal,
    null,
    select,
    tuple_,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError

from store.stories import (
    EntryFeatures,
    StoryDecision,
    StoryEntry,
    StoryMode,
    StoryScore,
    StorySettings,
    StoryState,
    assign_story,
    embed_entries,
    featurize_entries,
)
from store.stories.index import EVENT_LOOKUP_TERMS
from store.stories.sketch import term_keys
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
_DAY_SECONDS = 86_400
_DAYS_A_QUERY = 16  # a query seeks (day, key) for each of its days and keys
_SPARE_TERMS = 4  # term keys read beyond an entry's EVENT_LOOKUP_TERMS rarest, in prefetch


def _insert(conn: Connection) -> Any:
    return postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert


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

    def __init__(
        self, conn: Connection, now: datetime, *, window: timedelta, track_terms: bool
    ) -> None:
        self.conn = conn
        self.now = now
        self.window = window
        self.track_terms = track_terms
        # What was read from the tables, by lookup key.
        self._by_link: dict[str, set[str]] = {}
        self._keys_read: list[tuple[frozenset[int], int, int]] = []  # (keys, first, last day)
        # key -> {(day, story)}: the rows read (keys with none are left out)
        self._key_rows: dict[int, set[tuple[int, str]]] = {}
        self._stored: dict[str, list[EntryFeatures]] = {}  # story -> its stored members
        self._stored_terms: dict[str, Counter[str]] = {}
        self._df: dict[str, int] = {}
        # What this document's entries add, not yet written.
        self._new_links: dict[str, set[str]] = defaultdict(set)
        self._new_keys: dict[int, set[tuple[int, str]]] = {}  # key -> {(day, story)}
        self._spans: dict[str, tuple[int, int]] = {}  # story -> first, last day of new keys
        self._new_members: dict[str, list[EntryFeatures]] = defaultdict(list)
        self._rows: dict[str, dict[str, Any]] = {}  # entry uid -> story_members row
        self._founded: list[str] = []
        self._terms: dict[str, Counter[str]] = defaultdict(Counter)  # story -> new term counts
        # What load_stories made of a story, until the story changes (a member, a merge).
        self._states: dict[str, tuple[tuple[int, int], StoryState]] = {}
        self._frequencies: Counter[str] = Counter()
        self._merges: list[tuple[str, str]] = []  # (keep, gone) of stored stories, in order

    # -- batched reads ---------------------------------------------------------------------

    def prefetch(self, features: Sequence[EntryFeatures], settings: StorySettings) -> None:
        """Read what the lookups of these entries will ask for, in a few queries."""
        self._read_links(sorted({f.link for f in features if f.link}))
        if settings.mode == StoryMode.LINK or not features:
            return
        keys: set[int] = set()
        for found in features:
            keys.update(found.band_keys)
        if self.track_terms:
            self._read_frequencies(sorted({t for f in features for t in f.terms}))
            # Event mode looks an entry's rarest terms up (store.stories.index): read the keys
            # of those by the stored counts, and a few more, since what this document adds
            # can reorder them; a key not read here is read when a look-up asks for it.
            df = self._df
            likely: set[str] = set()
            for found in features:
                rarest = sorted(found.terms, key=lambda t: (df.get(t, 0), t))
                likely.update(rarest[: EVENT_LOOKUP_TERMS + _SPARE_TERMS])
            keys.update(term_keys(sorted(likely)))
        ranges = [self._day_range(f.published - self.window) for f in features]
        self._read_keys(keys, min(low for low, _ in ranges), max(high for _, high in ranges))
        stories = {story for rows in self._key_rows.values() for _, story in rows}
        stories.update(s for found in self._by_link.values() for s in found)
        self._read_stories(sorted(stories))
        if self.track_terms:  # the candidates' terms, whose rarity their scores weigh
            stored_terms = self._stored_terms
            self._read_frequencies(sorted({t for s in stories for t in stored_terms.get(s, ())}))

    def _read_links(self, links: Sequence[str]) -> None:
        wanted = [link for link in links if link not in self._by_link]
        for link in wanted:
            self._by_link[link] = set()
        # Two indexed look-ups rather than a join, whose plan PostgreSQL may make a hash
        # join over all of story_members: the entries with the links, then their stories.
        link_of: dict[str, str] = {}
        for chunk in _chunks(wanted):
            for uid, found in self.conn.execute(_ENTRIES_AT_LINKS, {"values": chunk}):
                link_of[uid] = found or ""
        for chunk in _chunks(sorted(link_of)):
            for uid, story_id in self.conn.execute(_STORIES_OF_ENTRIES, {"values": chunk}):
                self._by_link[link_of[uid]].add(story_id)

    def _day_range(self, since: datetime) -> tuple[int, int]:
        """The first and last day whose key rows a lookup from ``since`` (the entry's time
        less the window) reads: up to the entry's time plus the window."""
        return _day(since), _day(since + 2 * self.window)

    def _read_keys(self, keys: Iterable[int], first: int, last: int) -> None:
        """The stories with each of these keys on each day from ``first`` to ``last``, unless
        read already: the primary key's (day, key) prefix, one seek a pair."""
        wanted = frozenset(keys)
        for read, low, high in self._keys_read:
            if low <= first and last <= high and wanted <= read:
                return  # the common case: prefetch read them all
        self._keys_read.append((wanted, first, last))
        ordered = sorted(wanted)
        days = list(range(first, last + 1))
        postgres = self.conn.dialect.name == "postgresql"
        for chunk in _chunks(ordered):
            for few in _chunks(days, _DAYS_A_QUERY):
                if postgres:  # two arrays: the statement is the same for every document
                    rows = self.conn.exec_driver_sql(_SELECT_KEYS_ANY, (list(few), list(chunk)))
                else:  # integers only, written into the statement: no parameter limit
                    in_days = ", ".join(map(str, few))
                    in_keys = ", ".join(map(str, chunk))
                    rows = self.conn.exec_driver_sql(_SELECT_KEYS_IN.format(in_days, in_keys))
                for day, key, high, low in rows:
                    found = self._key_rows.get(key)
                    if found is None:
                        found = self._key_rows[key] = set()
                    found.add((day, _story_id(high, low)))

    def _read_stories(self, story_ids: Sequence[str]) -> None:
        wanted = [s for s in story_ids if s not in self._stored]
        for story_id in wanted:
            self._stored[story_id] = []
        query = _MEMBERS_OF_STORIES[self.track_terms]
        for chunk in _chunks(wanted):
            rows = self.conn.execute(query, {"values": chunk})
            for story_id, uid, source_id, published, signature, vector in rows:
                self._stored[story_id].append(
                    EntryFeatures(
                        uid,
                        source_id,
                        published,
                        None,
                        signature,
                        (),
                        frozenset(),
                        (),
                        vector or b"",
                    )
                )
        if not self.track_terms:
            return
        for story_id in wanted:
            self._stored_terms[story_id] = Counter()
        for chunk in _chunks(wanted):
            for story_id, term, count in self.conn.execute(_TERMS_OF_STORIES, {"values": chunk}):
                self._stored_terms[story_id][term] += count

    def _read_frequencies(self, terms: Sequence[str]) -> None:
        wanted = [t for t in ([_TOTAL, *terms]) if t not in self._df]
        wanted = [t for t in wanted if len(t) <= MAX_TERM_LENGTH]
        for term in wanted:
            self._df[term] = 0
        for chunk in _chunks(wanted):
            for term, count in self.conn.execute(_FREQUENCIES_OF_TERMS, {"values": chunk}):
                self._df[term] = count

    # -- the StoryIndex Protocol -------------------------------------------------------------

    def stories_by_link(self, link: str) -> Sequence[str]:
        self._read_links([link])
        return sorted(self._by_link[link] | self._new_links.get(link, set()))

    def stories_by_keys(self, keys: Sequence[int], since: datetime, limit: int) -> Sequence[str]:
        if not keys:
            return []
        wanted = set(keys)
        first, last = self._day_range(since)
        self._read_keys(wanted, first, last)
        counts: Counter[str] = Counter()
        stored, added = self._key_rows, self._new_keys
        for key in wanted:
            rows = stored.get(key)
            more = added.get(key)
            if more:
                rows = rows | more if rows else more
            if rows:
                counts.update({story for day, story in rows if first <= day <= last})
        ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
        return [story_id for story_id, _ in ranked[:limit]]

    def load_stories(
        self, story_ids: Sequence[str], max_members: int, max_terms: int
    ) -> Sequence[StoryState]:
        if not story_ids:
            return []
        self._read_stories(story_ids)
        stories = []
        shape = (max_members, max_terms)
        for story_id in story_ids:
            cached = self._states.get(story_id)
            if cached is not None and cached[0] == shape:
                stories.append(cached[1])
                continue
            found = self._stored[story_id] + self._new_members.get(story_id, [])
            if not found:  # pruned meanwhile
                continue
            recent = sorted(found, key=lambda m: (m.published, m.uid))[-max_members:]
            sources = frozenset(m.source_id for m in found)
            terms = self._story_terms(story_id, max_terms)
            state = StoryState(story_id, tuple(recent), terms, sources)
            self._states[story_id] = (shape, state)
            stories.append(state)
        return stories

    def _story_terms(self, story_id: str, max_terms: int) -> dict[str, int]:
        if not self.track_terms:
            return {}
        counts = Counter(self._stored_terms.get(story_id, Counter()))
        added = self._terms.get(story_id)
        if added:
            counts.update(added)
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
        self._states.pop(story_id, None)
        if story_id == features.uid:  # founded now: nothing of it is stored to be read
            self._founded.append(story_id)
            self._stored.setdefault(story_id, [])
            self._stored_terms.setdefault(story_id, Counter())
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
            "embedding": features.embedding or None,
        }
        if features.link:
            self._new_links[features.link].add(story_id)
        day = _day(features.published)
        row = (day, story_id)
        new_keys = self._new_keys
        for key in (*features.band_keys, *features.term_keys):
            found = new_keys.get(key)
            if found is None:
                new_keys[key] = {row}
            else:
                found.add(row)
        if features.band_keys or features.term_keys:
            low, high = self._spans.get(story_id, (day, day))
            self._spans[story_id] = (min(low, day), max(high, day))
        if self.track_terms:
            kept = [t for t in features.terms if len(t) <= MAX_TERM_LENGTH]
            self._terms[story_id].update(kept)
            self._frequencies.update([_TOTAL, *kept])

    def merge_stories(self, keep: str, gone: Sequence[str]) -> None:
        """Fold the ``gone`` stories into ``keep`` (event mode: an entry bridged them). What
        this index holds in memory is relabelled now; the stored rows move at :meth:`flush`
        (members, keys and terms to ``keep``, the gone rows left as pointers to it)."""
        self._states.pop(keep, None)
        for story_id in gone:
            self._states.pop(story_id, None)
            self._stored.setdefault(keep, []).extend(self._stored.pop(story_id, []))
            self._new_members[keep].extend(self._new_members.pop(story_id, []))
            for row in self._rows.values():
                if row["story_id"] == story_id:
                    row["story_id"] = keep
            if self.track_terms:
                terms = self._stored_terms.setdefault(keep, Counter())
                terms.update(self._stored_terms.pop(story_id, Counter()))
                self._terms[keep].update(self._terms.pop(story_id, Counter()))
            for by_key in (self._key_rows, self._new_keys):
                for key, rows in by_key.items():
                    if any(story == story_id for _, story in rows):
                        by_key[key] = {(d, keep if s == story_id else s) for d, s in rows}
            if story_id in self._spans:
                low, high = self._spans.pop(story_id)
                kept_low, kept_high = self._spans.get(keep, (low, high))
                self._spans[keep] = (min(low, kept_low), max(high, kept_high))
            for by_link in (self._by_link, self._new_links):
                for story_ids in by_link.values():
                    if story_id in story_ids:
                        story_ids.discard(story_id)
                        story_ids.add(keep)
            if story_id in self._founded:  # founded in this document: nothing stored yet
                self._founded.remove(story_id)
            else:
                self._merges.append((keep, story_id))

    def record(self, uid: str, decision: StoryDecision) -> None:
        """Keep the decision (kind, best scores) on the entry's member row, for explain."""
        row = self._rows.get(uid)
        if row is not None:
            row["kind"] = decision.kind
            row["scores"] = [_score(s) for s in decision.scores[:SCORES_KEPT]]

    def flush(self) -> set[str]:
        """Write what the document's entries did: stories, members, keys, terms; then recount
        the stories that gained members. A few multi-row statements. Returns the sources
        with members in the stories that gained some."""
        conn, insert = self.conn, _insert(self.conn)
        if not self._rows:
            return set()
        founded = set(self._founded)
        spans = self._spans  # story -> the days of its new keys
        stories = [
            {
                "id": story_id,
                "representative_uid": story_id,
                "member_count": 1,
                "source_count": 1,
                "created_at": self.now,
                "updated_at": self.now,
                "keyed_from": spans.get(story_id, (None, None))[0],
                "keyed_until": spans.get(story_id, (None, None))[1],
            }
            for story_id in sorted(founded)
        ]
        if stories:
            conn.execute(insert(StoryRow).on_conflict_do_nothing(index_elements=["id"]), stories)
        widened = [
            {"_id": story_id, "low": low, "high": high}
            for story_id, (low, high) in sorted(spans.items())
            if story_id not in founded
        ]
        if widened:
            conn.execute(_widen_span(conn), widened)
        for keep, gone in self._merges:
            move_story(conn, gone, keep, self.now)
        members = insert(StoryMemberRow).on_conflict_do_nothing(index_elements=["entry_uid"])
        conn.execute(members, [self._rows[uid] for uid in sorted(self._rows)])
        self._flush_keys()
        if self.track_terms:
            self._flush_terms()
        joined = {row["story_id"] for row in self._rows.values()} - founded
        joined |= {s for s in founded if len(self._new_members[s]) > 1}
        joined |= {keep for keep, _ in self._merges}
        return refresh_stories(conn, sorted(joined), self.now)

    def _flush_keys(self) -> None:
        """INSERT the new (day, key, story) rows, sorted, skipping those known to exist. The
        one statement here that writes many rows an entry (20), so it goes to the driver as
        plain tuples: nothing in them needs SQLAlchemy's type processing."""
        stored = self._key_rows
        halves: dict[str, tuple[int, int]] = {}
        rows = []
        for key, added in self._new_keys.items():
            known = stored.get(key)
            for day, story_id in added - known if known else added:
                if story_id not in halves:
                    halves[story_id] = _story_halves(story_id)
                rows.append((day, key, *halves[story_id]))
        rows.sort()
        if self.conn.dialect.name == "postgresql":
            # A merge may have moved rows the new ones repeat: only INSERT skips those.
            if rows and not self._merges and _copy_keys(self.conn, rows):
                return
            for chunk in _chunks(rows, 5000):  # one statement over four arrays
                columns = tuple(list(column) for column in zip(*chunk, strict=True))
                self.conn.exec_driver_sql(_INSERT_KEYS_UNNEST, columns)
            return
        for chunk in _chunks(rows, 1000):
            self.conn.exec_driver_sql(_INSERT_KEYS, list(chunk))

    def _flush_terms(self) -> None:
        """Add the document's term counts to story_terms and term_frequencies (event mode):
        about a hundred rows an entry, so plain tuples to the driver, sorted (two writers
        lock rows in the same order), one statement over arrays on PostgreSQL."""
        counted = [
            (story_id, term, count)
            for story_id, counts in sorted(self._terms.items())
            for term, count in sorted(counts.items())
        ]
        frequencies = sorted(self._frequencies.items())
        if self.conn.dialect.name == "postgresql":
            for chunk in _chunks(counted, 5000):
                columns = tuple(list(column) for column in zip(*chunk, strict=True))
                self.conn.exec_driver_sql(_ADD_STORY_TERMS_UNNEST, columns)
            for chunk in _chunks(frequencies, 5000):
                columns = tuple(list(column) for column in zip(*chunk, strict=True))
                self.conn.exec_driver_sql(_ADD_FREQUENCIES_UNNEST, columns)
            return
        for chunk in _chunks(counted, 1000):
            self.conn.exec_driver_sql(_ADD_STORY_TERMS, list(chunk))
        for chunk in _chunks(frequencies, 1000):
            self.conn.exec_driver_sql(_ADD_FREQUENCIES, list(chunk))


def _copy_keys(conn: Connection, rows: Sequence[tuple[int, int, int, int]]) -> bool:
    """COPY new story_keys rows in (PostgreSQL, binary), in a savepoint: about 0.6 of the
    time of INSERT ... ON CONFLICT DO NOTHING. False if one of them exists already (another
    writer added a key of the same story on the same day since this document's look-up):
    then nothing was written, for the caller to INSERT them skipping the existing ones.
    Any other error of the driver's (a deadlock) is raised as SQLAlchemy raises its own, so
    the ingest's retry sees it as it sees any statement's."""
    import psycopg  # the postgres extra; only PostgreSQL gets here

    try:
        with conn.begin_nested():
            cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
            with cursor.copy(_COPY_KEYS) as copy:
                copy.set_types(["int4", "int8", "int8", "int8"])
                for row in rows:
                    copy.write_row(row)
    except psycopg.errors.UniqueViolation:
        return False
    except psycopg.Error as exc:
        raise DBAPIError.instance(_COPY_KEYS, None, exc, psycopg.Error) from exc
    return True


def refresh_stories(conn: Connection, story_ids: Sequence[str], now: datetime) -> set[str]:
    """Recount the stories' members and sources and re-choose their representatives (the
    earliest member); delete those left without members. Returns the sources with a member
    in the stories that remain.

    The first UPDATE locks the story rows (PostgreSQL waits there for another writer of the
    same stories to commit, rows in id order); the recount is a later statement, so it sees
    that writer's members.
    """
    wanted = sorted(set(story_ids))
    sources: set[str] = set()
    for chunk in _chunks(wanted, 500):
        pointers = {
            story_id: target
            for story_id, target in conn.execute(_LOCK_STORIES, {"values": chunk, "now": now})
            if target is not None
        }
        moved_to: set[str] = set()
        for story_id in sorted(pointers):  # merged away meanwhile: its members follow it
            target = _final_story(conn, pointers[story_id])
            conn.execute(
                update(StoryMemberRow)
                .where(StoryMemberRow.story_id == story_id)
                .values(story_id=target)
            )
            moved_to.add(target)
        members: dict[str, list[tuple[str, str]]] = defaultdict(list)  # earliest first
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
                }
            )
        if rows:
            conn.execute(_REFRESH, rows)
        for story_id in chunk:
            if story_id not in members and story_id not in pointers:
                _delete_story(conn, story_id)
        if moved_to:
            sources |= refresh_stories(conn, sorted(moved_to), now)
    return sources


def _final_story(conn: Connection, story_id: str) -> str:
    """The story a merged-away story's pointers lead to (itself if it was not merged)."""
    seen = {story_id}
    while True:
        query = select(StoryRow.merged_into).where(StoryRow.id == story_id)
        target = conn.execute(query).scalar()
        if target is None or target in seen:
            return story_id
        seen.add(target)
        story_id = target


def move_story(conn: Connection, gone: str, keep: str, now: datetime) -> None:
    """Fold the stored story ``gone`` into ``keep``: its members, key rows and terms. Its
    row stays, empty, pointing at ``keep``, for writers that joined it before they could
    see the merge (``refresh_stories`` moves their members on). Both rows are locked
    first, in id order."""
    conn.execute(
        update(StoryRow).where(StoryRow.id.in_(sorted({gone, keep}))).values(updated_at=now)
    )
    query = select(StoryRow.keyed_from, StoryRow.keyed_until).where(StoryRow.id == gone)
    span = conn.execute(query).first()
    if span is None:  # pruned meanwhile
        return
    conn.execute(
        update(StoryMemberRow).where(StoryMemberRow.story_id == gone).values(story_id=keep)
    )
    insert = _insert(conn)
    if span.keyed_from is not None and span.keyed_until is not None:
        for days in _chunks(list(range(span.keyed_from, span.keyed_until + 1)), 500):
            high, low = _story_halves(keep)
            rows = select(
                StoryKeyRow.bucket,
                StoryKeyRow.key,
                literal(high, BigInteger),
                literal(low, BigInteger),
            ).where(StoryKeyRow.bucket.in_(days), _of_story(gone))
            conn.execute(
                insert(StoryKeyRow)
                .from_select(["bucket", "key", "story_hi", "story_lo"], rows)
                .on_conflict_do_nothing(index_elements=["bucket", "key", "story_hi", "story_lo"])
            )
            conn.execute(delete(StoryKeyRow).where(StoryKeyRow.bucket.in_(days), _of_story(gone)))
        conn.execute(
            _widen_span(conn), [{"_id": keep, "low": span.keyed_from, "high": span.keyed_until}]
        )
    terms = select(literal(keep, String), StoryTermRow.term, StoryTermRow.count).where(
        StoryTermRow.story_id == gone
    )
    summed = insert(StoryTermRow).from_select(["story_id", "term", "count"], terms)
    conn.execute(
        summed.on_conflict_do_update(
            index_elements=["story_id", "term"],
            set_={"count": StoryTermRow.count + summed.excluded.count},
        )
    )
    conn.execute(delete(StoryTermRow).where(StoryTermRow.story_id == gone))
    conn.execute(
        update(StoryRow)
        .where(StoryRow.id == gone)
        .values(merged_into=keep, member_count=0, source_count=0, keyed_from=None, keyed_until=None)
    )


_stories_table = Base.metadata.tables["stories"]
_VALUES: BindParameter[Any] = bindparam("values", expanding=True)
_ENTRIES_AT_LINKS = select(EntryRow.uid, EntryRow.canonical_link).where(
    EntryRow.canonical_link.in_(_VALUES)
)
_STORIES_OF_ENTRIES = select(StoryMemberRow.entry_uid, StoryMemberRow.story_id).where(
    StoryMemberRow.entry_uid.in_(_VALUES)
)
_MEMBERS_OF_STORIES = {  # by whether vectors are wanted (event mode)
    wanted: select(
        StoryMemberRow.story_id,
        StoryMemberRow.entry_uid,
        StoryMemberRow.source_id,
        StoryMemberRow.published,
        StoryMemberRow.signature,
        StoryMemberRow.embedding if wanted else null(),
    ).where(StoryMemberRow.story_id.in_(_VALUES))
    for wanted in (False, True)
}
_TERMS_OF_STORIES = select(StoryTermRow.story_id, StoryTermRow.term, StoryTermRow.count).where(
    StoryTermRow.story_id.in_(_VALUES)
)
_FREQUENCIES_OF_TERMS = select(TermFrequencyRow.term, TermFrequencyRow.count).where(
    TermFrequencyRow.term.in_(_VALUES)
)
_LOCK_STORIES = (
    update(StoryRow)
    .where(StoryRow.id.in_(_VALUES))
    .values(updated_at=bindparam("now"))
    .returning(StoryRow.id, StoryRow.merged_into)
)
_MEMBERS_IN_ORDER = (
    select(StoryMemberRow.story_id, StoryMemberRow.entry_uid, StoryMemberRow.source_id)
    .where(StoryMemberRow.story_id.in_(_VALUES))
    .order_by(StoryMemberRow.story_id, StoryMemberRow.published, StoryMemberRow.entry_uid)
)
_COPY_KEYS = 'COPY story_keys (bucket, "key", story_hi, story_lo) FROM STDIN (FORMAT BINARY)'
_ADD_STORY_TERMS_TAIL = (
    " ON CONFLICT (story_id, term) DO UPDATE SET count = story_terms.count + excluded.count"
)
_ADD_STORY_TERMS = (  # sqlite3's paramstyle
    "INSERT INTO story_terms (story_id, term, count) VALUES (?, ?, ?)" + _ADD_STORY_TERMS_TAIL
)
_ADD_STORY_TERMS_UNNEST = (  # psycopg's
    "INSERT INTO story_terms (story_id, term, count) "
    "SELECT * FROM unnest(%s::varchar[], %s::varchar[], %s::integer[])" + _ADD_STORY_TERMS_TAIL
)
_ADD_FREQUENCIES_TAIL = (
    " ON CONFLICT (term) DO UPDATE SET count = term_frequencies.count + excluded.count"
)
_ADD_FREQUENCIES = (
    "INSERT INTO term_frequencies (term, count) VALUES (?, ?)" + _ADD_FREQUENCIES_TAIL
)
_ADD_FREQUENCIES_UNNEST = (
    "INSERT INTO term_frequencies (term, count) "
    "SELECT * FROM unnest(%s::varchar[], %s::integer[])" + _ADD_FREQUENCIES_TAIL
)
_KEY_COLUMNS = 'SELECT bucket, "key", story_hi, story_lo FROM story_keys'
_SELECT_KEYS_IN = _KEY_COLUMNS + ' WHERE bucket IN ({}) AND "key" IN ({})'
_SELECT_KEYS_ANY = _KEY_COLUMNS + ' WHERE bucket = ANY(%s) AND "key" = ANY(%s)'
_UID = re.compile(r"[0-9a-f]{32}")
_MASK = (1 << 64) - 1


def _story_halves(story_id: str) -> tuple[int, int]:
    """A story id (an entry uid: 32 hex digits) as story_keys keeps it: two signed 64-bit
    halves. Raises ValueError for anything else."""
    if not _UID.fullmatch(story_id):
        raise ValueError(f"a story id is an entry uid (32 hex digits), got {story_id!r}")
    value = int(story_id, 16)
    high, low = value >> 64, value & _MASK
    return high - (1 << 64) if high >> 63 else high, low - (1 << 64) if low >> 63 else low


def _story_id(high: int, low: int) -> str:
    """The story id of story_keys' two halves (the inverse of :func:`_story_halves`)."""
    return f"{high & _MASK:016x}{low & _MASK:016x}"


def _of_story(story_id: str) -> Any:
    """story_keys rows of the story: a WHERE clause on its two halves."""
    high, low = _story_halves(story_id)
    return and_(StoryKeyRow.story_hi == high, StoryKeyRow.story_lo == low)


_INSERT_KEYS = (  # sqlite3's paramstyle
    'INSERT INTO story_keys (bucket, "key", story_hi, story_lo) VALUES (?, ?, ?, ?) '
    "ON CONFLICT DO NOTHING"
)
_INSERT_KEYS_UNNEST = (  # psycopg's
    'INSERT INTO story_keys (bucket, "key", story_hi, story_lo) '
    "SELECT * FROM unnest(%s::integer[], %s::bigint[], %s::bigint[], %s::bigint[]) "
    "ON CONFLICT DO NOTHING"
)
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
    """Delete the story, its terms and its key rows (found by day, from its keyed span)."""
    span = conn.execute(
        select(StoryRow.keyed_from, StoryRow.keyed_until).where(StoryRow.id == story_id)
    ).first()
    if span is not None and span.keyed_from is not None and span.keyed_until is not None:
        days = list(range(span.keyed_from, span.keyed_until + 1))
        for chunk in _chunks(days, 500):
            conn.execute(
                delete(StoryKeyRow).where(StoryKeyRow.bucket.in_(chunk), _of_story(story_id))
            )
    conn.execute(delete(StoryTermRow).where(StoryTermRow.story_id == story_id))
    conn.execute(delete(StoryRow).where(StoryRow.id == story_id))


def _widen_span(conn: Connection) -> Any:
    """UPDATE a story's keyed span to include the days [low, high] (executemany)."""
    least = func.least if conn.dialect.name == "postgresql" else func.min
    greatest = func.greatest if conn.dialect.name == "postgresql" else func.max
    return (
        update(_stories_table)
        .where(_stories_table.c.id == bindparam("_id"))
        .values(
            keyed_from=least(
                func.coalesce(_stories_table.c.keyed_from, bindparam("low")), bindparam("low")
            ),
            keyed_until=greatest(
                func.coalesce(_stories_table.c.keyed_until, bindparam("high")),
                bindparam("high"),
            ),
        )
    )


def cluster_entries(
    conn: Connection, entries: Sequence[StoryEntry], settings: StorySettings, now: datetime
) -> tuple[int, int]:
    """Assign each new entry (oldest first) a story, recording the decision on its member.
    Returns how many stories were founded and how many merged into another."""
    tracking = settings.mode == StoryMode.EVENT
    index = SqlStoryIndex(conn, now, window=settings.window, track_terms=tracking)
    ordered = sorted(entries, key=lambda e: (e.published, e.uid))
    vectors = embed_entries(ordered, settings)  # one model call for the document, if any
    features = featurize_entries(ordered, settings, vectors)
    index.prefetch(features, settings)
    for entry, found in zip(ordered, features, strict=True):
        index.record(entry.uid, assign_story(entry, index, settings, features=found))
    bump_sources(conn, index.flush())
    return len(index._founded), len(index._merges)


def bump_sources(conn: Connection, sources: Iterable[str]) -> None:
    """Stories changed: bump the content version of every source with a member in them (the
    sources ``refresh_stories`` found), so rendered feeds that show one of their members (and
    credit the others) are rendered again. One UPDATE over the sorted ids, so two writers
    lock source rows in the same order."""
    wanted = sorted(set(sources))
    if wanted:
        conn.execute(
            update(SourceRow)
            .where(SourceRow.id.in_(wanted))
            .values(content_version=SourceRow.content_version + 1)
        )


def _day(moment: datetime) -> int:
    """The story_keys bucket of a time: days since 1970-01-01, UTC."""
    return math.floor(moment.timestamp()) // _DAY_SECONDS


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
    bump_sources(conn, refresh_stories(conn, sorted(stories), now))
    return sorted(stories)


STORY_TEXT_LIMIT = 4000  # characters of summary/content clustering looks at


def story_entry(
    uid: str,
    source_id: str,
    published: datetime,
    title: str | None,
    summary: str | None,
    content: str | None,
    link: str | None,
) -> StoryEntry:
    """What clustering sees of a stored entry: title and summary (else content), its date
    (else when first seen) and canonical link."""
    text = summary or content or ""
    return StoryEntry(uid, source_id, published, title or "", text[:STORY_TEXT_LIMIT], link)


def cluster_backlog(
    conn: Connection,
    settings: StorySettings,
    now: datetime,
    limit: int,
    after: tuple[datetime, int] | None = None,
) -> tuple[int, tuple[datetime, int] | None]:
    """Give a story to up to ``limit`` stored entries that have none (stored while clustering
    was off, or before migration 0005), oldest first, from after ``after`` (sort time, row
    id) on. Returns how many, and where to go on from.

    On PostgreSQL the entries are locked with SKIP LOCKED, so two workers catching up at
    once take different ones."""
    is_member = select(StoryMemberRow.entry_uid).where(StoryMemberRow.entry_uid == EntryRow.uid)
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
            row.uid,
            row.source_id,
            row.published or row.sort_at,
            row.title,
            row.summary,
            row.content,
            row.canonical_link,
        )
        for row in rows
    ]
    cluster_entries(conn, entries, settings, now)
    return len(rows), (rows[-1].sort_at, rows[-1].id)
