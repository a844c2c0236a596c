"""Parsing in worker processes, each document under a deadline.

Parsing is CPU-bound, and an upstream can send a document made to be slow. Limits on what is
read (sources.text) bound the known cases; the deadline bounds the rest. A thread cannot be
stopped, so documents are parsed by a few worker processes (``python -m
sources.parse_worker``, talking over pipes): a parse still running after ``deadline``
seconds has its worker killed, the source records ``too_complex``, and a new worker is
started when one is next needed. A worker that dies (killed by the kernel for memory, a crash
in a C extension) is the same error. The event loop only waits on a pipe meanwhile.

    async with ParsePool(workers=2, deadline=30.0) as pool:
        feed = await pool.parse(content, url, content_type)     # ParseError on failure

Workers are plain subprocesses (no fork of the service, so they inherit none of its threads,
sockets or locks); each imports sources.parse once and then parses document after document.
"""

from __future__ import annotations

import asyncio
import os
import pickle
import sys
from pathlib import Path
from types import TracebackType
from typing import Any

from sources.errors import ErrorKind, ParseError
from sources.model import ParsedFeed

DEFAULT_DEADLINE = 30.0
_HEADER = 8  # bytes of a message's length, big-endian, before the pickled message
_ROOT = Path(__file__).resolve().parent.parent  # where the sources package is importable


def default_workers() -> int:
    """One worker per CPU, two at least (one slow document leaves another worker), four at
    most (parses are short; more would only hold memory)."""
    return max(2, min(4, os.cpu_count() or 1))


class ParseWorkerFailure(RuntimeError):
    """parse_document raised something unexpected in a worker (a bug): the worker's
    traceback is the message. The puller records it as ``internal``."""


class _Worker:
    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process

    @classmethod
    async def start(cls) -> _Worker:
        environment = dict(os.environ)
        environment["PYTHONPATH"] = os.pathsep.join(
            filter(None, [str(_ROOT), environment.get("PYTHONPATH")])
        )
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "sources.parse_worker",
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            env=environment,
        )
        return cls(process)

    async def call(self, request: Any) -> Any:
        stdin, stdout = self.process.stdin, self.process.stdout
        assert stdin is not None and stdout is not None
        data = pickle.dumps(request, protocol=pickle.HIGHEST_PROTOCOL)
        stdin.write(len(data).to_bytes(_HEADER, "big") + data)
        await stdin.drain()
        size = int.from_bytes(await stdout.readexactly(_HEADER), "big")
        return pickle.loads(await stdout.readexactly(size))

    async def stop(self) -> None:
        if self.process.returncode is None:
            self.process.kill()
        await self.process.wait()


class ParsePool:
    """At most ``workers`` worker processes, started when first needed."""

    def __init__(self, workers: int | None = None, deadline: float = DEFAULT_DEADLINE) -> None:
        self.deadline = deadline
        self.size = workers or default_workers()
        self._idle: list[_Worker] = []
        self._busy: set[_Worker] = set()
        self._free = asyncio.Semaphore(self.size)

    async def parse(self, content: bytes, url: str, content_type: str | None) -> ParsedFeed:
        """sources.parse.parse_document in a worker; ParseError ``too_complex`` when it takes
        longer than the deadline (counted from when a worker takes it) or its worker dies."""
        async with self._free:
            worker = self._idle.pop() if self._idle else await _Worker.start()
            self._busy.add(worker)
            try:
                outcome = await asyncio.wait_for(
                    worker.call((content, url, content_type)), self.deadline
                )
            except BaseException as exc:  # the deadline, a dead worker, a cancelled pull
                self._busy.discard(worker)
                await asyncio.shield(worker.stop())
                raise _failure(exc, self.deadline, url) from exc
            self._busy.discard(worker)
            self._idle.append(worker)
        if isinstance(outcome, ParsedFeed):
            return outcome
        kind, message = outcome
        if kind is ErrorKind.INTERNAL:
            raise ParseWorkerFailure(message)
        raise ParseError(kind, message, url=url)

    async def close(self) -> None:
        """Stop every worker, one still parsing included."""
        workers = [*self._idle, *self._busy]
        self._idle.clear()
        await asyncio.gather(*(worker.stop() for worker in workers))

    async def __aenter__(self) -> ParsePool:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()


def _failure(exc: BaseException, deadline: float, url: str) -> BaseException:
    if isinstance(exc, TimeoutError):
        message = f"parsing took longer than {deadline:g}s and was stopped"
        return ParseError(ErrorKind.TOO_COMPLEX, message, url=url)
    if isinstance(exc, asyncio.IncompleteReadError | ConnectionError):
        message = "the parsing process died (out of memory, or a crash)"
        return ParseError(ErrorKind.TOO_COMPLEX, message, url=url)
    return exc
