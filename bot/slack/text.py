"""User-typed text made safe to show: one line, no invisible or direction-changing characters."""

from __future__ import annotations

import unicodedata

# Characters that reorder or hide text (bidi embeddings, overrides, isolates and marks; zero-width
# joiners and spaces; the BOM): shown as their code point so that nobody can disguise a line.
_INVISIBLE = frozenset(
    (0x061C, 0x180E, *range(0x200B, 0x2010), *range(0x202A, 0x202F), *range(0x2060, 0x2065))
) | frozenset((*range(0x2066, 0x206A), 0xFEFF))
_LINE_BREAKS = frozenset("\n\r\v\f\x1c\x1d\x1e\x85\u2028\u2029")
# Slack's limit on a section block's text.
SECTION_TEXT_MAX = 3000
# The labels typed text is shown under (the forms check it fits: fits_typed).
REASON_LABEL, COMMENT_LABEL = "Reason", "Comment"


def visible(text: str) -> str:
    """``text`` with every control, format or invisible character written as ``[U+XXXX]``."""
    return "".join(_shown(ch) for ch in text)


def one_line(text: str) -> str:
    """``text`` on a single line: breaks become `` ⏎ ``, then :func:`visible` applies."""
    flat = "".join(" ⏎ " if ch in _LINE_BREAKS else ch for ch in text.replace("\r\n", "\n"))
    return visible(flat.replace("\t", " "))


def esc(text: str) -> str:
    """Neutralise mrkdwn control characters in user-supplied text (ampersand first)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def shown(text: str) -> str:
    """User-typed text inside mrkdwn: one line, invisible characters shown, mrkdwn escaped."""
    return esc(one_line(text))


def fits_typed(label: str, text: str) -> bool:
    """Whether ``text`` shown under ``label`` fits a section whole (each invisible character
    takes eight, ``<`` four): the forms refuse what doesn't."""
    return len(label) + 2 + len(shown(text)) <= SECTION_TEXT_MAX


def cut(text: str, limit: int) -> str:
    """``text`` if it has at most ``limit`` characters, else its beginning marked "…" (the
    mark counted in the ``limit``)."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _shown(ch: str) -> str:
    code = ord(ch)
    if code in _INVISIBLE or (unicodedata.category(ch) in ("Cc", "Cf") and ch != "\t"):
        return f"[U+{code:04X}]"
    return ch
