"""Story clustering through Store.ingest, on SQLite and PostgreSQL (db_url is parametrised):
the table-backed index, stored decisions, retention, concurrent writers, indexed lookups."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError

from sources import ParsedEntry, ParsedFeed, Validators
from store import Retention, SourceDefinition, Store, ensure_schema, entry_uid
from store import ingest as ingest_module
from store.stories import StoryMode, StorySettings, score_bcubed
from store.tables import StoryKeyRow, StoryMemberRow, StoryRow

SYNDICATED = Path(__file__).resolve().parent.parent / "data" / "syndicated" / "items.json"
HOUR = timedelta(hours=1)
T0 = datetime(2026, 11, 20, 6, 0, tzinfo=UTC)
WIRE = (
    "Lenovo will expand its server manufacturing campus in Tianjin into a hub for artificial "
    "intelligence servers, the company said on Thursday, with mass production of liquid-cooled "
    "GPU racks planned by 2027. The expansion adds two production lines and about 1,200 jobs."
)
OTHER = (
    "Nvidia reported record data center revenue for the quarter, driven by demand for its "
    "accelerators from cloud providers, and guided above analyst expectations for the next one."
)


def source(source_id: str, **kw: object) -> SourceDefinition:
    return SourceDefinition(source_id, f"https://{source_id}.example/feed", None, HOUR, **kw)  # type: ignore[arg-type]


def item(key: str, title: str, summary: str, link: str, published: datetime) -> ParsedEntry:
    return ParsedEntry(id=key, link=link, title=title, summary=summary, published=published)


async def ingest(store: Store, source_id: str, *entries: ParsedEntry, now: datetime = T0) -> None:
    feed = ParsedFeed(url=f"https://{source_id}.example/feed", version="rss20", entries=entries)
    await store.ingest(source_id, feed, Validators(), now, now + HOUR)


# A story id with both halves' top bits set one way and the other: 0008 keeps them signed.
OLD = f"{(1 << 64) - 0x0123456789ABCDF0:016x}0fedcba987654321"


async def keyed_stories(conn: Any) -> set[str]:
    """The stories story_keys has rows of (it keeps an id as two signed 64-bit halves)."""
    rows = await conn.execute(select(StoryKeyRow.story_hi, StoryKeyRow.story_lo).distinct())
    mask = (1 << 64) - 1
    return {f"{high & mask:016x}{low & mask:016x}" for high, low in rows}


async def uid_of(store: Store, source_id: str, key: str) -> str:
    uid = entry_uid(source_id, key)
    assert await store.find_entry(uid) is not None
    return uid


@pytest.fixture
async def stories_store(db_url: str) -> AsyncIterator[Store]:
    opened = Store.open(db_url, stories=StorySettings())
    await ensure_schema(opened)
    await opened.sync_sources([source(s) for s in ("wire", "post", "ledger", "gazette")], T0)
    yield opened
    await opened.close()


async def test_the_same_canonical_link_joins_across_sources_whatever_the_text(
    stories_store: Store,
) -> None:
    link = "https://wire.example/lenovo-tianjin"
    await ingest(stories_store, "wire", item("w1", "Lenovo expands Tianjin hub", WIRE, link, T0))
    tracked = f"{link}?utm_source=digest&utm_medium=rss"
    await ingest(stories_store, "post", item("p1", "Morning digest", OTHER, tracked, T0 + HOUR))
    founder = await uid_of(stories_store, "wire", "w1")
    story = await stories_store.story_of(await uid_of(stories_store, "post", "p1"))
    assert story is not None and story.id == founder
    assert [m.kind for m in story.members] == [None, "link"]
    assert story.representative_uid == founder and story.source_count == 2


async def test_a_near_copy_joins_with_its_score_kept_for_explain(stories_store: Store) -> None:
    await ingest(
        stories_store,
        "wire",
        item("w1", "Lenovo expands its Tianjin AI server hub", WIRE, "https://wire.example/1", T0),
    )
    copy = item(
        "p1", "Lenovo bets on Tianjin: AI servers by 2027", WIRE, "https://post.example/9", T0
    )
    await ingest(stories_store, "post", copy)
    story = await stories_store.story_of(await uid_of(stories_store, "post", "p1"))
    assert story is not None and story.member_count == 2
    joined = story.members[1]
    assert joined.kind == "near-copy" and joined.source_id == "post"
    best = joined.scores[0]
    assert best.story_id == story.id and best.matches
    assert best.score >= best.threshold == StorySettings().near_copy_threshold
    assert best.member_uid == story.members[0].entry_uid


async def test_same_source_copies_and_other_news_stay_apart(stories_store: Store) -> None:
    lenovo = item("w1", "Lenovo expands its Tianjin AI server hub", WIRE, "https://w/1", T0)
    follow = item("w2", "Lenovo expands its Tianjin AI server hub", WIRE, "https://w/2", T0)
    nvidia = item("p1", "Nvidia posts record data center revenue", OTHER, "https://p/1", T0)
    await ingest(stories_store, "wire", lenovo, follow)
    await ingest(stories_store, "post", nvidia)
    w1, w2 = await uid_of(stories_store, "wire", "w1"), await uid_of(stories_store, "wire", "w2")
    first, second = await stories_store.story_of(w1), await stories_store.story_of(w2)
    assert first is not None and second is not None and first.id != second.id
    assert second.members[0].scores[0].excluded == "same source"
    other = await stories_store.story_of(await uid_of(stories_store, "post", "p1"))
    assert other is not None and other.id not in (first.id, second.id)


async def test_the_syndicated_set_clusters_as_in_memory_through_the_store(db_url: str) -> None:
    items = json.loads(SYNDICATED.read_text())["items"]
    items.sort(key=lambda i: (i["published"], i["id"]))
    store = Store.open(db_url, stories=StorySettings())
    try:
        await ensure_schema(store)
        await store.sync_sources([source(s) for s in sorted({i["source"] for i in items})], T0)
        for i in items:  # one document per copy, in the order they were published
            published = datetime.fromisoformat(i["published"])
            entry = item(i["id"], i["title"], i["summary"], i["link"], published)
            await ingest(store, i["source"], entry, now=published)
        async with store.engine.connect() as conn:
            members = (
                await conn.execute(select(StoryMemberRow.entry_uid, StoryMemberRow.story_id))
            ).all()
        story_of = dict(members)
        labels = [story_of[entry_uid(i["source"], i["id"])] for i in items]
        result = score_bcubed(labels, [i["story"] for i in items])
        assert result.precision >= 0.99 and result.recall >= 0.95, result
        for i in items:  # every hard negative is alone in its story
            if i["story"].startswith("neg-"):
                assert labels.count(story_of[entry_uid(i["source"], i["id"])]) == 1, i["story"]
    finally:
        await store.close()


async def test_pruning_a_member_keeps_the_story_consistent(db_url: str) -> None:
    store = Store.open(db_url, stories=StorySettings())
    try:
        await ensure_schema(store)
        keep_one = Retention(max_entries=1)
        await store.sync_sources([source("wire", retention=keep_one), source("post")], T0)
        first = item("w1", "Lenovo expands its Tianjin AI server hub", WIRE, "https://w/1", T0)
        await ingest(store, "wire", first)
        copy = item("p1", "Lenovo bets on Tianjin", WIRE, "https://p/1", T0 + HOUR)
        await ingest(store, "post", copy)
        founder, joined = await uid_of(store, "wire", "w1"), await uid_of(store, "post", "p1")
        before = await store.story_of(joined)
        assert before is not None and before.representative_uid == founder
        # A newer wire entry pushes w1 out (max_entries 1): the story loses it.
        versions = await store.source_versions()
        later = item("w2", "Nvidia posts record revenue", OTHER, "https://w/2", T0 + 2 * HOUR)
        await ingest(store, "wire", later, now=T0 + 2 * HOUR)
        # post's cached feeds credited w1: they are rendered again.
        assert (await store.source_versions())["post"] > versions["post"]
        after = await store.story_of(joined)
        assert after is not None and after.id == founder  # the id never changes
        assert [m.entry_uid for m in after.members] == [joined]
        assert (after.representative_uid, after.member_count, after.source_count) == (
            joined,
            1,
            1,
        )
        assert await store.story_of(founder) is None
    finally:
        await store.close()


async def test_a_story_left_without_members_is_deleted_with_its_keys(db_url: str) -> None:
    store = Store.open(db_url, stories=StorySettings())
    try:
        await ensure_schema(store)
        await store.sync_sources([source("wire", retention=Retention(max_entries=1))], T0)
        await ingest(store, "wire", item("w1", "Lenovo Tianjin", WIRE, "https://w/1", T0))
        await ingest(store, "wire", item("w2", "Nvidia", OTHER, "https://w/2", T0 + HOUR))
        survivor = await uid_of(store, "wire", "w2")
        async with store.engine.connect() as conn:
            stories = (await conn.execute(select(StoryRow.id))).scalars().all()
            keyed = await keyed_stories(conn)
        assert stories == [survivor] and keyed == {survivor}
    finally:
        await store.close()


async def test_changed_entries_keep_their_story(stories_store: Store) -> None:
    first = item("w1", "Lenovo expands its Tianjin AI server hub", WIRE, "https://w/1", T0)
    await ingest(stories_store, "wire", first)
    await ingest(
        stories_store, "post", item("p1", "Lenovo bets on Tianjin", WIRE, "https://p/1", T0)
    )
    joined = await uid_of(stories_store, "post", "p1")
    story = await stories_store.story_of(joined)
    rewritten = item("p1", "Something else entirely", OTHER, "https://p/1", T0)
    await ingest(stories_store, "post", rewritten, now=T0 + HOUR)
    again = await stories_store.story_of(joined)
    assert story is not None and again is not None
    assert [(m.entry_uid, m.kind) for m in again.members] == [
        (m.entry_uid, m.kind) for m in story.members
    ]
    assert again.members[1].title == "Something else entirely"


async def test_link_mode_through_the_store_merges_only_links(db_url: str) -> None:
    store = Store.open(db_url, stories=StorySettings(mode=StoryMode.LINK))
    try:
        await ensure_schema(store)
        await store.sync_sources([source("wire"), source("post")], T0)
        await ingest(store, "wire", item("w1", "Lenovo Tianjin", WIRE, "https://w/1", T0))
        await ingest(store, "post", item("p1", "Lenovo Tianjin", WIRE, "https://p/1", T0))
        story = await store.story_of(await uid_of(store, "post", "p1"))
        assert story is not None and story.member_count == 1
    finally:
        await store.close()


async def test_two_writers_clustering_copies_at_once_lose_no_member(db_url: str) -> None:
    """Several stores (workers) ingest copies of one story into a story founded earlier."""
    first = Store.open(db_url, stories=StorySettings())
    await ensure_schema(first)
    outlets = ["post", "ledger", "gazette", "times", "herald"]
    await first.sync_sources([source(s) for s in ["wire", *outlets]], T0)
    lead = item("w1", "Lenovo expands its Tianjin AI server hub", WIRE, "https://w/1", T0)
    await ingest(first, "wire", lead)
    workers = [Store.open(db_url, stories=StorySettings()) for _ in outlets]
    try:
        copies = [
            ingest(w, s, item(f"{s}1", f"Lenovo in Tianjin ({s})", WIRE, f"https://{s}/1", T0))
            for w, s in zip(workers, outlets, strict=True)
        ]
        await asyncio.gather(*copies)
        founder = await uid_of(first, "wire", "w1")
        story = await first.story_of(founder)
        assert story is not None
        assert sorted(m.source_id for m in story.members) == sorted(["wire", *outlets])
        assert (story.member_count, story.source_count) == (6, 6)
        async with first.engine.connect() as conn:
            count = (await conn.execute(text("SELECT count(*) FROM story_members"))).scalar()
        assert count == 6
    finally:
        for w in workers:
            await w.close()
        await first.close()


async def test_joining_a_story_bumps_the_versions_of_its_members_sources(
    stories_store: Store,
) -> None:
    await ingest(stories_store, "wire", item("w1", "Lenovo Tianjin hub", WIRE, "https://w/1", T0))
    before = await stories_store.source_versions()
    await ingest(stories_store, "post", item("p1", "Lenovo bets on it", WIRE, "https://p/1", T0))
    after = await stories_store.source_versions()
    assert after["wire"] > before["wire"]  # its feeds now credit the new copy
    assert after["ledger"] == before["ledger"]


@pytest.mark.parametrize(
    "statement",
    [
        "SELECT bucket, key, story_hi, story_lo FROM story_keys "
        "WHERE bucket IN (20412, 20413) AND key IN (1, 2, 3)",
        "SELECT m.story_id FROM story_members m JOIN entries e ON e.uid = m.entry_uid "
        "WHERE e.canonical_link = 'https://w/1'",
        "SELECT entry_uid, source_id, published, signature FROM story_members "
        "WHERE story_id IN ('a', 'b')",
    ],
)
async def test_candidate_lookups_use_indexes_not_scans(
    stories_store: Store, statement: str
) -> None:
    async with stories_store.engine.connect() as conn:
        if conn.dialect.name == "sqlite":
            plan = " | ".join(
                str(row[-1]) for row in await conn.execute(text(f"EXPLAIN QUERY PLAN {statement}"))
            )
            assert "INDEX" in plan or "PRIMARY KEY" in plan, plan
            assert "SCAN entries" not in plan, plan
            assert "SCAN story_keys" not in plan and "SCAN story_members" not in plan, plan
        else:
            await conn.execute(text("SET enable_seqscan = off"))  # tiny tables: plan as big
            plan = " | ".join(
                str(row[0]) for row in await conn.execute(text(f"EXPLAIN {statement}"))
            )
            assert "Seq Scan" not in plan, plan


async def test_an_ingest_aborted_for_a_deadlock_is_run_again(
    stories_store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    class Deadlock(Exception):
        sqlstate = "40P01"

    real = ingest_module.upsert_entries
    calls = []

    def deadlock_once(*args: object, **kwargs: object) -> object:
        calls.append(1)
        result = real(*args, **kwargs)  # type: ignore[arg-type]
        if len(calls) == 1:  # written, then aborted: the transaction is rolled back
            raise DBAPIError("UPDATE stories ...", {}, Deadlock())
        return result

    monkeypatch.setattr("store.store.upsert_entries", deadlock_once)
    await ingest(stories_store, "wire", item("w1", "Lenovo Tianjin", WIRE, "https://w/1", T0))
    assert len(calls) == 2
    assert (await stories_store.count_entries()) == {"wire": 1}
    story = await stories_store.story_of(entry_uid("wire", "w1"))
    assert story is not None and story.member_count == 1


async def test_migrations_0006_and_0008_rekey_stories_clustered_before_them(db_url: str) -> None:
    """Stories stored under the old band shape (32 x 4, datetimes) are re-keyed from their
    members' signatures (20 x 3, Unix seconds; 0006), their story ids then kept as two
    64-bit halves (0008), so a copy arriving after the upgrade still finds them; the
    downgrade restores the old keys."""
    from alembic import command

    from store.migrate import alembic_config
    from store.stories import StoryEntry, featurize_entry
    from store.stories.sketch import band_keys

    old = featurize_entry(
        StoryEntry(OLD, "wire", T0, "Lenovo expands Tianjin AI server hub", WIRE),
        StorySettings(),
    )
    store = Store.open(db_url, stories=StorySettings())

    def migrate(conn: object, direction: str, revision: str) -> None:
        getattr(command, direction)(alembic_config(conn), revision)  # type: ignore[arg-type]

    try:
        async with store.engine.begin() as conn:
            await conn.run_sync(migrate, "upgrade", "0005")
            when = {"t": T0.replace(tzinfo=None) if conn.dialect.name == "sqlite" else T0}
            await conn.execute(
                text("INSERT INTO stories VALUES (:old, :old, 1, 1, :t, :t)"), {"old": OLD, **when}
            )
            await conn.execute(
                text(
                    "INSERT INTO story_members VALUES "
                    "(:old, :old, 'wire', :t, :sig, NULL, '[]', :t)"
                ),
                {**when, "sig": old.signature, "old": OLD},
            )
            for key in band_keys(old.signature, 32, 4):
                await conn.execute(
                    text("INSERT INTO story_keys VALUES (:k, :old, :t)"),
                    {"k": key, "old": OLD, **when},
                )
            await conn.run_sync(migrate, "upgrade", "head")
            rows = (await conn.execute(text("SELECT * FROM story_keys"))).all()
            span = (await conn.execute(text("SELECT keyed_from, keyed_until FROM stories"))).one()
        day = int(T0.timestamp()) // 86_400
        halves = (-0x0123456789ABCDF0, 0x0FEDCBA987654321)  # OLD's, as signed 64-bit integers
        assert sorted(rows) == sorted((day, k, *halves) for k in band_keys(old.signature, 20, 3))
        assert tuple(span) == (day, day)

        await store.sync_sources([source("post")], T0)
        await ingest(
            store, "post", item("p1", "Lenovo bets on Tianjin", WIRE, "https://p/1", T0 + HOUR)
        )
        async with store.engine.connect() as conn:
            story = (
                await conn.execute(
                    select(StoryMemberRow.story_id).where(
                        StoryMemberRow.entry_uid == entry_uid("post", "p1")
                    )
                )
            ).scalar_one()
        assert story == OLD

        async with store.engine.begin() as conn:
            await conn.execute(
                text("DELETE FROM story_members WHERE entry_uid != :old"), {"old": OLD}
            )
            await conn.run_sync(migrate, "downgrade", "0007")
            back = (await conn.execute(text("SELECT * FROM story_keys"))).all()
            await conn.run_sync(migrate, "downgrade", "0005")
            keys = (await conn.execute(text("SELECT key FROM story_keys"))).scalars().all()
        assert {row[2] for row in back} == {OLD}  # p1's keys are OLD's too
        assert {(day, k, OLD) for k in band_keys(old.signature, 20, 3)} <= set(back)
        assert sorted(set(keys)) == sorted(set(band_keys(old.signature, 32, 4)))
    finally:
        await store.close()


async def test_entries_stored_while_clustering_was_off_get_stories(db_url: str) -> None:
    """Clustering switched on later (a first `dedupe: story` feed): the backlog of entries
    without a story is clustered oldest first, in batches, until none is left."""
    plain = Store.open(db_url)
    try:
        await ensure_schema(plain)
        await plain.sync_sources([source(s) for s in ("wire", "post", "ledger")], T0)
        await ingest(plain, "wire", item("w1", "Lenovo Tianjin AI hub", WIRE, "https://w/1", T0))
        copy = item("p1", "Lenovo bets on Tianjin", WIRE, "https://p/1", T0 + HOUR)
        await ingest(plain, "post", copy)
        other = item("l1", "Nvidia record quarter", OTHER, "https://l/1", T0 + HOUR)
        await ingest(plain, "ledger", other)
        assert await plain.cluster_backlog(T0) == 0  # clustering is off: nothing done
    finally:
        await plain.close()
    store = Store.open(db_url, stories=StorySettings())
    try:
        assert await store.story_of(entry_uid("wire", "w1")) is None
        assert await store.cluster_backlog(T0 + 2 * HOUR, limit=2) == 2
        assert await store.cluster_backlog(T0 + 2 * HOUR, limit=2) == 1
        assert await store.cluster_backlog(T0 + 2 * HOUR, limit=2) == 0
        wire = await store.story_of(entry_uid("wire", "w1"))
        post = await store.story_of(entry_uid("post", "p1"))
        ledger = await store.story_of(entry_uid("ledger", "l1"))
        assert wire is not None and post is not None and ledger is not None
        assert wire.id == post.id == entry_uid("wire", "w1")  # the copy joined the older one
        assert ledger.id != wire.id
        # A new process starts from the beginning and finds nothing left.
        again = Store.open(db_url, stories=StorySettings())
        try:
            assert await again.cluster_backlog(T0 + 3 * HOUR) == 0
        finally:
            await again.close()
    finally:
        await store.close()


IPO = "Northwind Freight IPO raises $840 million"
DEBUT = "Trucking firm prices offering in Nasdaq debut"
BRIDGE = "Trucking firm Northwind Freight prices IPO in Nasdaq debut, raises $840 million"


@pytest.mark.parametrize("one_document", [False, True])
async def test_an_entry_bridging_two_stored_stories_merges_them_in_the_database(
    db_url: str, one_document: bool
) -> None:
    """Event mode: the bridged stories become one in the tables (members, keys, terms), the
    larger one's id stands, and the other's row points at it. Entries one document each, or
    all in one batch (the backlog: the merged stories were founded in the same batch)."""
    from store.story_index import refresh_stories

    event = StorySettings(mode=StoryMode.EVENT)
    store = Store.open(db_url, stories=None if one_document else event)
    try:
        await ensure_schema(store)
        names = ("wire", "post", "digest", "blog")
        await store.sync_sources([source(s) for s in names], T0)
        items = [
            ("wire", item("a", IPO, "", "https://wire.example/a", T0)),
            ("post", item("b", DEBUT, "", "https://post.example/b", T0 + HOUR)),
            ("digest", item("e", f"{DEBUT} today", "", "https://digest.example/e", T0 + HOUR)),
            ("blog", item("c", BRIDGE, "", "https://blog.example/c", T0 + 2 * HOUR)),
        ]
        for source_id, entry in items:
            await ingest(store, source_id, entry)
        if one_document:
            await store.close()
            store = Store.open(db_url, stories=event)
            assert await store.cluster_backlog(T0 + 3 * HOUR) == 4
        a, b = entry_uid("wire", "a"), entry_uid("post", "b")
        story = await store.story_of(entry_uid("blog", "c"))
        assert story is not None and story.id == b  # two sources beat one: b's id stands
        assert sorted(m.entry_uid for m in story.members) == sorted(
            entry_uid(s, e.id or "") for s, e in items
        )
        assert (story.member_count, story.source_count) == (4, 4)
        async with store.engine.connect() as conn:
            query = select(StoryRow.merged_into).where(StoryRow.id == a)
            pointer = (await conn.execute(query)).scalar()
            keyed = a in await keyed_stories(conn)
            terms = (
                await conn.execute(
                    text("SELECT count(*) FROM story_terms WHERE story_id = :a"), {"a": a}
                )
            ).scalar()
        assert not keyed and terms == 0
        if one_document:  # `a` was founded and merged before anything was written
            assert pointer is None and [s.id for s in await store.recent_stories()] == [b]
            return
        assert pointer == b
        assert [s.id for s in await store.recent_stories()] == [b]

        # A writer that joined `a` before it could see the merge: its member moves on.
        async with store.engine.begin() as conn:
            await conn.execute(
                text(
                    "INSERT INTO story_members (entry_uid, story_id, source_id, published, "
                    "signature, kind, scores, joined_at) VALUES ('late', :a, 'gazette', :t, "
                    ":sig, 'event', '[]', :t)"
                ),
                {
                    "a": a,
                    "t": T0 if conn.dialect.name != "sqlite" else T0.replace(tzinfo=None),
                    "sig": b"",
                },
            )
            await conn.run_sync(lambda sync: refresh_stories(sync, [a], T0 + 3 * HOUR))
            moved = (
                await conn.execute(
                    select(StoryMemberRow.story_id).where(StoryMemberRow.entry_uid == "late")
                )
            ).scalar()
            counted = (
                await conn.execute(select(StoryRow.member_count).where(StoryRow.id == b))
            ).scalar()
        assert moved == b and counted == 5
    finally:
        await store.close()


async def test_with_an_embedder_members_keep_their_vectors_and_later_entries_compare_with_them(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Event mode with an embedder: a document's new entries are embedded in one model call,
    each member keeps its vector in the table, and an entry of a later ingest is scored
    against the stored vectors. A stand-in model (the real one is an optional extra): texts
    about the port strike share one direction, everything else another."""
    import numpy as np

    from store.stories import cluster as cluster_module
    from store.stories.embed import pack_vector

    calls: list[int] = []

    def model(texts: Any) -> list[bytes]:
        calls.append(len(texts))
        strike, other = np.eye(2, dtype=np.float32)
        return [pack_vector(strike if "port" in t.lower() else other) for t in texts]

    monkeypatch.setattr(cluster_module, "load_embedder", lambda name: model)
    settings = StorySettings(mode=StoryMode.EVENT, embedder="all-minilm-l6-v2")
    store = Store.open(db_url, stories=settings)
    try:
        await ensure_schema(store)
        await store.sync_sources([source(s) for s in ("wire", "post", "ledger")], T0)
        await ingest(
            store,
            "wire",
            item("w1", "Dockworkers walk out at Port of Halden", "", "https://w/1", T0),
            item("w2", "Nvidia record quarter", "", "https://w/2", T0),
        )
        assert calls == [2]  # one call for the document's two new entries
        async with store.engine.connect() as conn:
            stored = (await conn.execute(select(StoryMemberRow.embedding))).scalars().all()
        assert len(stored) == 2 and all(v and len(v) == 4 for v in stored)  # 2 x float16
        # No words in common with w1's title, the same direction in the stand-in model.
        later = item("p1", "Halden port shut as strike spreads", "", "https://p/1", T0 + HOUR)
        await ingest(store, "post", later)
        other = item("l1", "Central bank holds rates", "", "https://l/1", T0 + HOUR)
        await ingest(store, "ledger", other)
        joined = await store.story_of(entry_uid("post", "p1"))
        alone = await store.story_of(entry_uid("ledger", "l1"))
        assert joined is not None and joined.id == entry_uid("wire", "w1")
        assert alone is not None and alone.id == entry_uid("ledger", "l1")
    finally:
        await store.close()


