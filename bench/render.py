"""Benchmark: what making rendering safe costs (feeds/clean.py, selection off the event loop).

1. Rendering 50 entries (about 3 KB of HTML each, a title, two authors, three categories,
   an enclosure) as Atom, RSS and JSON Feed: as shipped (every stored value cleaned) vs the
   same renderers with the cleaning replaced by the identity (the baseline).
2. Selecting 50 of 200 entries with a keyword rule and a regular expression: in a thread
   (asyncio.to_thread, as the publisher does) vs inline on the event loop (the baseline).

Rounds interleave the two sides, so both see the same machine load; the best round of each
is printed with the ratio.

    python bench/render.py [--rounds N]
"""

from __future__ import annotations

import argparse
import asyncio
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import feeds.clean  # noqa: E402
import feeds.formats  # noqa: E402
import feeds.render  # noqa: E402
from feeds.model import Rule  # noqa: E402
from feeds.rules import Budget  # noqa: E402
from feeds.select import Selector  # noqa: E402
from sources.model import Enclosure  # noqa: E402
from tests.fakes import SITE, feed_definition, source_info, stored_entry  # noqa: E402

PARAGRAPH = (
    "<p>Lenovo expands its Tianjin AI server hub, with mass production of <b>liquid-cooled</b> "
    'racks by 2027, <a href="https://example.org/x">the company said</a> on Tuesday.</p>'
)


def entries(count: int) -> list[Any]:
    return [
        stored_entry(
            f"e{i}",
            title=f"Lenovo expands its Tianjin AI server hub, part {i} – “quoted”",
            summary=PARAGRAPH,
            content=PARAGRAPH * 14,
            authors=("Jane Doe", "John Roe"),
            categories=("AI", "Servers", "China"),
            enclosures=(Enclosure("https://example.org/a.mp3", "audio/mpeg", 1234),),
        )
        for i in range(count)
    ]


def render_all(items: list[Any]) -> None:
    definition = feed_definition()
    sources = {"outlet-a": source_info("outlet-a")}
    for render in (
        feeds.render.render_atom,
        feeds.formats.render_rss,
        feeds.formats.render_json_feed,
    ):
        render(definition, items, sources, SITE)


def best(work: Callable[[], Any], repeat: int = 5) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        work()
        times.append(time.perf_counter() - started)
    return min(times)


def bench_cleaning(rounds: int) -> None:
    items = entries(50)
    cleaned, bare = [], []
    real = (feeds.render.clean_entry, feeds.render.clean_context, feeds.formats.clean_context)
    identity_context = lambda d, s, site: (d, dict(s), site)  # noqa: E731
    for _ in range(rounds):
        cleaned.append(best(lambda: render_all(items)))
        feeds.render.clean_entry = lambda e: e
        feeds.render.clean_context = identity_context
        feeds.formats.clean_context = identity_context
        try:
            bare.append(best(lambda: render_all(items)))
        finally:
            feeds.render.clean_entry, feeds.render.clean_context, feeds.formats.clean_context = real
    a, b = min(cleaned), min(bare)
    print(
        f"render 50 entries x 3 formats: cleaned {a * 1000:.2f} ms, "
        f"not cleaned {b * 1000:.2f} ms, ratio {a / b:.3f}"
    )


async def bench_selection(rounds: int) -> None:
    items = entries(200)
    definition = feed_definition(include=("tianjin", Rule("regex", r"\bpart \d+5\b")), limit=50)
    selector = Selector(definition)

    def select() -> Any:
        return selector.select(items, room=50, budget=Budget())

    threaded, inline = [], []
    for _ in range(rounds):
        for target, where in ((threaded, True), (inline, False)):
            times = []
            for _ in range(5):
                started = time.perf_counter()
                if where:
                    await asyncio.to_thread(select)
                else:
                    select()
                times.append(time.perf_counter() - started)
            target.append(min(times))
    a, b = min(threaded), min(inline)
    print(
        f"select 50 of 200 (keyword + regex): in a thread {a * 1000:.3f} ms, "
        f"inline {b * 1000:.3f} ms, ratio {a / b:.3f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    print(f"{platform.machine()}, Python {platform.python_version()}, rounds {args.rounds}")
    bench_cleaning(args.rounds)
    asyncio.run(bench_selection(args.rounds))


if __name__ == "__main__":
    main()
