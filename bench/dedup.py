"""Story clustering: quality per mode (B-cubed) and cost, each against a baseline in the same run.

    python bench/dedup.py            # quality on the syndicated set and news-dedup
    python bench/dedup.py --cost     # also: ingest 100,000 entries with and without clustering
    python bench/dedup.py --split    # news-dedup: tune half A, held-out half B, and the ceiling

Event mode with an embedder (all-minilm-l6-v2) is evaluated when the ``embeddings`` extra is
installed, with its cost per entry: one model call per entry, and in batches of 32 (ingest
embeds a document's new entries in one call).

Quality: tests/data/syndicated/items.json (our own copies, with hard negatives) and
../shared/corpus/news-dedup/ (6,366 headlines, 87 stories; each publisher is a source).
Baseline: plain IDF-weighted Jaccard of headline words, joining the story of the most similar
earlier entry of another source (an exhaustive scan), at thresholds around 0.96 precision.
Cost: a fresh SQLite store ingests 100,000 synthetic entries through Store.ingest, with
and without clustering each document's entries (featurize_entries, then
store.stories.assign_story on each; in-memory index); the ratio is the issue's target
(<= 1.3), and the time per entry is shown at 10k and 100k stored.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import random
import sys
import tempfile
import time
import zlib
from collections import Counter
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from datasketch import MinHash  # noqa: E402

import store.stories.cluster  # noqa: E402
from sources.model import ParsedEntry, ParsedFeed, Validators  # noqa: E402
from store import SourceDefinition, Store, ensure_schema  # noqa: E402
from store.stories import (  # noqa: E402
    MemoryStoryIndex,
    StoryEntry,
    StoryMode,
    StorySettings,
    assign_story,
    featurize_entries,
    score_bcubed,
)
from store.stories.embed import embedder_installed  # noqa: E402
from store.stories.evaluate import read_news_dedup  # noqa: E402
from store.stories.text import content_terms, shingles, tokenize  # noqa: E402

EMBEDDER = "all-minilm-l6-v2"
LOAD_EMBEDDER = store.stories.cluster.load_embedder
VECTORS: dict[str, bytes] = {}

COST_ENTRIES = 100_000
COST_SOURCES = 100
COST_BATCH = 50  # entries per upstream document

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
    return read_news_dedup(corpus / "news-dedup" / "uci_news_aggregator_first6366.csv")


def cluster(entries: Sequence[StoryEntry], settings: StorySettings) -> tuple[list[str], float]:
    index = MemoryStoryIndex()
    started = time.perf_counter()
    features = featurize_entries(entries, settings)
    for e, found in zip(entries, features, strict=True):
        assign_story(e, index, settings, features=found)
    seconds = time.perf_counter() - started
    return [index.story_of[e.uid] for e in entries], seconds  # merges relabel earlier entries


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


def ceiling_recall(entries: Sequence[StoryEntry], gold: Sequence[str]) -> float:
    """The best B-cubed recall at precision 1 when a story takes one entry per source: each
    gold story split into layers (every source's 1st entry, every source's 2nd, ...)."""
    counts: dict[str, Counter[str]] = {}
    for e, g in zip(entries, gold, strict=True):
        counts.setdefault(g, Counter())[e.source_id] += 1
    total = 0.0
    for per_source in counts.values():
        size, layer = sum(per_source.values()), 1
        while width := sum(1 for c in per_source.values() if c >= layer):
            total += width * width / size
            layer += 1
    return total / len(entries)


def split_halves(
    entries: Sequence[StoryEntry], gold: Sequence[str]
) -> dict[str, tuple[list[StoryEntry], list[str]]]:
    """Two halves by gold story (CRC-32 parity): A to tune thresholds on, B held out."""
    halves: dict[str, tuple[list[StoryEntry], list[str]]] = {"A": ([], []), "B": ([], [])}
    for e, g in zip(entries, gold, strict=True):
        half = halves["A" if zlib.crc32(g.encode()) % 2 == 0 else "B"]
        half[0].append(e)
        half[1].append(g)
    return halves


def evaluate_split(entries: list[StoryEntry], gold: list[str]) -> None:
    """The thresholds were chosen on half A; half B shows whether they carry over."""
    for half, (part, part_gold) in split_halves(entries, gold).items():
        print(
            f"  half {half}: {len(part)} entries, ceiling R {ceiling_recall(part, part_gold):.3f}"
        )
        for name, settings in event_variants():
            labels, seconds = cluster(part, settings)
            report(f"  {half} {name}", labels, part_gold, seconds)
        labels = baseline(part, 0.35)
        report(f"  {half} baseline t=0.35", labels, part_gold, None)


def event_variants() -> list[tuple[str, StorySettings]]:
    """Event mode's defaults and the same without merging, lexical and (if installed) with
    the embedder; the embedder's merge threshold at the value chosen on half A (0.5 there,
    0.65 the default: see docs/dedup.md)."""
    lexical = StorySettings(mode=StoryMode.EVENT)
    variants = [
        ("event (defaults)", lexical),
        ("event no merging", replace(lexical, merge_threshold=0)),
    ]
    if embedder_installed(EMBEDDER):
        embedded = replace(lexical, embedder=EMBEDDER)
        variants += [
            (f"event+{EMBEDDER[:6]} (defaults)", embedded),
            (f"event+{EMBEDDER[:6]} no merging", replace(embedded, embedding_merge_threshold=0)),
            (
                f"event+{EMBEDDER[:6]} t=.6 m=.5",
                replace(embedded, embedding_threshold=0.6, embedding_merge_threshold=0.5),
            ),
        ]
    return variants


def prepare_embeddings(entries: Sequence[StoryEntry]) -> None:
    """Embeds every entry once, in batches, and serves featurize_entries from that cache, so
    each mode and half does not embed again; prints the model's cost per entry both ways."""
    embed = LOAD_EMBEDDER(EMBEDDER)
    texts = [store.stories.cluster.embed_text(e) for e in entries]
    started = time.perf_counter()
    for text in texts[:100]:
        embed([text])
    single = (time.perf_counter() - started) / min(100, len(texts))
    started = time.perf_counter()
    VECTORS.update(zip(texts, embed(texts), strict=True))
    batched = (time.perf_counter() - started) / len(texts)
    print(
        f"  embedder {EMBEDDER}: {single * 1e3:.1f} ms/entry one at a time, "
        f"{batched * 1e3:.1f} ms/entry in batches of 32 (not in the rates below)"
    )
    store.stories.cluster.load_embedder = lambda name: lambda xs: [VECTORS[x] for x in xs]


