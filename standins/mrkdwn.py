"""Slack mrkdwn as a terminal shows it: names for mentions, emoji, readable dates, bold."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime, tzinfo
from typing import Final

# The shortcodes the bot writes, and a few more a reader will meet; others stay as typed.
EMOJI: Final = {
    "white_check_mark": "✅",
    "heavy_check_mark": "✔️",
    "no_entry": "⛔",
    "warning": "⚠️",
    "x": "❌",
    "hourglass": "⌛",
    "hourglass_flowing_sand": "⏳",
    "lock": "🔒",
    "key": "🔑",
    "information_source": "ℹ️",
    "rotating_light": "🚨",
}
BOLD, ITALIC, RESET = "\033[1m", "\033[3m", "\033[0m"

# <…> tokens: mentions, channels, special mentions, dates, links (Slack's "formatting" page).
_TOKEN: Final = re.compile(r"<([^<>]+)>")
_CODE: Final = re.compile(r"```(.+?)```|`([^`\n]+)`", re.DOTALL)
_EMOJI: Final = re.compile(r":([a-z0-9_+-]+):")
# Slack's emphasis needs a non-word character (or the edge) outside the markers.
_BOLD: Final = re.compile(r"(?<![\w*])\*(?=\S)([^*\n]+?)(?<=\S)\*(?![\w*])")
_ITALIC: Final = re.compile(r"(?<![\w_])_(?=\S)([^_\n]+?)(?<=\S)_(?![\w_])")
_STRIKE: Final = re.compile(r"(?<![\w~])~(?=\S)([^~\n]+?)(?<=\S)~(?![\w~])")
_ENTITIES: Final = (("&lt;", "<"), ("&gt;", ">"), ("&amp;", "&"))


class Renderer:
    """Renders mrkdwn with the workspace's names; ``ansi`` for bold and italic on a terminal."""

    def __init__(
        self,
        user_name: Callable[[str], str],
        channel_name: Callable[[str], str],
        *,
        ansi: bool = False,
        tz: tzinfo | None = None,
    ) -> None:
        self.user_name = user_name
        self.channel_name = channel_name
        self.ansi = ansi
        self.tz = tz  # None: the machine's local zone, as Slack shows each reader their own

    def render(self, text: str) -> str:
        """``text`` as a person reads it in Slack, minus the colours."""
        out, last = [], 0
        # Code spans keep their characters: no tokens, emphasis or emoji inside them.
        for code in _CODE.finditer(text):
            out.append(self._prose(text[last : code.start()]))
            out.append(_unescape(code.group(1) or code.group(2)))
            last = code.end()
        out.append(self._prose(text[last:]))
        return "".join(out)

    def date(self, epoch: int) -> str:
        """A moment as people read it: ``Wed 2 Dec 2026, 18:37 UTC``."""
        moment = datetime.fromtimestamp(epoch, self.tz).astimezone(self.tz)
        return f"{moment:%a} {moment.day} {moment:%b %Y, %H:%M} {moment.tzname()}"

    def _prose(self, text: str) -> str:
        text = _TOKEN.sub(lambda m: self._token(m.group(1)), text)
        text = _EMOJI.sub(lambda m: EMOJI.get(m.group(1), m.group(0)), text)
        text = _BOLD.sub(self._style(BOLD), text)
        text = _ITALIC.sub(self._style(ITALIC), text)
        text = _STRIKE.sub(r"\1", text)
        return _unescape(text)

    def _style(self, code: str) -> Callable[[re.Match[str]], str]:
        return lambda m: f"{code}{m.group(1)}{RESET}" if self.ansi else m.group(1)

    def _token(self, body: str) -> str:
        target, _, label = body.partition("|")
        if target.startswith("@"):
            return "@" + (label or self.user_name(target[1:]))
        if target.startswith("#"):
            return "#" + (label or self.channel_name(target[1:]))
        if target.startswith("!date^"):
            epoch = target.split("^")[1]
            return self.date(int(epoch)) if epoch.isdigit() else label
        if target.startswith("!subteam^"):
            return label or "@" + target.split("^")[1]
        if target.startswith("!"):
            return "@" + target[1:]  # <!here>, <!channel>, <!everyone>
        return f"{label} ({target})" if label else target


def _unescape(text: str) -> str:
    for entity, char in _ENTITIES:
        text = text.replace(entity, char)
    return text