@settings(max_examples=200)
@given(st.integers(min_value=0, max_value=(1 << 128) - 1))
def test_story_keys_keep_a_story_id_as_two_signed_halves(value: int) -> None:
    from store.story_index import _story_halves, _story_id

    story_id = f"{value:032x}"
    high, low = _story_halves(story_id)
    assert all(-(1 << 63) <= half < (1 << 63) for half in (high, low))  # BIGINT columns
    assert _story_id(high, low) == story_id


@pytest.mark.parametrize("story_id", ["old-uid", "", "A" * 32, "0" * 31, " " + "0" * 31, "0_" * 16])
def test_story_keys_refuse_what_is_not_an_entry_uid(story_id: str) -> None:
    from store.story_index import _story_halves

    with pytest.raises(ValueError, match="32 hex digits"):
        _story_halves(story_id)


async def test_a_key_row_another_writer_added_meanwhile_is_skipped(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A story's key row written after the document's look-up (by another worker joining the
    same story on PostgreSQL) makes the fast COPY fail; the rows then go in by INSERT, which
    skips it, and the ingest goes on. On SQLite the INSERT skips it directly."""
    import store.story_index as story_index
    from store.database import create_thread_engine, write_with
    from store.stories import StoryEntry, assign_story, featurize_entries

    settings_ = StorySettings()
    copies: list[bool] = []
    real_copy = story_index._copy_keys

    def spy(conn: Any, rows: Any) -> bool:
        copies.append(real_copy(conn, rows))
        return copies[-1]

    monkeypatch.setattr(story_index, "_copy_keys", spy)
    store = Store.open(db_url, stories=settings_)
    await ensure_schema(store)
    engine = create_thread_engine(store.engine)
    assert engine is not None

    def cluster(entry: StoryEntry, meanwhile: bool) -> tuple[int, ...]:
        def work(conn: Any) -> tuple[int, ...]:
            index = story_index.SqlStoryIndex(conn, T0, window=settings_.window, track_terms=False)
            [features] = featurize_entries([entry], settings_)
            index.prefetch([features], settings_)
            index.record(entry.uid, assign_story(entry, index, settings_, features=features))
            if meanwhile:
                high, low = story_index._story_halves(entry.uid)
                conn.execute(
                    text("INSERT INTO story_keys VALUES (:day, :key, :high, :low)"),
                    {"day": story_index._day(T0), "key": features.band_keys[0]}
                    | {"high": high, "low": low},
                )
            index.flush()
            return features.band_keys

        return write_with(engine, work)

    try:
        first = StoryEntry(entry_uid("wire", "w1"), "wire", T0, "Lenovo Tianjin hub", WIRE)
        second = StoryEntry(entry_uid("blog", "b1"), "blog", T0, "Nvidia rates", OTHER)
        expected = set()
        for entry, meanwhile in ((first, False), (second, True)):
            keys = await asyncio.to_thread(cluster, entry, meanwhile)
            high, low = story_index._story_halves(entry.uid)
            expected |= {(story_index._day(T0), key, high, low) for key in keys}
        async with store.engine.connect() as conn:
            rows = (await conn.execute(text("SELECT * FROM story_keys"))).all()
        assert sorted(rows) == sorted(expected)  # every key once, none lost
        postgres = store.engine.dialect.name == "postgresql"
        assert copies == ([True, False] if postgres else [])
    finally:
        engine.dispose()
        await store.close()


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)  # SQLite has no COPY
async def test_a_deadlock_in_the_key_copy_runs_the_ingest_again(
    stories_store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The key rows' COPY goes to the driver directly; a deadlock there reaches the ingest's
    retry as any statement's does (a DBAPIError with the SQLSTATE), and nothing is lost."""
    assert stories_store.engine.dialect.name == "postgresql"
    import psycopg

    real_copy = psycopg.Cursor.copy
    calls: list[int] = []

    def copy_once_deadlocked(self: Any, statement: Any, *args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        if len(calls) == 1:
            raise psycopg.errors.DeadlockDetected("deadlock detected")
        return real_copy(self, statement, *args, **kwargs)

    monkeypatch.setattr(psycopg.Cursor, "copy", copy_once_deadlocked)
    await ingest(stories_store, "wire", item("w1", "Lenovo Tianjin", WIRE, "https://w/1", T0))
    assert len(calls) == 2
    assert (await stories_store.count_entries()) == {"wire": 1}
    uid = entry_uid("wire", "w1")
    async with stories_store.engine.connect() as conn:
        assert await keyed_stories(conn) == {uid}


@pytest.mark.parametrize("mode", [StoryMode.NEAR_COPY, StoryMode.EVENT])
async def test_the_database_index_decides_as_the_memory_index_on_real_headlines(
    db_url: str, corpus: Path, mode: StoryMode
) -> None:
    """The first 300 headlines of news-dedup (each publisher a source), one document each in
    time order, through Store.ingest and through assign_story on the in-memory index that
    bench/dedup.py measures: every entry lands in the same story (ids included), merges and
    all. So the batched reads of the database index (prefetch, and in event mode only the
    likely rarest terms' keys) change no decision."""
    from store.stories import MemoryStoryIndex, StoryEntry, assign_story
    from store.stories.evaluate import read_news_dedup

    headlines, _ = read_news_dedup(corpus / "news-dedup" / "uci_news_aggregator_first6366.csv")
    headlines = headlines[:300]
    settings_ = StorySettings(mode=mode)
    memory = MemoryStoryIndex()
    for headline in headlines:
        uid = entry_uid(headline.source_id, headline.uid)
        entry = StoryEntry(uid, headline.source_id, headline.published, headline.title, "")
        assign_story(entry, memory, settings_)
    store = Store.open(db_url, stories=settings_)
    try:
        await ensure_schema(store)
        sources = sorted({h.source_id for h in headlines})
        await store.sync_sources([source(s) for s in sources], T0)
        for headline in headlines:
            parsed = ParsedEntry(
                id=headline.uid, link=None, title=headline.title, published=headline.published
            )
            feed = ParsedFeed(url="u", version="rss20", entries=(parsed,))
            await store.ingest(headline.source_id, feed, Validators(), T0, T0 + HOUR)
        async with store.engine.connect() as conn:
            rows = await conn.execute(select(StoryMemberRow.entry_uid, StoryMemberRow.story_id))
            stored = dict(rows.all())
    finally:
        await store.close()
    assert len(stored) == len(headlines)
    assert sum(1 for s in set(memory.story_of.values()) if s) < len(headlines)  # some join
    assert stored == memory.story_of
