"""A request made in a channel shared with another organization (Slack Connect) is never
spoken of there: its confirmation and notes go to the requester as DMs that say why, and a
channel Slack won't describe is treated alike (fail closed). Over real HTTP."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import pytest

from bot.approvals.states import State
from bot.outbox.worker import Backoff
from standins.slack import SlackStandIn
from tests.harness.inprocess import Bot, Clock, request_id_of, serve, workspace
from tests.harness.people import APPROVALS, APPROVER, ORIGIN, REQUESTER

PARTNER = "T0PARTNER"  # another organization's team
HOOK_NAME = "Client Credentials Exchange"
VALUE = "v@lue-CANARY-shared"
SHARED_WHY = "is shared with another organization, so the bot posts nothing about secrets there"
UNCHECKED_WHY = "the bot could not check whether"


class WallClock(Clock):
    """Real time: retries fall due while the test waits."""

    def __call__(self) -> datetime:
        return datetime.now(UTC)


@contextmanager
def bot_in(
    db_url: str, clock: Clock | None = None, **channel: Any
) -> Iterator[tuple[Bot, SlackStandIn]]:
    """A running bot whose requests come from ORIGIN, set up with ``channel``'s options."""
    with workspace(db_url) as ws:
        ws.slack.add_channel(ORIGIN, "partners", **channel)
        with serve(ws.settings, ws.slack, ws.auth0, ws.hook_id, clock=clock) as bot:
            yield bot, ws.slack


def said_in_origin(slack: SlackStandIn) -> list[Any]:
    """Every call the bot made that would show something in ORIGIN (and what is there)."""
    calls = [
        c.args
        for c in slack.calls
        if c.method.startswith("chat.") and c.args.get("channel") == ORIGIN
    ]
    return [*calls, *slack.messages(ORIGIN), *slack.ephemerals(channel=ORIGIN)]


def direct(slack: SlackStandIn, *words: str, timeout: float = 10.0) -> dict[str, Any]:
    """The DM to the requester whose text holds every one of ``words``."""
    return slack.wait_for_message(
        slack.im_channel(REQUESTER), lambda m: all(w in m.get("text", "") for w in words), timeout
    )


def test_a_shared_channel_gets_no_confirmation_and_the_requester_a_dm_saying_why(
    db_url: str,
) -> None:
    """Approved and applied from a Slack Connect channel: nothing about it there; the
    requester is told where it waits and gets the redacted confirmation as DMs, each with
    the reason; Slack is asked once about the channel (the answer is kept)."""
    with bot_in(db_url, shared_with=[PARTNER]) as (bot, slack):
        message = bot.request_approval(value=VALUE)
        waiting = direct(slack, "waiting for approval", SHARED_WHY)
        assert f"<#{APPROVALS}>" in waiting["text"] and f"<#{ORIGIN}>" in waiting["text"]
        assert bot.decide(message).status == 200
        bot.drain()
        assert bot.auth0.secrets(bot.hook_id)["API_KEY"] == VALUE
        confirmation = direct(slack, "API_KEY", "approved by", SHARED_WHY)
        text = confirmation["text"]
        assert f"<@{REQUESTER}>" in text and f"<@{APPROVER}>" in text and HOOK_NAME in text
        shown = str(confirmation["blocks"])
        assert request_id_of(message) in shown and bot.hook_id in shown and SHARED_WHY in shown
        assert said_in_origin(slack) == []
        assert "CANARY" not in str(slack.calls) and "CANARY" not in str(slack.ephemerals())
        asked = slack.calls_to("conversations.info")
        assert [c.args["channel"] for c in asked] == [ORIGIN]  # once, not the approval channel
        row = bot.store.get(request_id_of(message))
        assert row is not None and row.state == State.APPLIED


def test_a_rejection_in_a_channel_invited_to_share_goes_to_the_requester(db_url: str) -> None:
    """A channel with a pending Slack Connect invitation counts as shared (once accepted, the
    other side reads its history): the rejection note comes as a DM, nothing in the channel."""
    with bot_in(db_url, pending_with=[PARTNER]) as (bot, slack):
        message = bot.request_approval()
        bot.decide(message, approve=False, comment="not now")
        bot.drain()
        rejected = direct(slack, "was rejected", SHARED_WHY)
        assert "not now" in rejected["text"] and "API_KEY" in rejected["text"]
        assert said_in_origin(slack) == []


