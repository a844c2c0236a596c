from __future__ import annotations

from feedmill.terminal import safe_text


def test_control_characters_are_shown_not_obeyed() -> None:
    shown = "\\x1b[2J\\x1b]0;pwned\\x07Title\\x0d\\x0a"
    assert safe_text("\x1b[2J\x1b]0;pwned\x07Title\r\n") == shown
    assert safe_text("a\u202eb\x9bc") == "a\\u202eb\\x9bc"
    assert safe_text("Tianjin AI server hub — 2027 ✓") == "Tianjin AI server hub — 2027 ✓"
    assert safe_text(None) == ""
