"""`feedmill explain ENTRY`: the entry's story, what put each member there, and the verdict
of every curated feed on it (the feeds' rules, then their `dedupe`)."""

from __future__ import annotations

from feedmill.errors import UnknownEntryError
from feeds import Publisher
from store import StoredEntry, StoredStory, StoryMember
from store.stories import StoryScore


async def explain_entry(publisher: Publisher, target: str) -> list[str]:
    """The lines ``feedmill explain`` prints for the entry with uid or link ``target``."""
    entry = await publisher.store.find_entry(target)
    if entry is None:
        raise UnknownEntryError(f"no stored entry has the uid or link {target!r}")
    lines = [f"entry {entry.uid}  {entry.source_id}  {entry.title or '(untitled)'}"]
    if entry.link:
        lines.append(f"  link {entry.link}")
    story = await publisher.store.story_of(entry.uid)
    lines += describe_story(entry, story)
    lines.append("curated feeds:")
    for feed_id in publisher.definitions:
        verdict = await publisher.verdict(feed_id, entry)
        lines.append(f"  {feed_id}: {'in' if verdict.included else 'out'}: {verdict.reason}")
    return lines


def describe_story(entry: StoredEntry, story: StoredStory | None) -> list[str]:
    if story is None:
        return ["story: none (stored before story clustering, or clustering is off)"]
    lines = [
        f"story {story.id}: {story.member_count} entries from {story.source_count} sources, "
        f"representative {story.representative_uid}"
    ]
    for member in story.members:
        mark = "*" if member.entry_uid == entry.uid else " "
        when = member.published.strftime("%Y-%m-%d %H:%M")
        lines.append(
            f" {mark} {member.entry_uid}  {member.source_id}  {when}  {_how(member)}"
            f"  {member.title or ''}".rstrip()
        )
    mine = next((m for m in story.members if m.entry_uid == entry.uid), None)
    if mine is not None and mine.scores:
        lines.append("candidates this entry was compared with, best first:")
        lines += [f"  {describe_score(s)}" for s in mine.scores]
    return lines


def _how(member: StoryMember) -> str:
    if member.kind is None:
        return "founded the story"
    best = next((s for s in member.scores if s.matches), None)
    if member.kind == "link" or best is None:
        return f"joined: {member.kind}"
    return f"joined: {member.kind} {best.score:.3f} >= {best.threshold:.2f}"


def describe_score(score: StoryScore) -> str:
    comparison = ">=" if score.score >= score.threshold else "<"
    text = (
        f"story {score.story_id}: {score.kind} {score.score:.3f} {comparison} {score.threshold:.2f}"
    )
    if score.member_uid:
        text += f" (closest member {score.member_uid})"
    if score.excluded:
        text += f", not eligible: {score.excluded}"
    return text
