"""Reading stories back: for curated feeds (one entry per story), explain and the status page.

Every query goes by primary key or index: members by story id, memberships by entry uid,
entries by uid or canonical link, recent stories by their update time.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from store.model import StoredEntry, StoredStory, StoryMember, StorySummary
from store.stories import MatchKind, StoryScore
from store.tables import EntryRow, StoryMemberRow, StoryRow

_CHUNK = 500


async def story_groups(
    conn: AsyncConnection, uids: Sequence[str], to_entry: Any
) -> dict[str, tuple[str, tuple[StoredEntry, ...]]]:
    """For each of ``uids`` that belongs to a story: (story id, every stored member)."""
    story_of: dict[str, str] = {}
    for start in range(0, len(uids), _CHUNK):
        query = select(StoryMemberRow.entry_uid, StoryMemberRow.story_id).where(
            StoryMemberRow.entry_uid.in_(uids[start : start + _CHUNK])
        )
        story_of.update({uid: story for uid, story in await conn.execute(query)})
    story_ids = sorted(set(story_of.values()))
    members: dict[str, list[StoredEntry]] = defaultdict(list)
    for start in range(0, len(story_ids), _CHUNK):
        joined = (
            select(EntryRow, StoryMemberRow.story_id)
            .join(StoryMemberRow, StoryMemberRow.entry_uid == EntryRow.uid)
            .where(StoryMemberRow.story_id.in_(story_ids[start : start + _CHUNK]))
        )
        for row in (await conn.execute(joined)).all():
            members[row.story_id].append(to_entry(row))
    return {uid: (story, tuple(members[story])) for uid, story in story_of.items()}


async def link_groups(
    conn: AsyncConnection, links: Sequence[str], to_entry: Any
) -> dict[str, tuple[StoredEntry, ...]]:
    """Every stored entry with each of these canonical links."""
    found: dict[str, list[StoredEntry]] = defaultdict(list)
    wanted = sorted(set(links))
    for start in range(0, len(wanted), _CHUNK):
        query = select(EntryRow).where(EntryRow.canonical_link.in_(wanted[start : start + _CHUNK]))
        for row in (await conn.execute(query)).all():
            found[row.canonical_link].append(to_entry(row))
    return {link: tuple(entries) for link, entries in found.items()}


async def load_story(conn: AsyncConnection, entry_uid: str) -> StoredStory | None:
    """The story of the entry, with every member and the decision that put it there."""
    story_id = (
        await conn.execute(
            select(StoryMemberRow.story_id).where(StoryMemberRow.entry_uid == entry_uid)
        )
    ).scalar()
    if story_id is None:
        return None
    story = (await conn.execute(select(StoryRow).where(StoryRow.id == story_id))).one()
    query = (
        select(StoryMemberRow, EntryRow.title, EntryRow.link)
        .outerjoin(EntryRow, EntryRow.uid == StoryMemberRow.entry_uid)
        .where(StoryMemberRow.story_id == story_id)
        .order_by(StoryMemberRow.published, StoryMemberRow.entry_uid)
    )
    members = tuple(_member(row) for row in (await conn.execute(query)).all())
    return StoredStory(
        id=story.id,
        representative_uid=story.representative_uid,
        member_count=story.member_count,
        source_count=story.source_count,
        created_at=story.created_at,
        updated_at=story.updated_at,
        members=members,
    )


async def recent_stories(
    conn: AsyncConnection, limit: int, min_sources: int = 2
) -> list[StorySummary]:
    """The most recently changed stories carried by at least ``min_sources`` sources."""
    query = (
        select(StoryRow, EntryRow.title)
        .outerjoin(EntryRow, EntryRow.uid == StoryRow.representative_uid)
        .where(StoryRow.source_count >= min_sources, StoryRow.merged_into.is_(None))
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
    member = row
    scores = tuple(
        StoryScore(
            story_id=s["story"],
            kind=MatchKind(s["kind"]),
            score=s["score"],
            threshold=s["threshold"],
            member_uid=s.get("member"),
            excluded=s.get("excluded"),
        )
        for s in member.scores or ()
    )
    return StoryMember(
        entry_uid=member.entry_uid,
        source_id=member.source_id,
        published=member.published,
        kind=member.kind,
        scores=scores,
        joined_at=member.joined_at,
        title=row.title,
        link=row.link,
    )
