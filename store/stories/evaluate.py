"""B-cubed precision and recall of a clustering against gold labels, and the labelled sets
it is measured on."""

from __future__ import annotations

import csv
from collections import defaultdict
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from store.stories.model import StoryEntry


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
