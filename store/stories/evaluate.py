"""B-cubed precision and recall of a clustering against gold labels. Pure."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Hashable, Sequence
from dataclasses import dataclass


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
