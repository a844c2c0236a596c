"""What /metrics costs a feed request: the same cached 50-entry Atom feed asked of the bare
feed app and of the app `feedmill run` serves (its /metrics route, and a counter and a
histogram per feed answer), in-process (no network), interleaved rounds.

    python bench/metrics.py [--requests 2000] [--rounds 41]

Prints the CPU time of this process per request (median over the rounds; CPU time rather
than wall time, as the machine may be shared) for both, and the ratio. Figures go to
BENCHMARKS.md by hand.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from serve import T0, fill, settings_for  # noqa: E402

from feedmill.metrics import Metrics, metrics_route  # noqa: E402
from feedmill.service import make_publisher  # noqa: E402
from feeds import create_app  # noqa: E402
from store import Store  # noqa: E402

SCOPE = {
    "type": "http",
    "method": "GET",
    "path": "/feeds/bench.atom",
    "headers": [(b"accept-encoding", b"gzip")],
}


async def receive() -> dict[str, Any]:
    return {"type": "http.request", "body": b"", "more_body": False}


async def send(message: dict[str, Any]) -> None:
    pass


async def per_request(app: Any, requests: int) -> float:
    started = time.process_time()
    for _ in range(requests):
        await app(SCOPE, receive, send)
    return (time.process_time() - started) / requests * 1e6


async def main(requests: int, rounds: int) -> None:
    with tempfile.TemporaryDirectory() as folder:
        db = Path(folder) / "bench.db"
        await fill(db)
        store = Store.open(f"sqlite:///{db}")
        publisher = make_publisher(settings_for(db, 8080), store, lambda: T0)
        bare = create_app(publisher, max_age=300)
        metrics = Metrics("bench", "run")
        route = metrics_route(metrics, store, lambda: T0)
        wrapped = create_app(publisher, max_age=300, routes=[route])
        wrapped.observe = metrics.feed_request
        await per_request(wrapped, 100)  # render once, warm up both
        times: dict[str, list[float]] = {"bare": [], "metrics": []}
        for _ in range(rounds):
            times["bare"].append(await per_request(bare, requests))
            times["metrics"].append(await per_request(wrapped, requests))
        await store.close()
    bare_us, metrics_us = (statistics.median(times[k]) for k in ("bare", "metrics"))
    print(f"cached feed, bare app:     {bare_us:7.1f} us/request (median of {rounds} rounds)")
    print(f"cached feed, with metrics: {metrics_us:7.1f} us/request")
    print(f"ratio: {metrics_us / bare_us:.2f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=2_000)
    parser.add_argument("--rounds", type=int, default=41)
    options = parser.parse_args()
    asyncio.run(main(options.requests, options.rounds))
