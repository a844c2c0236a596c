"""Serving a cached 50-entry Atom feed: feedmill (uvicorn + uvloop + httptools, configured
as `feedmill run` configures it, with its metrics) vs nginx serving the same bytes as a static
file, in the same run; and uvicorn's floor: a bare ASGI app that answers with the same bytes
and headers, held in memory (what the HTTP layer alone costs).

    python bench/serve.py [--seconds 10] [--connections 50] [--rounds 3]

Needs `nginx` and `wrk` (Debian: apt-get install -y nginx-light wrk; installed here when
missing and running as root). The servers run pinned to core 0, wrk to core 1 (taskset).
Reports requests/s, server CPU per request (from /proc) and p99 latency, for 200s and for
304s (If-None-Match), and the ratios to nginx. Figures go to BENCHMARKS.md by hand.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from feedmill.config import Settings  # noqa: E402
from feedmill.metrics import Metrics, metrics_route  # noqa: E402
from feedmill.service import make_publisher, uvicorn_config  # noqa: E402
from feeds import create_app  # noqa: E402
from sources import Author, ParsedEntry, ParsedFeed, Validators  # noqa: E402
from store import SourceDefinition, Store, ensure_schema  # noqa: E402

T0 = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
PARAGRAPH = "<p>" + "Lenovo expands its Tianjin AI server hub with liquid cooling. " * 12 + "</p>"


def settings_for(db: Path, port: int) -> Settings:
    return Settings.model_validate(
        {
            "database": f"sqlite:///{db}",
            "server": {"port": port, "base_url": "https://news.example.org/"},
            "sources": [{"id": "outlet", "url": "https://outlet.example/feed"}],
            "feeds": [{"id": "bench", "title": "Bench", "limit": 50}],
        }
    )


async def fill(db: Path) -> None:
    store = Store.open(f"sqlite:///{db}")
    await ensure_schema(store)
    await store.sync_sources(
        [SourceDefinition("outlet", "https://outlet.example/feed", "Outlet", timedelta(hours=1))],
        T0,
    )
    entries = tuple(
        ParsedEntry(
            id=f"e{i}",
            link=f"https://outlet.example/{i}",
            title=f"Story number {i} about GPUs",
            summary=PARAGRAPH[:300] + "</p>",
            content=PARAGRAPH,
            published=T0 - timedelta(minutes=i),
            authors=(Author("Mei Lin"),),
            categories=("Data Center",),
        )
        for i in range(60)
    )
    feed = ParsedFeed(
        url="https://outlet.example/feed", version="rss20", title="Outlet", entries=entries
    )
    await store.ingest("outlet", feed, Validators(), T0, T0 + timedelta(hours=1))
    await store.close()


def serve(db: Path, port: int, floor: bool) -> None:
    """The feedmill side: the same app and server settings as `feedmill run`, without the
    scheduler; or (``floor``) uvicorn with a bare app answering the same bytes."""
    import uvicorn

    settings = settings_for(db, port)
    store = Store.open(settings.database)
    publisher = make_publisher(settings, store, lambda: T0)
    metrics = Metrics("bench", "serve")
    app: Any = create_app(
        publisher, max_age=300, routes=[metrics_route(metrics, store, lambda: T0)]
    )
    app.observe = metrics.feed_request
    if floor:
        app = floor_app(asyncio.run(publisher.render("bench", "atom")))
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind(("127.0.0.1", port))
    sock.listen(2048)
    uvicorn.Server(uvicorn_config(app, False, 5)).run(sockets=[sock])


def floor_app(document: Any) -> Any:
    """An ASGI app that answers every request with ``document``'s bytes (or a 304 to its
    ETag), its headers built once: the least an ASGI app can do."""
    validators = [*document.validators, (b"cache-control", b"public, max-age=300")]
    validators.append((b"vary", b"accept-encoding"))
    ok = [*validators, (b"content-type", document.media_type.encode())]
    ok.append((b"content-length", str(len(document.body)).encode()))
    etag = document.etag.encode()

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if dict(scope["headers"]).get(b"if-none-match") == etag:
            await send({"type": "http.response.start", "status": 304, "headers": validators})
            await send({"type": "http.response.body", "body": b""})
            return
        await send({"type": "http.response.start", "status": 200, "headers": ok})
        await send({"type": "http.response.body", "body": document.body})

    return app


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_listening(port: int) -> None:
    for _ in range(200):
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.1):
                return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"nothing listens on {port}")


def cpu_seconds(pids: list[int]) -> float:
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / ticks


def tree(pid: int) -> list[int]:
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return [pid, *(p for c in children for p in tree(int(c)))]


def run_wrk(
    url: str, seconds: int, connections: int, headers: list[str], pids: list[int]
) -> dict[str, float]:
    args = ["taskset", "-c", "1", "wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency"]
    for header in headers:
        args += ["-H", header]
    before = cpu_seconds(pids)
    out = subprocess.run([*args, url], capture_output=True, text=True, check=True).stdout
    cpu = cpu_seconds(pids) - before
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    total = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    p99_text = re.search(r"99%\s+([\d.]+)(us|ms|s)", out)
    assert p99_text is not None
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}[p99_text.group(2)]
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {
        "rps": rps,
        "cpu_us": cpu / total * 1e6,
        "p99_ms": float(p99_text.group(1)) * scale,
        "errors": float(non2xx.group(1)) if non2xx else 0.0,
    }


def ensure_tools() -> None:
    if shutil.which("nginx") and shutil.which("wrk"):
        return
    subprocess.run(["apt-get", "update", "-qq"], check=True)
    subprocess.run(["apt-get", "install", "-y", "-qq", "nginx-light", "wrk"], check=True)


NGINX_CONF = """worker_processes 1;
daemon off;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections 1024; }}
http {{
  access_log off;
  sendfile on; tcp_nopush on; keepalive_requests 1000000;
  types {{ application/atom+xml atom; }}
  server {{
    listen 127.0.0.1:{port};
    root {dir}/www;
    location / {{ add_header Cache-Control "public, max-age=300"; }}
  }}
}}
"""


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--serve", nargs=3, metavar=("DB", "PORT", "FLOOR"), help=argparse.SUPPRESS)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    if args.serve:
        serve(Path(args.serve[0]), int(args.serve[1]), args.serve[2] == "floor")
        return
    ensure_tools()
    import httpx

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        work.chmod(0o755)  # nginx workers run as an unprivileged user
        db = work / "bench.db"
        asyncio.run(fill(db))
        port, nginx_port, floor_port = free_port(), free_port(), free_port()
        command = ["taskset", "-c", "0", sys.executable, __file__, "--serve", str(db)]
        server = subprocess.Popen([*command, str(port), "app"])
        floor = subprocess.Popen([*command, str(floor_port), "floor"])
        (work / "www" / "feeds").mkdir(parents=True)
        (work / "nginx.conf").write_text(NGINX_CONF.format(dir=work, port=nginx_port))
        try:
            wait_listening(port)
            url = f"http://127.0.0.1:{port}/feeds/bench.atom"
            first = httpx.get(url, headers={"Accept-Encoding": "identity"})
            (work / "www" / "feeds" / "bench.atom").write_bytes(first.content)
            nginx = subprocess.Popen(
                ["taskset", "-c", "0", "nginx", "-c", str(work / "nginx.conf"), "-p", str(work)]
            )
            try:
                wait_listening(nginx_port)
                static = f"http://127.0.0.1:{nginx_port}/feeds/bench.atom"
                nginx_etag = httpx.get(static).headers["etag"]
                print(
                    f"document: {len(first.content)} bytes, 50 entries; {args.seconds}s per run, "
                    f"{args.rounds} rounds interleaved, medians"
                )
                etags = {"nginx": nginx_etag, "feedmill": first.headers["etag"]}
                etags["uvicorn floor"] = etags["feedmill"]
                targets = {
                    "nginx": (static, tree(nginx.pid)),
                    "uvicorn floor": (
                        f"http://127.0.0.1:{floor_port}/feeds/bench.atom",
                        [floor.pid],
                    ),
                    "feedmill": (url, [server.pid]),
                }
                wait_listening(floor_port)
                runs: dict[str, list[dict[str, float]]] = {}
                for _ in range(args.rounds):
                    for kind in ("200", "304"):
                        for name, (target, pids) in targets.items():
                            headers = [f"If-None-Match: {etags[name]}"] if kind == "304" else []
                            result = run_wrk(target, args.seconds, args.connections, headers, pids)
                            runs.setdefault(f"{name} {kind}", []).append(result)
                by = {}
                for label, results in runs.items():
                    result = {k: statistics.median(r[k] for r in results) for k in results[0]}
                    by[label] = result
                    print(
                        f"{label:17} {result['rps']:9.0f} req/s  "
                        f"{result['cpu_us']:6.1f} us CPU/req  p99 {result['p99_ms']:6.2f} ms  "
                        f"non-2xx/3xx {int(result['errors'])}"
                    )
                for kind in ("200", "304"):
                    ours, theirs = by[f"feedmill {kind}"], by[f"nginx {kind}"]
                    bare = by[f"uvicorn floor {kind}"]
                    print(
                        f"ratio {kind}: {ours['rps'] / theirs['rps']:.2f}x nginx requests/s "
                        f"(target >= 0.5), {ours['cpu_us'] / theirs['cpu_us']:.1f}x its CPU per "
                        f"request; uvicorn's floor {bare['rps'] / theirs['rps']:.2f}x nginx, "
                        f"feedmill {ours['cpu_us'] / bare['cpu_us']:.2f}x the floor's CPU"
                    )
                print(
                    f"304 vs 200 CPU per request (feedmill): "
                    f"{by['feedmill 304']['cpu_us'] / by['feedmill 200']['cpu_us']:.2f}"
                )
            finally:
                nginx.terminate()
                nginx.wait()
        finally:
            for process in (server, floor):
                process.terminate()
                process.wait()


if __name__ == "__main__":
    main()
