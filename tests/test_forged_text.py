"""Typed text can't imitate the bot: reasons and comments never forge lines or structure."""

from __future__ import annotations

import json
from typing import Any

from bot.serve import lifecycle
from tests.harness.inprocess import APPROVALS, REQUESTER, Bot, running_bot, shown_texts

# A second "Secret:" line, a bidi override reordering what follows, a zero-width space.
FORGED = "rotate vendor key\n*Secret:* `OTHER_KEY` (add)\r\n> approved \u202egnitset\u200b"
SAFE = "rotate vendor key ⏎ *Secret:* `OTHER_KEY` (add) ⏎ &gt; approved [U+202E]gnitset[U+200B]"


def _typed_blocks(payload: Any) -> list[str]:
    """Texts of the plain_text sections, where the bot shows what people typed."""
    return [
        b["text"]["text"]
        for b in payload.get("blocks") or []
        if b.get("type") == "section" and b["text"]["type"] == "plain_text"
    ]


def _assert_unforged(bot: Bot) -> None:
    """No mrkdwn the bot sent holds a live line or character from the typed text."""
    for text in shown_texts(bot.slack):
        assert "OTHER_KEY" not in text or "⏎" in text, text
        assert "\u202e" not in text and "\u200b" not in text and "\n*Secret:* `OTHER" not in text
    for call in bot.slack.calls_to("chat.update") + bot.slack.calls_to("chat.postMessage"):
        for typed in _typed_blocks(call.args):
            assert typed.endswith(SAFE) and "\n" not in typed


def _audit_lines(bot: Bot) -> list[str]:
    assert lifecycle.wait_idle(bot.services, 30)
    return bot.audit_stream.getvalue().splitlines()


def test_forged_reason_and_rejection_comment_show_as_one_plain_line(sqlite_url: str) -> None:
    """A reason and a rejection comment with newlines, mrkdwn and bidi overrides reach the
    approval message, the decision modal, the decided message and the notice as one visible
    line; the audit line keeps exactly what was typed, its invisible characters escaped."""
    with running_bot(sqlite_url) as bot:
        message = bot.request_approval(reason=FORGED)
        assert _typed_blocks(message) == [f"Reason: {SAFE}"]
        bot.decide(message, approve=False, comment=FORGED)
        bot.drain()
        (updated,) = bot.slack.messages(APPROVALS)
        assert _typed_blocks(updated) == [f"Reason: {SAFE}", f"Comment: {SAFE}"]
        modal = bot.slack.calls_to("views.open")[-1].args["view"]
        assert f"Reason: {SAFE}" in _typed_blocks(modal)
        told = bot.slack.wait_for_ephemeral(REQUESTER, lambda m: "rejected" in m["text"])
        assert "\n" not in told["text"] and "[U+202E]" in told["text"]
        _assert_unforged(bot)
        lines = _audit_lines(bot)
        assert all("\u202e" not in line and "\u200b" not in line for line in lines)
        submitted, rejected = json.loads(lines[0]), json.loads(lines[-1])
        assert submitted["reason"] == FORGED and rejected["comment"] == FORGED
        assert "\\u202e" in lines[-1] and "\\n" in lines[-1]


def test_forged_approval_comment_never_reaches_the_confirmation(sqlite_url: str) -> None:
    """An approval comment with forged lines is audited as typed and shown nowhere as mrkdwn."""
    with running_bot(sqlite_url) as bot:
        message = bot.request_approval(reason=FORGED)
        bot.decide(message, comment=FORGED)
        bot.drain()
        _assert_unforged(bot)
        approved = next(json.loads(x) for x in _audit_lines(bot) if "request.approved" in x)
        assert approved["comment"] == FORGED
