"""The approval post is rendered when it is sent, from the request as stored (the ack that
queues it does not build its blocks); one queued already rendered, by an earlier version of
the bot, is posted as it was queued."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from slack_sdk import WebClient
from sqlalchemy import select

from bot import ids
from bot.delivery import Delivery
from bot.models import OutboxMessage, OutboxState
from bot.notify import Notifier
from bot.outbox import Message, Method
from bot.store import Store
from standins.slack import SlackStandIn
from tests.harness import APPROVALS
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


def test_the_approval_post_is_rendered_at_delivery_and_an_old_row_is_sent_as_queued(
    db_url: str,
) -> None:
    with SlackStandIn(bot_token=TOKEN) as slack:
        slack.add_channel(APPROVALS, "secret-approvals")
        slack.add_channel("C0", "platform")  # where the factory's requester asked
        slack.add_user("U0REQ", "rita")
        store = Store(db_url)
        store.migrate()
        now = datetime.now(UTC)
        notifier = Notifier(APPROVALS, MENTION)
        client = WebClient(token=TOKEN, base_url=slack.api_url)
        delivery = Delivery(client, store, lambda: now, approval=notifier.approval)
        new, old = (
            secret_request(id=i, created_at=now, expires_at=now + timedelta(hours=1))
            for i in ("hsr_new", "hsr_old")
        )
        queued_before = Message(
            Method.POST_APPROVAL, old.id, channel=APPROVALS, text="queued before", blocks=OLD_BLOCKS
        )
        with store.transaction() as tx:
            tx.add(new)
            tx.add(old)
            tx.enqueue([*notifier.submitted(new), queued_before], now)
        with store.engine.connect() as connection:
            rows = connection.execute(select(OutboxMessage.request_id, OutboxMessage.payload))
            payloads = dict(rows.all())
        assert "blocks" not in json.loads(payloads["hsr_new"])  # the ack built none

        assert delivery.deliver_due() == 3  # the two posts, and the note after the new one
        posts = {m["text"]: m for m in slack.messages(APPROVALS)}
        assert posts["queued before"]["blocks"] == OLD_BLOCKS
        (rendered,) = (m for text, m in posts.items() if text != "queued before")
        assert rendered["text"].startswith(f"{MENTION} <@{new.requester}> asks to add secret")
        buttons = next(b for b in rendered["blocks"] if b["type"] == "actions")["elements"]
        assert {(b["action_id"], b["value"]) for b in buttons} == {
            (ids.ACTION_APPROVE, new.id),
            (ids.ACTION_REJECT, new.id),
        }
        assert store.outbox_counts() == {OutboxState.SENT: 3}
        store.close()
