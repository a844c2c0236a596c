"""Story clustering through Store.ingest, on SQLite and PostgreSQL (db_url is parametrised):
the index built from and kept in step with story_members, stored decisions, retention,
several writers, the upgrade from revision 0008, indexed look-ups."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError

from sources import ParsedEntry, ParsedFeed, Validators
from store import Retention, SourceDefinition, Store, ensure_schema, entry_uid
from store import ingest as ingest_module
from store.stories import StoryMode, StorySettings, score_bcubed
from store.tables import StoryMemberRow, StoryRow

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


async def test_a_copy_joins_with_its_score_kept_for_explain(stories_store: Store) -> None:
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
    # One document lists w1 first (newest): w2 is clustered first and w1 meets it.
    later = first if first.members[0].scores else second
    assert later.members[0].scores[0].excluded == "same source"
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


async def test_a_story_left_without_members_is_deleted(db_url: str) -> None:
    store = Store.open(db_url, stories=StorySettings())
    try:
        await ensure_schema(store)
        await store.sync_sources([source("wire", retention=Retention(max_entries=1))], T0)
        await ingest(store, "wire", item("w1", "Lenovo Tianjin", WIRE, "https://w/1", T0))
        await ingest(store, "wire", item("w2", "Nvidia", OTHER, "https://w/2", T0 + HOUR))
        survivor = await uid_of(store, "wire", "w2")
        async with store.engine.connect() as conn:
            stories = (await conn.execute(select(StoryRow.id))).scalars().all()
        assert stories == [survivor]
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
        # building the index: the members of the window, and their stories' sources
        "SELECT m.entry_uid, m.terms, e.canonical_link FROM story_members m "
        "JOIN entries e ON e.uid = m.entry_uid WHERE m.published >= '2026-11-19'",
        "SELECT DISTINCT story_id, source_id FROM story_members WHERE story_id IN ('a', 'b')",
        # catching up with other processes' members
        "SELECT m.entry_uid, m.terms, e.canonical_link FROM story_members m "
        "JOIN entries e ON e.uid = m.entry_uid WHERE m.seq > 41",
        # a curated feed's groups: memberships, members, their entries
        "SELECT entry_uid, story_id FROM story_members WHERE entry_uid IN ('a', 'b')",
        "SELECT story_id, entry_uid FROM story_members WHERE story_id IN ('a', 'b')",
        "SELECT * FROM entries WHERE uid IN ('a', 'b')",
    ],
)
async def test_story_queries_use_indexes_not_scans(stories_store: Store, statement: str) -> None:
    async with stories_store.engine.connect() as conn:
        if conn.dialect.name == "sqlite":
            plan = " | ".join(
                str(row[-1]) for row in await conn.execute(text(f"EXPLAIN QUERY PLAN {statement}"))
            )
            assert "INDEX" in plan or "PRIMARY KEY" in plan, plan
            assert "SCAN entries" not in plan and "SCAN story_members" not in plan, plan
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


async def test_a_new_process_builds_its_index_from_the_members_and_decides_alike(
    db_url: str,
) -> None:
    first = Store.open(db_url, stories=StorySettings())
    await ensure_schema(first)
    await first.sync_sources([source(s) for s in ("wire", "post", "ledger")], T0)
    await ingest(
        first, "wire", item("w1", "Lenovo expands Tianjin AI hub", WIRE, "https://w/1", T0)
    )
    await ingest(first, "ledger", item("l1", "Nvidia record quarter", OTHER, "https://l/1", T0))
    await first.close()
    again = Store.open(db_url, stories=StorySettings())
    try:
        copy = item("p1", "Lenovo bets on Tianjin", WIRE, "https://p/1", T0 + HOUR)
        await ingest(again, "post", copy, now=T0 + HOUR)
        story = await again.story_of(entry_uid("post", "p1"))
        assert story is not None and story.id == entry_uid("wire", "w1")
        assert again.clusterer is not None and again.clusterer.index is not None
        assert len(again.clusterer.index) == 3
        assert again.story_counts() == {"founded": 0, "joined": 1, "merged": 0, "held": 3}
    finally:
        await again.close()


async def test_headlines_with_no_summary_join_as_headlines_after_a_rebuild(db_url: str) -> None:
    first = Store.open(db_url, stories=StorySettings())
    await ensure_schema(first)
    await first.sync_sources([source(s) for s in ("wire", "post")], T0)
    title = "Bitcoin exchange Mt. Gox files for bankruptcy protection in the US"
    await ingest(first, "wire", item("w1", title, "", "https://w/1", T0))
    await first.close()
    again = Store.open(db_url, stories=StorySettings())  # its index read from story_members
    try:
        copy = item(
            "p1", "Mt. Gox files for US bankruptcy to halt class action", "", "https://p/1", T0
        )
        await ingest(again, "post", copy)
        story = await again.story_of(entry_uid("post", "p1"))
        assert story is not None and story.id == entry_uid("wire", "w1")
        assert story.members[1].kind == "headline"
        assert story.members[1].scores[0].threshold == StorySettings().headline_threshold
    finally:
        await again.close()


async def test_a_process_catches_up_with_members_another_one_wrote(db_url: str) -> None:
    one = Store.open(db_url, stories=StorySettings())
    await ensure_schema(one)
    await one.sync_sources([source(s) for s in ("wire", "post", "ledger")], T0)
    other = Store.open(db_url, stories=StorySettings())
    try:
        await ingest(one, "ledger", item("l1", "Nvidia record quarter", OTHER, "https://l/1", T0))
        await ingest(other, "wire", item("w1", "Lenovo Tianjin AI hub", WIRE, "https://w/1", T0))
        assert one.clusterer is not None and one.clusterer.index is not None
        assert entry_uid("wire", "w1") not in one.clusterer.index  # written by the other
        await ingest(one, "post", item("p1", "Lenovo bets on Tianjin", WIRE, "https://p/1", T0))
        story = await one.story_of(entry_uid("post", "p1"))
        assert story is not None and story.id == entry_uid("wire", "w1")
    finally:
        await other.close()
        await one.close()


async def test_two_workers_storing_interleaved_copies_of_a_story_at_once_make_one_story(
    db_url: str,
) -> None:
    """Each worker's first copy arrives at the same time as the other's: the story clock's
    lock makes the second see the first, so the copies never found two stories."""
    setup = Store.open(db_url, stories=StorySettings())
    await ensure_schema(setup)
    outlets = ["wire", "post", "ledger", "gazette", "times", "herald"]
    await setup.sync_sources([source(s) for s in outlets], T0)
    await setup.close()
    workers = [Store.open(db_url, stories=StorySettings()) for _ in range(2)]
    try:
        for turn in range(3):
            pair = outlets[2 * turn : 2 * turn + 2]
            await asyncio.gather(
                *(
                    ingest(
                        w, s, item(f"{s}1", f"Lenovo in Tianjin ({s})", WIRE, f"https://{s}/1", T0)
                    )
                    for w, s in zip(workers, pair, strict=True)
                )
            )
        async with workers[0].engine.connect() as conn:
            stories = (await conn.execute(select(StoryMemberRow.story_id).distinct())).scalars()
            assert len(stories.all()) == 1
            counts = (
                await conn.execute(select(StoryRow.member_count, StoryRow.source_count))
            ).all()
        assert [tuple(row) for row in counts] == [(6, 6)]
    finally:
        for w in workers:
            await w.close()


async def test_upgrading_a_store_clustered_at_0008_keeps_every_story_and_member(
    db_url: str,
) -> None:
    """Members clustered before revision 0010 have no terms: the index reads their entries
    again, so a copy arriving after the upgrade joins their story."""
    from alembic import command

    from store.migrate import alembic_config

    old = Store.open(db_url)
    try:
        # Entries stored by this version (without clustering), then the schema taken back to
        # 0008 and story rows written as 0008 kept them.
        await ensure_schema(old)
        await old.sync_sources([source(s) for s in ("wire", "post", "ledger")], T0)
        for source_id, key, title, summary in (
            ("wire", "w1", "Lenovo expands Tianjin AI hub", WIRE),
            ("post", "p1", "Lenovo bets on Tianjin", WIRE),
            ("ledger", "l1", "Nvidia record quarter", OTHER),
        ):
            link = f"https://{source_id}/1"
            await ingest(old, source_id, item(key, title, summary, link, T0))
        async with old.engine.begin() as conn:
            await conn.run_sync(lambda c: command.downgrade(alembic_config(c), "0008"))
        founder = entry_uid("wire", "w1")
        members = [
            (entry_uid("wire", "w1"), founder, "wire", None),
            (entry_uid("post", "p1"), founder, "post", "near-copy"),
            (entry_uid("ledger", "l1"), entry_uid("ledger", "l1"), "ledger", None),
        ]
        async with old.engine.begin() as conn:
            when = T0.replace(tzinfo=None) if conn.dialect.name == "sqlite" else T0
            for uid, story_id, source_id, kind in members:
                if uid == story_id:
                    await conn.execute(
                        text(
                            "INSERT INTO stories (id, representative_uid, member_count, "
                            "source_count, created_at, updated_at) VALUES (:s, :s, 1, 1, :t, :t)"
                        ),
                        {"s": story_id, "t": when},
                    )
                await conn.execute(
                    text(
                        "INSERT INTO story_members (entry_uid, story_id, source_id, published, "
                        "signature, kind, scores, joined_at) "
                        "VALUES (:u, :s, :src, :t, :sig, :k, '[]', :t)"
                    ),
                    {
                        "u": uid,
                        "s": story_id,
                        "src": source_id,
                        "t": when,
                        "sig": b"\0" * 512,
                        "k": kind,
                    },
                )
    finally:
        await old.close()
    store = Store.open(db_url, stories=StorySettings())
    try:
        await ensure_schema(store)
        async with store.engine.connect() as conn:
            kept = (
                await conn.execute(select(StoryMemberRow.entry_uid, StoryMemberRow.story_id))
            ).all()
            stories = (await conn.execute(select(StoryRow.id))).scalars().all()
        assert sorted(kept) == sorted((uid, story_id) for uid, story_id, _, _ in members)
        assert sorted(stories) == sorted({story_id for _, story_id, _, _ in members})
        await store.sync_sources([source("gazette")], T0)
        copy = item("g1", "Lenovo grows its Tianjin hub", WIRE, "https://g/1", T0 + HOUR)
        await ingest(store, "gazette", copy, now=T0 + HOUR)
        story = await store.story_of(entry_uid("gazette", "g1"))
        assert story is not None and story.id == founder and story.member_count == 3
    finally:
        await store.close()


async def test_an_entry_published_long_before_the_newest_still_finds_its_story(
    db_url: str,
) -> None:
    """A back-filled entry (or a feed's first fetch going back weeks) has its window behind
    the live index's horizon: a back-fill index of its time decides it, in this process and
    in a new one, and the live index holds no more than its horizon."""
    store = Store.open(db_url, stories=StorySettings())
    await ensure_schema(store)
    await store.sync_sources([source(s) for s in ("wire", "post", "ledger", "gazette")], T0)
    old = T0 - timedelta(days=20)
    try:
        lenovo = item("w-old", "Lenovo expands Tianjin AI hub", WIRE, "https://w/old", old)
        nvidia = item("w-new", "Nvidia posts record quarter", OTHER, "https://w/new", T0)
        await ingest(store, "wire", nvidia, lenovo)
        copy = item("p1", "Lenovo bets on Tianjin", WIRE, "https://p/1", old + 2 * HOUR)
        await ingest(store, "post", copy)
        founder = entry_uid("wire", "w-old")
        story = await store.story_of(entry_uid("post", "p1"))
        assert story is not None and story.id == founder and story.source_count == 2
        assert store.clusterer is not None and store.clusterer.index is not None
        assert founder not in store.clusterer.index  # 20 days behind: not in the live index
        assert store.story_counts()["joined"] == 1
        # The same source's own copy of the old story never joins it.
        again = item("p2", "Lenovo bets on Tianjin (update)", WIRE, "https://p/2", old + 3 * HOUR)
        await ingest(store, "post", again)
        alone = await store.story_of(entry_uid("post", "p2"))
        assert alone is not None and alone.id != founder
    finally:
        await store.close()
    fresh = Store.open(db_url, stories=StorySettings())
    try:
        late = item("l1", "Tianjin to host Lenovo AI servers", WIRE, "https://l/1", old + HOUR)
        await ingest(fresh, "ledger", late)
        story = await fresh.story_of(entry_uid("ledger", "l1"))
        assert story is not None and story.id == founder and story.source_count == 3
        # Today's news still meets today's stories in the same document.
        news = item("g1", "Nvidia record data center quarter", OTHER, "https://g/1", T0 + HOUR)
        older = item("g0", "Lenovo's Tianjin AI server hub", WIRE, "https://g/0", old + HOUR)
        await ingest(fresh, "gazette", news, older, now=T0 + HOUR)
        today = await fresh.story_of(entry_uid("gazette", "g1"))
        back = await fresh.story_of(entry_uid("gazette", "g0"))
        assert today is not None and today.id == entry_uid("wire", "w-new")
        assert back is not None and back.id == founder and back.source_count == 4
    finally:
        await fresh.close()


async def test_a_back_fill_index_catches_up_with_what_another_process_wrote(db_url: str) -> None:
    """Two processes cluster entries of a story 20 days old, each with its own back-fill
    index: what one writes reaches the other's, so the same-source rule holds across them."""
    one = Store.open(db_url, stories=StorySettings())
    await ensure_schema(one)
    await one.sync_sources([source(s) for s in ("wire", "post", "ledger")], T0)
    other = Store.open(db_url, stories=StorySettings())
    old = T0 - timedelta(days=20)
    founder = entry_uid("wire", "w-old")
    try:
        lenovo = item("w-old", "Lenovo expands Tianjin AI hub", WIRE, "https://w/old", old)
        nvidia = item("w-new", "Nvidia posts record quarter", OTHER, "https://w/new", T0)
        await ingest(one, "wire", nvidia, lenovo)
        copy = item("p1", "Lenovo bets on Tianjin", WIRE, "https://p/1", old + HOUR)
        await ingest(one, "post", copy)  # one now holds a back-fill index of that time
        late = item("l1", "Tianjin to host Lenovo AI servers", WIRE, "https://l/1", old + HOUR)
        await ingest(other, "ledger", late)
        story = await other.story_of(entry_uid("ledger", "l1"))
        assert story is not None and story.id == founder
        again = item("l2", "Lenovo's Tianjin AI servers", WIRE, "https://l/2", old + 2 * HOUR)
        await ingest(one, "ledger", again)
        second = await one.story_of(entry_uid("ledger", "l2"))
        assert second is not None and second.id != founder
        best = second.members[0].scores[0]
        assert best.story_id == founder and best.excluded == "same source"
    finally:
        await other.close()
        await one.close()
