"""Upstream text printed on a terminal as text.

Titles, links and error messages come from upstream documents and servers. Printed as they
are, an escape sequence clears the screen, sets the window title, or makes a hyperlink
(OSC 8), and rich's console markup (``[link=...]``, ``[/]``) in a title makes a hyperlink or
a crash. :func:`terminal_text` removes every escape sequence (CSI, OSC, DCS, SOS, PM, APC and
two-byte ESC sequences with their payload), C0 and C1 control characters and the Unicode
bidirectional overrides, and replaces lone surrogates; :func:`cell` wraps the result in a
rich ``Text``, which is never read as markup.
"""

from __future__ import annotations

import logging
import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.text import Text

_SEQUENCE = re.compile(
    r"\x1b\[[0-?]*[ -/]*[@-~]?"  # CSI
    r"|\x1b\][^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c)?"  # OSC, ended by BEL or ST
    r"|\x1b[PX^_][^\x1b\x9c]*(?:\x1b\\|\x9c)?"  # DCS, SOS, PM, APC
    r"|\x9b[0-?]*[ -/]*[@-~]?"  # 8-bit CSI
    r"|[\x90\x98\x9d\x9e\x9f][^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c)?"  # 8-bit DCS/SOS/OSC/PM/APC
    r"|\x1b[ -/]*[0-~]?"  # any other ESC sequence
)
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")
_SURROGATE = re.compile("[\ud800-\udfff]")
_LINE_BREAK = re.compile(r"[\t\n\r\u2028\u2029]+")


def terminal_text(text: object, *, one_line: bool = True, limit: int | None = 300) -> str:
    """``text`` with nothing a terminal would act on; on one line unless told otherwise,
    at most ``limit`` characters (the last an ellipsis when cut)."""
    value = str(text)
    if one_line:
        value = _LINE_BREAK.sub(" ", value)
    value = _CONTROL.sub("", _SEQUENCE.sub("", value))
    value = _SURROGATE.sub("\ufffd", value)
    if limit is not None and len(value) > limit:
        value = value[: limit - 1] + "…"
    return value


def cell(text: object, *, limit: int | None = 300) -> Text:
    """A table cell showing ``text`` literally (no markup, no escapes)."""
    from rich.text import Text  # rich loads only for commands that print tables

    return Text(terminal_text(text, limit=limit))


class TerminalFilter(logging.Filter):
    """Log records whose message (upstream error text included) is terminal-safe."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = terminal_text(message, one_line=False, limit=None)
        if cleaned != message or record.args:
            record.msg, record.args = cleaned, None
        return True
