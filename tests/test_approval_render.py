"""The approval post is rendered when it is sent, from the request as stored (the ack that
queues it does not build its blocks); one queued already rendered, by an earlier version of
the bot, is posted as it was queued; one that can't be rendered is refused, and said so."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from slack_sdk import WebClient
from sqlalchemy import select

from bot.db.models import OutboxMessage, OutboxState, SecretRequest
from bot.db.store import Store
from bot.outbox.messages import Message, Method
from bot.outbox.notify import Notifier
from bot.outbox.worker import Delivery
from bot.slack.blocks import approval_message as approval
from standins.slack import SlackStandIn
from tests.harness.inprocess import APPROVALS
from tests.unit.factories import secret_request

TOKEN = "xoxb-render-test-token"
MENTION = "<!subteam^S0APPS>"
OLD_BLOCKS = [
    {
        "type": "section",
        "block_id": "old",
        "text": {"type": "mrkdwn", "text": "rendered when queued"},
    }
]
ORIGIN, REQUESTER = "C0", "U0REQ"  # where the factory's request was made, and by whom


@dataclass
class World:
    slack: SlackStandIn
    store: Store
    notifier: Notifier
    now: datetime

    def delivery(self, **changes: Any) -> Delivery:
        client = WebClient(token=TOKEN, base_url=self.slack.api_url)
        options: dict[str, Any] = {"approval": self.notifier.approval, **changes}
        return Delivery(client, self.store, lambda: self.now, **options)

    def pending(self, request_id: str) -> SecretRequest:
        request = secret_request(
            id=request_id, created_at=self.now, expires_at=self.now + timedelta(hours=1)
        )
        with self.store.transaction() as tx:
            tx.add(request)
        return request

    def queue(self, *messages: Message) -> None:
        with self.store.transaction() as tx:
            tx.enqueue(messages, self.now)


@contextmanager
def world(db_url: str) -> Iterator[World]:
    with SlackStandIn(bot_token=TOKEN) as slack:
        slack.add_channel(APPROVALS, "secret-approvals")
        slack.add_channel(ORIGIN, "platform")
        slack.add_user(REQUESTER, "rita")
        store = Store(db_url)
        store.migrate()
        try:
            yield World(slack, store, Notifier(APPROVALS, MENTION), datetime.now(UTC))
        finally:
            store.close()


def test_the_approval_post_is_rendered_at_delivery_as_it_was_at_submit(db_url: str) -> None:
    """The queued row holds no blocks; the post Slack gets is exactly the message the ack used
    to build (mention, text, facts, reason, buttons), then the requester's note."""
    with world(db_url) as w:
        new = w.pending("hsr_new")
        w.queue(*w.notifier.submitted(new))
        with w.store.engine.connect() as connection:
            (payload,) = connection.execute(select(OutboxMessage.payload)).scalars()
        assert "blocks" not in json.loads(payload)  # the ack built none

        assert w.delivery().deliver_due() == 2  # the post, and the note after it
        (posted,) = w.slack.messages(APPROVALS)
        text, body = approval.approval_message(new, MENTION)
        assert posted["text"] == text and posted["text"].startswith(MENTION)
        assert len(posted["blocks"]) == len(body)
        for sent, built in zip(posted["blocks"], body, strict=True):
            # Slack gives a block without an id one of its own.
            assert sent == {**built, "block_id": built.get("block_id", sent["block_id"])}
        assert w.store.outbox_counts() == {OutboxState.SENT: 2}


def test_an_approval_post_queued_rendered_by_an_earlier_version_is_sent_as_queued(
    db_url: str,
) -> None:
    with world(db_url) as w:
        old = w.pending("hsr_old")
        w.queue(
            Message(
                Method.POST_APPROVAL,
                old.id,
                channel=APPROVALS,
                text="queued before",
                blocks=OLD_BLOCKS,
            )
        )
        assert w.delivery().deliver_due() == 1
        (posted,) = w.slack.messages(APPROVALS)
        assert (posted["text"], posted["blocks"]) == ("queued before", OLD_BLOCKS)


def test_an_approval_post_that_cannot_be_rendered_is_refused_and_the_requester_told(
    db_url: str,
) -> None:
    """Nothing is posted, the row is dead (counted as undelivered), and the requester hears
    that the bot could not build the message, instead of the row being retried for ever."""
    with world(db_url) as w:
        request = w.pending("hsr_bad")
        w.queue(*w.notifier.submitted(request))
        dead: list[tuple[str, str]] = []

        def broken(_: SecretRequest) -> tuple[str, list[dict[str, Any]]]:
            raise ValueError("cannot render")

        delivery = w.delivery(approval=broken, on_dead=lambda *m: dead.append(m))
        delivery.deliver_due()
        assert w.slack.messages(APPROVALS) == []
        assert dead == [(Method.POST_STORED_APPROVAL, "render_failed")]
        (told,) = [e["text"] for e in w.slack.ephemerals(REQUESTER)]
        assert "could not build the message" in told and request.id in told
        assert w.store.outbox_counts() == {OutboxState.DEAD: 1, OutboxState.SENT: 1}
