"""One entry per story in a feed (feeds.stories), whatever order the copies arrive in."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from feeds.model import SourceInfo
from feeds.render import present_entry
from feeds.stories import collapse_entry, pick_representative
from store.model import StoredEntry

T0 = datetime(2026, 11, 24, 6, 0, tzinfo=UTC)
SOURCES = ["wire", "post", "ledger", "gazette", "times"]


def copy(n: int) -> StoredEntry:
    """The story's copy from SOURCES[n], published n hours after the first."""
    when = T0 + timedelta(hours=n)
    return StoredEntry(
        uid=f"{n:032x}",
        source_id=SOURCES[n],
        entry_key=f"k{n}",
        link=f"https://{SOURCES[n]}.example/lenovo",
        title=f"Lenovo in Tianjin ({SOURCES[n]})",
        summary="Lenovo adds AI server lines in Tianjin.",
        content=None,
        authors=(),
        categories=(),
        enclosures=(),
        published=when,
        updated=None,
        sort_at=when,
        first_seen_at=when,
        changed_at=when,
    )


def shown_entries(
    members: list[StoredEntry], story_id: str, prefer: list[str]
) -> list[tuple[StoredEntry, str]]:
    group = (story_id, tuple(members))
    found = []
    for entry in members:
        shown = collapse_entry(entry, group, lambda m: True, prefer)
        if shown is not None:
            found.append((entry, shown.id))
    return found


@settings(max_examples=60, deadline=None)
@given(
    order=st.permutations(range(len(SOURCES))),
    prefer=st.lists(st.sampled_from(SOURCES), unique=True, max_size=3),
)
def test_one_entry_per_story_under_one_id_in_any_arrival_order(
    order: list[int], prefer: list[str]
) -> None:
    story_id = f"{order[0]:032x}"  # the first copy to arrive founds the story
    arrived: list[StoredEntry] = []
    for n in order:
        arrived.append(copy(n))
        shown = shown_entries(arrived, story_id, prefer)
        assert len(shown) == 1  # never twice
        entry, shown_id = shown[0]
        assert shown_id == story_id  # the same id as copies join
        assert entry == pick_representative(arrived, prefer)
    final = shown_entries(arrived, story_id, prefer)[0][0]
    expected = next((s for s in prefer), SOURCES[0])  # every source has a copy by now
    assert final.source_id == expected


def test_the_shown_entry_credits_the_others_and_is_updated_when_one_joins() -> None:
    members = [copy(0), copy(1), copy(2)]
    shown = collapse_entry(members[0], ("story", tuple(members)), lambda m: True, [])
    assert shown is not None and [m.uid for m in shown.others] == [copy(1).uid, copy(2).uid]
    sources = {"post": SourceInfo("post", "The Post", "https://post.example/feed", None)}
    entry, credits = present_entry(members[0], shown, sources)
    assert entry.uid == "story" and entry.updated == copy(2).first_seen_at
    assert entry.summary is not None and entry.summary.endswith(
        'Also reported by: <a href="https://post.example/lenovo">The Post</a>, '
        '<a href="https://ledger.example/lenovo">ledger</a></p>'
    )
    assert [c.title for c in credits] == ["The Post", "ledger"]


def test_a_member_the_feed_would_not_carry_cannot_represent_it() -> None:
    members = (copy(0), copy(1))
    group = ("story", members)
    not_wire = lambda m: m.source_id != "wire"  # noqa: E731
    assert collapse_entry(members[1], group, not_wire, []) is not None
    assert collapse_entry(members[0], group, not_wire, ["post"]) is None