def evaluate(
    label: str, entries: list[StoryEntry], gold: list[str], sweep: bool, split: bool = False
) -> None:
    print(f"{label}: {len(entries)} entries, {len(set(gold))} gold stories")
    print(f"  ceiling (one entry per source per story): R {ceiling_recall(entries, gold):.3f}")
    for mode in (StoryMode.LINK, StoryMode.NEAR_COPY):
        labels, seconds = cluster(entries, StorySettings(mode=mode))
        report(f"{mode} (defaults)", labels, gold, seconds)
    if embedder_installed(EMBEDDER):
        prepare_embeddings(entries)
    for name, settings in event_variants():
        labels, seconds = cluster(entries, settings)
        report(name, labels, gold, seconds)
    if split:
        evaluate_split(entries, gold)
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


def synthetic_entries(headlines: Sequence[str], count: int) -> list[tuple[str, ParsedEntry]]:
    """``count`` (source, entry) pairs over 100 days: headline-like titles, 40-word summaries
    from a shared vocabulary, and every fifth entry a light copy of a recent one elsewhere."""
    rng = random.Random(5)
    vocabulary = sorted({t for h in headlines for t in tokenize(h)})
    start = datetime(2026, 1, 1, tzinfo=UTC)
    spacing = timedelta(days=100) / count
    made: list[tuple[str, ParsedEntry]] = []
    for i in range(count):
        source = f"s{rng.randrange(COST_SOURCES):03d}"
        if i % 5 == 4 and i > 100:
            _, original = made[i - rng.randrange(1, 100)]
            title, summary = f"{original.title} (update)", original.summary
        else:
            title = f"{headlines[i % len(headlines)]} {i}"
            summary = " ".join(rng.choices(vocabulary, k=40))
        published = start + spacing * i
        made.append(
            (
                source,
                ParsedEntry(
                    id=f"e{i}",
                    link=f"https://{source}.example/e{i}",
                    title=title,
                    summary=summary,
                    published=published,
                ),
            )
        )
    return made


async def ingest_all(
    entries: Sequence[tuple[str, ParsedEntry]], settings: StorySettings | None
) -> tuple[float, float, list[float]]:
    """(total seconds, of which clustering, clustering seconds per entry for each 10k block)."""
    with tempfile.TemporaryDirectory() as tmp:
        store = Store.open(f"sqlite:///{tmp}/bench.db")
        await ensure_schema(store)
        now = datetime(2026, 4, 11, tzinfo=UTC)
        await store.sync_sources(
            [
                SourceDefinition(
                    f"s{i:03d}", f"https://s{i:03d}.example/feed", None, timedelta(hours=1)
                )
                for i in range(COST_SOURCES)
            ],
            now,
        )
        index = MemoryStoryIndex()
        clustering, blocks, block = 0.0, [], 0.0
        started = time.perf_counter()
        for offset in range(0, len(entries), COST_BATCH):
            batch = entries[offset : offset + COST_BATCH]
            source = batch[0][0]
            feed = ParsedFeed(url="u", version="atom10", entries=tuple(e for _, e in batch))
            await store.ingest(source, feed, Validators(), now, now)
            if settings is not None:
                t = time.perf_counter()
                story_entries = []
                for source_id, e in batch:
                    assert e.id and e.published
                    story_entries.append(
                        StoryEntry(
                            e.id, source_id, e.published, e.title or "", e.summary or "", e.link
                        )
                    )
                features = featurize_entries(story_entries, settings)  # as the store does
                for story_entry, found in zip(story_entries, features, strict=True):
                    assign_story(story_entry, index, settings, features=found)
                spent = time.perf_counter() - t
                clustering += spent
                block += spent
                if (offset + COST_BATCH) % 10_000 == 0:
                    blocks.append(block / 10_000)
                    block = 0.0
        total = time.perf_counter() - started
        await store.close()
        return total, clustering, blocks


