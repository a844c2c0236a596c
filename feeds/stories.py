"""One entry per story (or per canonical link) in a curated feed with ``dedupe``. Pure.

group    = the entry's story (store.story_groups) or canonical link (store.link_groups):
           (group id, every stored member); an entry in neither is a group of its own
eligible = the members this feed would carry (its sources, its rules)
shown    = the eligible member that represents the group: the earliest, or the earliest
           of the first source in ``prefer``; every other member is credited
an entry that is not its group's representative is left out: the group appears once,
at its representative's place, under the group's id (which never changes)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from store.model import StoredEntry

Group = tuple[str, tuple[StoredEntry, ...]]  # (group id, members)


@dataclass(frozen=True, slots=True)
class ShownStory:
    """How a feed shows its representative of a group: under ``id``, crediting ``others``
    (oldest first); ``latest`` is when the newest of them was first seen."""

    id: str
    others: tuple[StoredEntry, ...]
    latest: datetime | None


def entry_time(entry: StoredEntry) -> datetime:
    return entry.published or entry.sort_at


def pick_representative(members: Sequence[StoredEntry], prefer: Sequence[str]) -> StoredEntry:
    """The earliest member, or the earliest from the first source in ``prefer``; depends only
    on the set of members, never on their order (store.stories.choose_representative's rule)."""
    if not members:
        raise ValueError("a group has at least one member")
    rank = {source: position for position, source in enumerate(prefer)}
    return min(members, key=lambda m: (rank.get(m.source_id, len(rank)), entry_time(m), m.uid))


def collapse_entry(
    entry: StoredEntry,
    group: Group | None,
    carries: Callable[[StoredEntry], bool],
    prefer: Sequence[str],
) -> ShownStory | None:
    """How ``entry`` (which the feed carries) is shown, or None when another member of its
    group represents the group in this feed. ``carries`` says whether the feed would carry a
    member on its own (sources and rules)."""
    if group is None:
        return ShownStory(entry.uid, (), None)
    group_id, members = group
    eligible = [m for m in members if m.uid == entry.uid or carries(m)]
    if pick_representative(eligible, prefer).uid != entry.uid:
        return None
    others = tuple(sorted((m for m in members if m.uid != entry.uid), key=_oldest_first))
    latest = max((m.first_seen_at for m in others), default=None)
    return ShownStory(group_id, others, latest)


def link_groups(members: Sequence[StoredEntry]) -> dict[str, Group]:
    """The groups of the entries sharing one canonical link, by member uid: entries of one
    source never share a group, so the n-th of each source (first seen first) are the n-th
    group; a group's id is the uid of its first-seen entry."""
    layers: dict[int, list[StoredEntry]] = {}
    seen: dict[str, int] = {}
    for member in sorted(members, key=_first_seen):
        layer = seen.get(member.source_id, 0)
        seen[member.source_id] = layer + 1
        layers.setdefault(layer, []).append(member)
    groups: dict[str, Group] = {}
    for members_of_layer in layers.values():
        group = (members_of_layer[0].uid, tuple(members_of_layer))
        groups.update((m.uid, group) for m in members_of_layer)
    return groups


def _first_seen(entry: StoredEntry) -> tuple[datetime, str]:
    return entry.first_seen_at, entry.uid


def _oldest_first(entry: StoredEntry) -> tuple[datetime, str]:
    return entry_time(entry), entry.uid
