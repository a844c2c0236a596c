"""A real `feedmill` process for tests: start it, read its log until a line appears, signal it.

    async with Child(["--config", str(path), "run"]) as child:
        port = int((await child.read_until(r"listening on http://127.0.0.1:(\\d+)/")).group(1))
        child.signal(signal.SIGHUP)
        await child.read_until("config reloaded")

Leaving the block sends SIGTERM (unless the process ended) and waits for the exit; ``log``
keeps every line read, ``code`` the exit status.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
from types import TracebackType

TIMEOUT = 60  # seconds a line may take: a generous bound on a busy machine, never a wait


class Child:
    def __init__(self, args: list[str], env: dict[str, str] | None = None) -> None:
        self.args = args
        self.env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
        self.log: list[str] = []
        self.code: int | None = None
        self.process: asyncio.subprocess.Process | None = None

    async def __aenter__(self) -> Child:
        self.process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "feedmill",
            *self.args,
            stdin=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            env=self.env,
        )
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        if self.code is None:
            self.signal(signal.SIGTERM)
            await self.wait()

    async def read_line(self) -> str:
        assert self.process is not None and self.process.stderr is not None
        line = (await asyncio.wait_for(self.process.stderr.readline(), TIMEOUT)).decode()
        if line:
            self.log.append(line)
        return line

    async def read_until(self, pattern: str) -> re.Match[str]:
        while True:
            line = await self.read_line()
            assert line, "feedmill exited before logging /" + pattern + "/:\n" + self.text
            if found := re.search(pattern, line):
                return found

    def signal(self, signum: int) -> None:
        assert self.process is not None
        self.process.send_signal(signum)

    async def wait(self, within: float = TIMEOUT) -> int:
        """Read the rest of the log and wait for the exit, at most ``within`` seconds."""
        assert self.process is not None

        async def finish() -> int:
            while await self.read_line():
                pass
            assert self.process is not None
            return await self.process.wait()

        self.code = await asyncio.wait_for(finish(), within)
        return self.code

    @property
    def text(self) -> str:
        return "".join(self.log)
