"""The origin guard: which messages it reroutes, how long it keeps Slack's answer."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
import structlog

from bot.logs import configure_logging
from bot.outbox.messages import Message, Method
from bot.outbox.origin import REMEMBER_FOR, CannotCheck, OriginGuard
from bot.outbox.sending import Retry

CHANNEL, USER = "C0SHARED", "U0REQ"


class Slack:
    """conversations.info as a list of answers, the next one each call."""

    def __init__(self, *answers: dict[str, Any] | Exception) -> None:
        self.answers = list(answers)
        self.asked: list[str] = []

    def __call__(self, channel: str) -> dict[str, Any]:
        self.asked.append(channel)
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def logs() -> Iterator[io.StringIO]:
    """The process's log lines, as JSON, while the test runs."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    stream = io.StringIO()
    configure_logging("DEBUG", "json", stream)
    yield stream
    root.handlers[:] = handlers
    root.setLevel(level)
    structlog.contextvars.clear_contextvars()


def confirm(channel: str = CHANNEL) -> Message:
    blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": "done"}}]
    return Message(Method.CONFIRM, "hsr_1", channel=channel, user=USER, text="done", blocks=blocks)


def test_a_shared_channel_becomes_a_dm_with_the_reason_and_the_same_facts() -> None:
    guard = OriginGuard(Slack({"is_ext_shared": True}))
    routed = guard.route(confirm())
    assert routed.method is Method.DM and routed.user == USER and routed.channel is None
    assert routed.text.startswith("done\n") and f"<#{CHANNEL}> is shared" in routed.text
    assert routed.blocks[0] == confirm().blocks[0] and "shared" in str(routed.blocks[-1])


def test_an_ordinary_channel_is_left_alone_and_the_answer_kept_for_a_while() -> None:
    clock = Clock()
    slack = Slack({"is_ext_shared": False}, {"is_ext_shared": True})
    guard = OriginGuard(slack, clock)
    message = confirm()
    assert guard.route(message) is message
    clock.now += REMEMBER_FOR - 1
    assert guard.route(message) is message
    clock.now += 2  # the channel was shared meanwhile: noticed once the answer is stale
    assert guard.route(message).method is Method.DM
    assert slack.asked == [CHANNEL, CHANNEL]


def test_a_refusal_fails_closed_and_a_transient_error_leaves_the_message_waiting() -> None:
    slack = Slack(Retry("internal_error"), CannotCheck("missing_scope"))
    guard = OriginGuard(slack)
    with pytest.raises(Retry):
        guard.route(confirm())
    routed = guard.route(confirm())
    assert routed.method is Method.DM and "`missing_scope`" in routed.text
    tell = Message(Method.TELL, "hsr_1", channel=CHANNEL, user=USER, text="note")
    assert guard.route(tell).method is Method.DM  # the refusal is kept too
    assert "could not check" in guard.route(tell).text


@pytest.mark.parametrize(
    "message",
    [
        Message(Method.POST_STORED_APPROVAL, "hsr_1", channel="C0APPROVE"),
        Message(Method.UPDATE_APPROVAL, "hsr_1"),
        Message(Method.DM, "hsr_1", user=USER, text="x"),
        Message(Method.TELL, "hsr_1", channel="D0REQ", user=USER, text="x"),
    ],
)
def test_messages_not_for_a_channel_are_not_asked_about(message: Message) -> None:
    slack = Slack()
    assert OriginGuard(slack).route(message) is message and slack.asked == []


def test_each_rerouted_message_is_logged_with_why(logs: io.StringIO) -> None:
    """The operator sees why a message went to the requester: a warning naming Slack's
    answer when it would not say, an info line when the channel is shared."""
    OriginGuard(Slack(CannotCheck("missing_scope"))).route(confirm())
    OriginGuard(Slack({"is_ext_shared": True})).route(confirm())
    lines = [json.loads(line) for line in logs.getvalue().splitlines()]
    unchecked, shared = (r for r in lines if r.get("logger") == "bot.outbox.origin")
    assert unchecked["level"] == "warning" and unchecked["error"] == "missing_scope"
    assert "could not check" in unchecked["event"] and unchecked["channel"] == CHANNEL
    assert shared["level"] == "info" and "shared with another organization" in shared["event"]
    assert shared["request_id"] == "hsr_1" and shared["method"] == "confirm"