async def measure_cost(headlines: Sequence[str]) -> None:
    entries = synthetic_entries(headlines, COST_ENTRIES)
    print(f"cost: {len(entries)} entries in documents of {COST_BATCH}, SQLite")
    plain, _, _ = await ingest_all(entries, None)
    print(f"  ingest without clustering     {plain:7.1f} s  {len(entries) / plain:7.0f} entries/s")
    for mode in (StoryMode.NEAR_COPY, StoryMode.EVENT):
        total, clustering, blocks = await ingest_all(entries, StorySettings(mode=mode))
        print(
            f"  ingest + clustering {mode:<9} {total:7.1f} s  ratio {total / plain:.2f}  "
            f"(clustering {clustering:.1f} s)"
        )
        per = "  ".join(f"{(b + 1) * 10}k: {us * 1e6:.0f}" for b, us in enumerate(blocks))
        print(f"    clustering µs/entry by stored count: {per}", flush=True)


def measure_featurize(headlines: Sequence[str]) -> None:
    """featurize_entries (documents of COST_BATCH) against the same signatures built through
    datasketch MinHash objects."""
    rng = random.Random(7)
    vocabulary = sorted({t for h in headlines for t in tokenize(h)})
    entries = [
        StoryEntry(
            f"e{i}",
            "s",
            datetime(2026, 1, 1, tzinfo=UTC),
            h,
            " ".join(rng.choices(vocabulary, k=40)),
        )
        for i, h in enumerate(headlines * 20)
    ]
    settings = StorySettings()

    def reference(entry: StoryEntry) -> bytes:
        sketch = MinHash(num_perm=settings.num_perm, seed=1, hashfunc=zlib.crc32, scheme="affine32")
        grams = shingles(tokenize(f"{entry.title}\n{entry.text}"), settings.shingle_size)
        sketch.update_batch([g.encode("utf-8", "surrogatepass") for g in grams])
        return bytes(sketch.hashvalues.astype("<u4").tobytes())

    started = time.perf_counter()
    expected = [reference(e) for e in entries]
    slow = (time.perf_counter() - started) / len(entries)
    started = time.perf_counter()
    got = [
        f.signature
        for start in range(0, len(entries), COST_BATCH)
        for f in featurize_entries(entries[start : start + COST_BATCH], settings)
    ]
    fast = (time.perf_counter() - started) / len(entries)
    assert got == expected, "vectorised signatures differ from datasketch's"
    print(
        f"featurize (near-copy, documents of {COST_BATCH}): {fast * 1e6:.0f} µs/entry with band "
        f"keys; datasketch MinHash object, signature only: {slow * 1e6:.0f} µs/entry; "
        f"ratio {fast / slow:.2f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cost", action="store_true", help="also run the 100k ingest cost")
    parser.add_argument("--sweep", action="store_true", help="also sweep the thresholds")
    parser.add_argument("--split", action="store_true", help="news-dedup halves A/B")
    parser.add_argument("--cost-only", action="store_true", help="only the ingest cost")
    args = parser.parse_args()
    corpus = Path(os.environ.get("FEEDMILL_CORPUS") or ROOT.parent / "shared" / "corpus")
    if args.cost_only:
        headlines = [e.title for e in load_news_dedup(corpus)[0]] if corpus.is_dir() else []
        asyncio.run(measure_cost(headlines or [e.title for e in load_syndicated()[0]]))
        return
    measure_featurize([e.title for e in load_syndicated()[0]])
    evaluate("syndicated", *load_syndicated(), sweep=args.sweep)
    corpus = Path(os.environ.get("FEEDMILL_CORPUS") or ROOT.parent / "shared" / "corpus")
    if (corpus / "news-dedup").is_dir():
        evaluate("news-dedup", *load_news_dedup(corpus), sweep=args.sweep, split=args.split)
    else:
        print(f"news-dedup: skipped, no corpus at {corpus}")
    if args.cost:
        headlines = [e.title for e in load_news_dedup(corpus)[0]] if corpus.is_dir() else []
        asyncio.run(measure_cost(headlines or [e.title for e in load_syndicated()[0]]))


if __name__ == "__main__":
    main()
