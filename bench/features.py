"""Story features: featurize_entry one entry at a time vs featurize_entries per document.

    python bench/features.py                  # 10,000 synthetic entries, 7 rounds
    python bench/features.py --entries 20000 --rounds 9
    python bench/features.py --corpus         # also the real documents of ../shared/corpus

The synthetic entries are bench/story_ingest.py's (8-word titles, 40-word ASCII summaries),
as Store.ingest hands them to clustering (store.story_index.story_entry), in documents of 50
entries of one source. With --corpus, also every parsed document of ../shared/corpus/real
(HTML summaries, entities, non-ASCII text; documents of 1 to a few hundred entries). Each
round times both ways over all the documents, in alternating order; printed per mode (near-copy,
the default, and event): the median µs/entry of each way and the median of the per-round
ratios (documents / one at a time). The two ways are checked to give the same features first.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.story_ingest import BATCH, synthetic  # noqa: E402
from sources import ParseError, parse_document  # noqa: E402
from store.stories import (  # noqa: E402
    StoryEntry,
    StoryMode,
    StorySettings,
    featurize_entries,
    featurize_entry,
)
from store.story_index import story_entry  # noqa: E402

Documents = Sequence[Sequence[StoryEntry]]
SEEN = datetime(2026, 1, 1, tzinfo=UTC)  # an undated corpus entry's date


def synthetic_documents(count: int) -> list[list[StoryEntry]]:
    entries = [
        story_entry(e.id or "", source, e.published, e.title, e.summary, e.content, e.link)
        for source, e in synthetic(count)
        if e.published is not None
    ]
    return [entries[i : i + BATCH] for i in range(0, len(entries), BATCH)]


def corpus_documents(corpus: Path) -> list[list[StoryEntry]]:
    documents = []
    for path in sorted((corpus / "real").iterdir()):
        try:
            feed = parse_document(path.read_bytes(), f"https://corpus.example/{path.name}")
        except ParseError:
            continue
        entries = [
            story_entry(
                f"{path.name}#{i}", path.name, e.published or SEEN, e.title, e.summary,
                e.content, e.link,
            )
            for i, e in enumerate(feed.entries)
        ]  # fmt: skip
        if entries:
            documents.append(entries)
    return documents


def one_at_a_time(documents: Documents, settings: StorySettings) -> None:
    for document in documents:
        for entry in document:
            featurize_entry(entry, settings)


def per_document(documents: Documents, settings: StorySettings) -> None:
    for document in documents:
        featurize_entries(document, settings)


def measure(label: str, documents: Documents, rounds: int) -> None:
    count = sum(len(d) for d in documents)
    print(f"{label}: {count} entries in {len(documents)} documents")
    for mode in (StoryMode.NEAR_COPY, StoryMode.EVENT):
        settings = StorySettings(mode=mode)
        for document in documents:
            expected = [featurize_entry(e, settings) for e in document]
            assert featurize_entries(document, settings) == expected, "the two ways differ"
        ways: dict[str, Callable[[Documents, StorySettings], None]] = {
            "one at a time": one_at_a_time,
            "per document": per_document,
        }
        times: dict[str, list[float]] = {name: [] for name in ways}
        for round_ in range(rounds):
            order = list(ways) if round_ % 2 == 0 else list(reversed(ways))
            for name in order:
                started = time.perf_counter()
                ways[name](documents, settings)
                times[name].append((time.perf_counter() - started) / count)
        single, batch = times["one at a time"], times["per document"]
        ratio = statistics.median(b / s for b, s in zip(batch, single, strict=True))
        print(
            f"  {mode:<9}  one at a time {statistics.median(single) * 1e6:6.1f} µs/entry"
            f"   per document {statistics.median(batch) * 1e6:6.1f} µs/entry"
            f"   ratio {ratio:.2f}",
            flush=True,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--corpus", action="store_true", help="also the real corpus documents")
    args = parser.parse_args()
    measure(f"synthetic, documents of {BATCH}", synthetic_documents(args.entries), args.rounds)
    if args.corpus:
        corpus = Path(os.environ.get("FEEDMILL_CORPUS") or ROOT.parent / "shared" / "corpus")
        if (corpus / "real").is_dir():
            measure("real corpus documents", corpus_documents(corpus), args.rounds)
        else:
            print(f"real corpus documents: skipped, no corpus at {corpus}")


if __name__ == "__main__":
    main()
