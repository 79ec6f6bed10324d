"""User text shown in Slack cannot forge lines or hide characters."""

from __future__ import annotations

import pytest

from bot.slack.text import one_line, visible


@pytest.mark.parametrize(
    ("typed", "shown"),
    [
        ("rotate after leak", "rotate after leak"),
        ("ok\n*Secret:* OTHER", "ok ⏎ *Secret:* OTHER"),
        ("a\r\nb\rc", "a ⏎ b ⏎ c"),
        ("x\u2028y\u2029z", "x ⏎ y ⏎ z"),
        ("tab\there", "tab here"),
    ],
)
def test_one_line_turns_every_line_break_into_a_visible_mark(typed: str, shown: str) -> None:
    """Newlines of every kind become a visible mark, so typed text stays on its own line."""
    assert one_line(typed) == shown


@pytest.mark.parametrize(
    ("typed", "shown"),
    [
        ("abc\u202edcba", "abc[U+202E]dcba"),
        ("\u2066iso\u2069", "[U+2066]iso[U+2069]"),
        ("zero\u200bwidth", "zero[U+200B]width"),
        ("bom\ufeff", "bom[U+FEFF]"),
        ("nul\x00bell\x07", "nul[U+0000]bell[U+0007]"),
        ("Ünïcødé café ✓", "Ünïcødé café ✓"),
    ],
)
def test_visible_names_bidi_and_invisible_characters(typed: str, shown: str) -> None:
    """Direction overrides, zero-width and control characters are shown as code points."""
    assert visible(typed) == shown


def test_one_line_output_never_holds_a_break_or_an_invisible_character() -> None:
    """Every code point that could break or hide a line is neutralised."""
    import unicodedata

    everything = "".join(chr(c) for c in range(0x3000) if not 0xD800 <= c <= 0xDFFF)
    out = one_line(everything)
    assert not any(unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp") for ch in out)
