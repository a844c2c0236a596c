"""Logging for the CLI and the service: readable text on a terminal, one line per event
otherwise, or one JSON object per line (``--log-format json``) for a log collector.

A record's ``extra`` fields (``logging.info(..., extra={"source": ...})``) become keys of
the JSON object; the text formats show only the message, which says the same in words.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any

from feedmill.terminal import TerminalFilter

# Attributes every LogRecord has: everything else on a record came in through ``extra``.
_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}
_NOISY = ("httpx", "httpcore", "apscheduler", "aiosqlite", "alembic", "uvicorn.error")


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time (UTC, ISO 8601), level, logger, message, extra fields."""

    def format(self, record: logging.LogRecord) -> str:
        event: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        event.update((k, v) for k, v in vars(record).items() if k not in _STANDARD)
        if record.exc_info:
            event["exception"] = self.formatException(record.exc_info)
        return json.dumps(event, default=str, ensure_ascii=False)


def setup_logging(verbose: bool, log_format: str = "text", level: int = logging.INFO) -> None:
    """Log to stderr at ``level`` (DEBUG with ``verbose``); the libraries' chatter only
    with ``verbose``."""
    handler: logging.Handler
    if log_format == "json":
        handler = logging.StreamHandler()
        handler.setFormatter(JsonFormatter())
    elif sys.stderr.isatty():
        from rich.logging import RichHandler

        handler = RichHandler(show_path=False, rich_tracebacks=False)
        handler.setFormatter(logging.Formatter("%(message)s"))
    else:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    if log_format != "json":  # JSON strings escape control characters themselves
        handler.addFilter(TerminalFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.DEBUG if verbose else level)
    for noisy in _NOISY:
        logging.getLogger(noisy).setLevel(logging.DEBUG if verbose else logging.WARNING)
