"""B-cubed precision and recall of a clustering against gold labels, and the labelled sets
it is measured on."""

from __future__ import annotations

import csv
import json
from collections import defaultdict
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from store.canonical import normalize_url
from store.stories.index import StoryIndex, featurize_entries
from store.stories.model import StoryEntry
from store.stories.settings import StorySettings


@dataclass(frozen=True)
class BCubed:
    precision: float
    recall: float

    @property
    def f1(self) -> float:
        total = self.precision + self.recall
        return 2 * self.precision * self.recall / total if total else 0.0


def score_bcubed(predicted: Sequence[Hashable], gold: Sequence[Hashable]) -> BCubed:
    """Mean over items of |cluster ∩ gold class| / |cluster| (precision) and / |class| (recall)."""
    if len(predicted) != len(gold):
        raise ValueError("predicted and gold labels differ in length")
    if not gold:
        return BCubed(1.0, 1.0)
    pairs: dict[tuple[Hashable, Hashable], int] = defaultdict(int)
    clusters: dict[Hashable, int] = defaultdict(int)
    classes: dict[Hashable, int] = defaultdict(int)
    for p, g in zip(predicted, gold, strict=True):
        pairs[p, g] += 1
        clusters[p] += 1
        classes[g] += 1
    precision = sum(n * n / clusters[p] for (p, _), n in pairs.items()) / len(gold)
    recall = sum(n * n / classes[g] for (_, g), n in pairs.items()) / len(gold)
    return BCubed(precision, recall)


def cluster_labels(entries: Sequence[StoryEntry], settings: StorySettings) -> list[str]:
    """Each entry's story after clustering them as a pulling process would, in the order
    given, each at its own time (the window moves on); a merge relabels every entry of the
    merged-away story, as the store does."""
    index = StoryIndex(settings)
    label: dict[str, str] = {}
    members: dict[str, list[str]] = defaultdict(list)
    for features in featurize_entries(entries, settings):
        index.evict()
        decision = index.assign(features)
        for gone in decision.merged:
            for uid in members.pop(gone, []):
                label[uid] = decision.story_id
                members[decision.story_id].append(uid)
        label[features.uid] = decision.story_id
        members[decision.story_id].append(features.uid)
    return [label[entry.uid] for entry in entries]


def read_syndicated(path: Path) -> tuple[list[StoryEntry], list[str]]:
    """Our syndicated set (tests/data/syndicated/items.json): entries in time order, and the
    gold label of each."""
    items = json.loads(path.read_text(encoding="utf-8"))["items"]
    items.sort(key=lambda i: (i["published"], i["id"]))
    entries = [
        StoryEntry(
            uid=i["id"],
            source_id=i["source"],
            published=datetime.fromisoformat(i["published"]),
            title=i["title"],
            text=i["summary"],
            link=i["link"],
        )
        for i in items
    ]
    return entries, [i["story"] for i in items]


def read_story_rewrites(path: Path) -> tuple[list[StoryEntry], list[str]]:
    """The story-rewrites set (corpus/story-rewrites): entries in time order with canonical
    links, and the gold label of each (``sNN`` a story, ``nNN`` a close negative)."""
    rows = json.loads(path.read_text(encoding="utf-8"))["entries"]
    rows.sort(key=lambda r: r["published"])
    entries = [
        StoryEntry(
            uid=f"r{i:03d}",
            source_id=r["source"],
            published=datetime.fromisoformat(r["published"].replace("Z", "+00:00")),
            title=r["title"],
            text=r["summary"],
            link=normalize_url(r["link"]),
        )
        for i, r in enumerate(rows)
    ]
    return entries, [r["story"] for r in rows]


def read_news_dedup(path: Path) -> tuple[list[StoryEntry], list[str]]:
    """The UCI news-aggregator headlines (corpus/news-dedup), in time order: entries with
    each publisher as a source, and the gold story label of each."""
    with path.open(encoding="utf-8") as f:
        rows = sorted(csv.DictReader(f), key=lambda r: (int(r["TIMESTAMP"]), int(r["ID"])))
    entries = [
        StoryEntry(
            uid=r["ID"],
            source_id=r["PUBLISHER"],
            published=datetime.fromtimestamp(int(r["TIMESTAMP"]) / 1000, UTC),
            title=r["TITLE"],
            link=r["URL"],
        )
        for r in rows
    ]
    return entries, [r["STORY"] for r in rows]
