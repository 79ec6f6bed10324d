"""The outbox end to end: Slack failing for seconds around each notification loses nothing."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

from slack_sdk import WebClient

from bot.approvals.apply import Timing
from bot.approvals.states import State
from bot.db.models import OutboxState
from bot.db.store import Store
from bot.metrics import Metrics
from bot.outbox.messages import Message, Method
from bot.outbox.notify import Notifier
from bot.outbox.worker import Backoff, Delivery
from standins.slack import SlackStandIn
from tests.harness.inprocess import (
    APPROVALS,
    ORIGIN,
    REQUESTER,
    Clock,
    request_id_of,
    running_bot,
    serve,
    workspace,
)

# Past the SDK's own retries of a 429 (two, a second apart) and past the backoff's cap: the
# outbox's retries, capped ones too, carry the messages through.
OUTAGE = 5.0
BACKOFF = Backoff(base=0.25, cap=2.0)


class WallClock(Clock):
    """Real time: retries fall due while the test waits."""

    def __call__(self) -> datetime:
        return datetime.now(UTC)


def _outage(slack: SlackStandIn, status: int, *methods: str) -> float:
    """Make ``methods`` fail with ``status`` for OUTAGE seconds; when it ends (epoch)."""
    for method in methods:
        slack.fail_for(method, OUTAGE, status)
    return time.time() + OUTAGE


def _delivered(slack: SlackStandIn, method: str, **args: Any) -> list[float]:
    """When Slack accepted calls of ``method`` whose arguments include ``args``."""
    return [
        c.time
        for c in slack.calls_to(method)
        if c.ok and all(c.args.get(k) == v for k, v in args.items())
    ]


def test_every_message_is_delivered_once_after_slack_fails_500_then_429(sqlite_url: str) -> None:
    """Slack answers 500 for 5 s while the approval is posted, then 429 past the SDK's retries
    for 5 s while the outcome is told: afterwards each message was delivered exactly once,
    within one backoff step of Slack recovering."""
    with (
        workspace(sqlite_url) as ws,
        serve(ws.settings, ws.slack, ws.auth0, ws.hook_id, clock=WallClock()) as bot,
    ):
        delivery = bot.services.next_steps.delivery
        delivery.backoff = BACKOFF
        # A retry falls due within one backoff step; the worker looks at least every poll.
        within = BACKOFF.cap + delivery.poll + 1.5
        view = bot.open_form()
        back = _outage(ws.slack, 500, "chat.postMessage", "chat.postEphemeral")
        assert bot.submit(view).status == 200
        message = ws.slack.wait_for_message(
            APPROVALS, lambda m: bool(m.get("blocks")), timeout=OUTAGE + 10
        )
        told = ws.slack.wait_for_ephemeral(REQUESTER, lambda m: "waiting" in m["text"], 10)
        assert f"<#{APPROVALS}>" in told["text"]
        (posted,) = _delivered(ws.slack, "chat.postMessage", channel=APPROVALS)
        assert back <= posted <= back + within
        assert not [
            c
            for c in ws.slack.calls_to("chat.postMessage")
            if c.ok and c.args["channel"] != APPROVALS
        ]

        back = _outage(ws.slack, 429, "chat.postMessage", "chat.update")
        bot.decide(message)
        confirmation = ws.slack.wait_for_message(
            ORIGIN, lambda m: "API_KEY" in m["text"], timeout=OUTAGE + 10
        )
        assert "added" in confirmation["text"]
        bot.drain()
        (updated_at,) = _delivered(ws.slack, "chat.update")
        (confirmed_at,) = _delivered(ws.slack, "chat.postMessage", channel=ORIGIN)
        for moment in (updated_at, confirmed_at):
            assert back <= moment <= back + within
        (approval,) = ws.slack.messages(APPROVALS)
        assert not any(b.get("type") == "actions" for b in approval["blocks"])
        assert len(ws.slack.messages(ORIGIN)) == 1
        assert len([e for e in ws.slack.ephemerals(REQUESTER) if "waiting" in e["text"]]) == 1
        assert ws.slack.messages(REQUESTER) == []  # nothing fell back to a DM
        row = bot.store.get(request_id_of(message))
        assert row is not None and row.state == State.APPLIED
        assert bot.events()[-1] == "secret.added"
        assert ws.auth0.secrets(ws.hook_id)["API_KEY"] == "s3cr3t-value"


def test_a_slow_apply_tells_the_requester_it_is_still_going(sqlite_url: str) -> None:
    """An apply still waiting for Auth0 past the slow mark tells the requester once that it is
    still being applied; the confirmation follows when it lands."""
    with running_bot(sqlite_url) as bot:
        bot.services.workflow.timing = Timing(
            heartbeat=timedelta(seconds=0.1), slow_apply=timedelta(seconds=0.5)
        )
        message = bot.request_approval()
        bot.auth0.latency = 1.5
        bot.decide(message)
        still = bot.slack.wait_for_ephemeral(
            REQUESTER, lambda m: "still being applied" in m["text"], timeout=10
        )
        assert request_id_of(message) in still["text"]
        confirmation = bot.slack.wait_for_message(
            ORIGIN, lambda m: "API_KEY" in m["text"], timeout=15
        )
        bot.drain()
        notices = [e for e in bot.slack.ephemerals(REQUESTER) if "still" in e["text"]]
        assert len(notices) == 1 and "added" in confirmation["text"]
        assert bot.events()[-1] == "secret.added"


def test_a_permanent_refusal_falls_back_to_a_dm_or_is_counted_as_undelivered(
    sqlite_url: str,
) -> None:
    """An ephemeral notice the channel refuses becomes a DM; a DM Slack refuses for good is
    given up once, marked dead and counted in /metrics by method and Slack's error."""
    with SlackStandIn(bot_token="xoxb-outbox-test-token") as slack:
        slack.add_user(REQUESTER, "rita")
        slack.add_channel("C0PRIVATE", "side-project", bot_is_member=False)
        store = Store(sqlite_url)
        store.migrate()
        metrics = Metrics()
        client = WebClient(token="xoxb-outbox-test-token", base_url=slack.api_url)
        delivery = Delivery(
            client,
            store,
            lambda: datetime.now(UTC),
            approval=Notifier(APPROVALS, None).approval,
            on_dead=metrics.observe_undelivered,
        )
        with store.transaction() as tx:
            tx.enqueue(
                [
                    Message(Method.TELL, "hsr_1", channel="C0PRIVATE", user=REQUESTER, text="one"),
                    Message(Method.DM, "hsr_2", user="U0GONE", text="two"),
                ],
                datetime.now(UTC),
            )
        delivery.deliver_due()
        assert [m["text"] for m in slack.messages(REQUESTER)] == ["one"]
        assert store.outbox_counts() == {OutboxState.SENT: 1, OutboxState.DEAD: 1}
        delivery.deliver_due()  # nothing is retried after a permanent refusal
        assert len(slack.calls_to("conversations.open")) == 2
        scraped = _scrape(metrics)
        assert (
            'hook_secret_bot_slack_undelivered_total{error="user_not_found",method="dm"} 1.0'
            in scraped
        )
        store.close()


def _scrape(metrics: Metrics) -> str:
    status: list[str] = []
    body = metrics.serve(
        {"REQUEST_METHOD": "GET", "PATH_INFO": "/metrics", "QUERY_STRING": ""},
        lambda s, h: status.append(s),
    )
    return b"".join(body).decode()
