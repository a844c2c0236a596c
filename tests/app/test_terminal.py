"""Upstream text on the terminal: no escape sequence, control character, markup or hyperlink
gets through (feedmill.terminal)."""

from __future__ import annotations

import io
import logging

import pytest
from rich.console import Console
from rich.table import Table

from feedmill.terminal import TerminalFilter, cell, terminal_text


@pytest.mark.parametrize(
    ("dirty", "clean"),
    [
        ("clear\x1b[2Jscreen", "clearscreen"),
        ("title\x1b]0;pwned\x07!", "title!"),
        ("\x1b]8;;https://evil.example/\x1b\\click\x1b]8;;\x1b\\", "click"),
        ("8-bit \x9b31mcsi \x9d0;x\x9c osc", "8-bit csi  osc"),
        ("dcs \x1bPq#0;2;0;0;0\x1b\\ end", "dcs  end"),
        ("keypad \x1b= \x1b(B charset", "keypad   charset"),
        ("bell\x07 back\x08 del\x7f nul\x00", "bell back del nul"),
        ("bidi \u202eevil\u202c", "bidi evil"),
        ("lone \ud800 surrogate", "lone \ufffd surrogate"),
        ("two\nlines\r\n\ttab", "two lines tab"),
        (
            "[link=https://evil.example/]click[/link] [/]",
            "[link=https://evil.example/]click[/link] [/]",
        ),
        ("unterminated \x1b]0;title", "unterminated "),
    ],
)
def test_terminal_text_keeps_only_text(dirty: str, clean: str) -> None:
    assert terminal_text(dirty) == clean


def test_a_long_value_is_cut() -> None:
    assert terminal_text("x" * 1000, limit=10) == "x" * 9 + "…"


def render(*cells: object) -> str:
    table = Table("a", box=None, show_header=False)
    table.add_row(*cells)  # type: ignore[arg-type]
    out = io.StringIO()
    Console(file=out, force_terminal=True, color_system="truecolor", width=200).print(table)
    return out.getvalue()


def test_a_cell_is_never_markup_nor_a_hyperlink() -> None:
    markup = "[link=https://evil.example/]click[/link] [bold]x[/bold] [/]"
    output = render(cell(markup))
    assert "[link=https://evil.example/]click[/link]" in output
    assert "\x1b]8;" not in output  # no OSC 8 hyperlink
    assert "\x1b[1m" not in output  # no bold
    with pytest.raises(Exception, match="closing tag"):
        render(markup)  # what a plain string does: the crash `preview` had


def test_log_messages_are_terminal_safe() -> None:
    record = logging.LogRecord(
        "feedmill",
        logging.INFO,
        __file__,
        1,
        "source %s: %s",
        ("x", "bad\x1b[2J\x1b]0;t\x07"),
        None,
    )
    assert TerminalFilter().filter(record)
    assert record.getMessage() == "source x: bad"
