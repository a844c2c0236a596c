"""Story clustering: quality per mode (B-cubed) and cost, each against a baseline in the same run.

    python bench/dedup.py            # quality on the syndicated set and news-dedup
    python bench/dedup.py --cost     # also: ingest 100,000 entries with and without clustering

Quality: tests/data/syndicated/items.json (our own copies, with hard negatives) and
../shared/corpus/news-dedup/ (6,366 headlines, 87 stories; each publisher is a source).
Baseline: plain IDF-weighted Jaccard of headline words, joining the story of the most similar
earlier entry of another source (an exhaustive scan), at thresholds around 0.96 precision.
Cost: a fresh SQLite store ingests 100,000 synthetic entries through Store.ingest, with
and without store.stories.assign_story on each entry (in-memory index); the ratio is the
issue's target (<= 1.3), and the time per entry is shown at 10k and 100k stored.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import sys
import time
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from store.stories import (  # noqa: E402
    MemoryStoryIndex,
    StoryEntry,
    StoryMode,
    StorySettings,
    assign_story,
    score_bcubed,
)
from store.stories.text import content_terms, tokenize  # noqa: E402

SYNDICATED = ROOT / "tests" / "data" / "syndicated" / "items.json"


def load_syndicated() -> tuple[list[StoryEntry], list[str]]:
    items = json.loads(SYNDICATED.read_text())["items"]
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


def load_news_dedup(corpus: Path) -> tuple[list[StoryEntry], list[str]]:
    with (corpus / "news-dedup" / "uci_news_aggregator_first6366.csv").open() as f:
        rows = list(csv.DictReader(f))
    rows.sort(key=lambda r: (int(r["TIMESTAMP"]), int(r["ID"])))
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


def cluster(entries: Sequence[StoryEntry], settings: StorySettings) -> tuple[list[str], float]:
    index = MemoryStoryIndex()
    started = time.perf_counter()
    labels = [assign_story(e, index, settings).story_id for e in entries]
    return labels, time.perf_counter() - started


def baseline(entries: Sequence[StoryEntry], threshold: float) -> list[str]:
    """IDF-weighted Jaccard of headline terms against every earlier entry (single best link)."""
    terms = [content_terms(tokenize(e.title)) for e in entries]
    df = Counter(t for ts in terms for t in ts)
    idf = {t: math.log(len(entries) / c) for t, c in df.items()}
    labels: list[str] = []
    for i, ts in enumerate(terms):
        best, best_score = None, threshold
        for j in range(i):
            if entries[j].source_id == entries[i].source_id:
                continue
            union = sum(idf[t] for t in ts | terms[j])
            score = sum(idf[t] for t in ts & terms[j]) / union if union else 0.0
            if score >= best_score:
                best, best_score = j, score
        labels.append(labels[best] if best is not None else entries[i].uid)
    return labels


def report(name: str, labels: Sequence[str], gold: Sequence[str], seconds: float | None) -> None:
    s = score_bcubed(labels, gold)
    rate = f"{len(gold) / seconds:9.0f}/s" if seconds else "        -  "
    print(
        f"  {name:<28} P {s.precision:.3f}  R {s.recall:.3f}  F1 {s.f1:.3f}  "
        f"stories {len(set(labels)):5d}  {rate}",
        flush=True,
    )


def evaluate(label: str, entries: list[StoryEntry], gold: list[str], sweep: bool) -> None:
    print(f"{label}: {len(entries)} entries, {len(set(gold))} gold stories")
    for mode in StoryMode:
        labels, seconds = cluster(entries, StorySettings(mode=mode))
        report(f"{mode} (defaults)", labels, gold, seconds)
    if sweep:
        for t in (0.3, 0.4, 0.5):
            labels, seconds = cluster(entries, StorySettings(near_copy_threshold=t))
            report(f"near-copy t={t}", labels, gold, seconds)
        for t in (0.3, 0.4, 0.45, 0.5):
            s = StorySettings(mode=StoryMode.EVENT, event_threshold=t)
            labels, seconds = cluster(entries, s)
            report(f"event t={t}", labels, gold, seconds)
    for t in (0.3, 0.35, 0.4):
        started = time.perf_counter()
        labels = baseline(entries, t)
        report(f"baseline idf-jaccard t={t}", labels, gold, time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cost", action="store_true", help="also run the 100k ingest cost")
    parser.add_argument("--sweep", action="store_true", help="also sweep the thresholds")
    args = parser.parse_args()
    evaluate("syndicated", *load_syndicated(), sweep=args.sweep)
    corpus = Path(os.environ.get("FEEDMILL_CORPUS") or ROOT.parent / "shared" / "corpus")
    if (corpus / "news-dedup").is_dir():
        evaluate("news-dedup", *load_news_dedup(corpus), sweep=args.sweep)
    else:
        print(f"news-dedup: skipped, no corpus at {corpus}")
    if args.cost:
        from bench_dedup_cost import measure_cost  # type: ignore[import-not-found]

        measure_cost()


if __name__ == "__main__":
    main()