def test_an_ordinary_channel_still_gets_the_confirmation(db_url: str) -> None:
    """Slack says the channel is not shared: the confirmation is posted there as before, and
    nothing goes to the requester directly."""
    with bot_in(db_url) as (bot, slack):
        bot.decide(bot.request_approval(value=VALUE))
        bot.drain()
        posted = slack.wait_for_message(ORIGIN, lambda m: "API_KEY" in m.get("text", ""))
        assert f"<@{REQUESTER}>" in posted["text"] and SHARED_WHY not in str(posted)
        assert slack.ephemerals(REQUESTER, ORIGIN)  # told where the request waits, in place
        assert slack.messages(slack.im_channel(REQUESTER)) == []
        assert [c.args["channel"] for c in slack.calls_to("conversations.info")] == [ORIGIN]


@pytest.mark.parametrize(
    ("setup", "code"),
    [
        (lambda slack: slack.revoke("channels:read"), "missing_scope"),
        (lambda slack: None, "channel_not_found"),
    ],
    ids=["no-channels-read", "channel-not-found"],
)
def test_a_channel_slack_wont_describe_gets_nothing(db_url: str, setup: Any, code: str) -> None:
    """conversations.info refused (the scope revoked; a private channel the bot is not in,
    which Slack says is not found): fail closed, every message goes to the requester as a DM
    naming Slack's answer."""
    private = code == "channel_not_found"
    channel = "G0PRIVATE" if private else ORIGIN
    with workspace(db_url) as ws:
        ws.slack.add_channel(channel, "private-ops", bot_is_member=not private)
        setup(ws.slack)
        with serve(ws.settings, ws.slack, ws.auth0, ws.hook_id) as bot:
            mark = ws.slack.mark()
            assert bot.driver.slash_command(REQUESTER, "add", channel_id=channel).status == 200
            ws.slack.wait_for("views.open", after=mark)
            ack = bot.submit(ws.slack.view_for_user(REQUESTER), value=VALUE)
            assert ack.status == 200 and not ack.body, ack.body
            message = ws.slack.wait_for_message(APPROVALS, lambda m: bool(m.get("blocks")))
            bot.decide(message)
            bot.drain()
            why = f"{UNCHECKED_WHY} <#{channel}> is shared with another organization"
            waiting = direct(ws.slack, "waiting for approval", why, f"`{code}`")
            assert f"<#{APPROVALS}>" in waiting["text"]
            confirmation = direct(ws.slack, "API_KEY", "approved by", why)
            assert f"`{code}`" in str(confirmation["blocks"])
            assert not [
                c
                for c in ws.slack.calls
                if c.method.startswith("chat.") and c.args.get("channel") == channel
            ]
            assert ws.slack.messages(channel) == [] and ws.slack.ephemerals(channel=channel) == []
            assert "CANARY" not in str(ws.slack.calls)


def test_slack_not_answering_about_a_shared_channel_lets_nothing_through(db_url: str) -> None:
    """conversations.info answers 500 for a while: the messages wait (the outbox retries),
    nothing reaches the shared channel meanwhile, and the DMs follow once Slack answers."""
    with bot_in(db_url, WallClock(), shared_with=[PARTNER]) as (bot, slack):
        bot.services.next_steps.delivery.backoff = Backoff(base=0.25, cap=1.0)
        view = bot.open_form()
        slack.fail_for("conversations.info", 3.0, 500)
        began = time.monotonic()
        assert bot.submit(view).status == 200
        slack.wait_for_message(APPROVALS, lambda m: bool(m.get("blocks")))
        waiting = direct(slack, "waiting for approval", SHARED_WHY, timeout=20)
        assert time.monotonic() - began >= 2.5  # not before Slack answered
        assert "waiting" in waiting["text"]
        failed = [c for c in slack.calls_to("conversations.info") if c.status == 500]
        assert failed
        assert said_in_origin(slack) == []
