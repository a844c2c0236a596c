"""Upstream text on a terminal: titles, error messages and URLs come from other people's
servers, so control characters (ANSI escape sequences, carriage returns, bells) are shown
as visible escapes instead of being sent to the terminal as commands."""

from __future__ import annotations

import re

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def safe_text(text: str | None) -> str:
    """``text`` with every control character (and bidi override) written as ``\\xNN`` or
    ``\\uNNNN``: safe to print, still tells what was there."""
    if not text:
        return ""
    return _CONTROL.sub(_escape, text)


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"
