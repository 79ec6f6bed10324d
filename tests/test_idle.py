"""Waiting for the outbox to settle (a drain, a graceful shutdown) never answers "idle" while a
message is on its way: not even when the worker claims it in the middle of the look."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from typing import Any

import pytest
from slack_sdk import WebClient

from bot.db.models import OutboxState
from bot.db.store import Store
from bot.outbox.messages import Message, Method
from bot.outbox.notify import Notifier
from bot.outbox.worker import Delivery
from standins.slack import SlackStandIn
from tests.harness.inprocess import ORIGIN

TOKEN = "xoxb-idle-test-token"
TEXT = "Secret `API_KEY` was added to hook `h1`."


def test_a_claim_made_while_idle_looks_for_due_rows_is_not_idle(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The worker has found a due row and is about to claim it when ``idle()`` starts: it
    sees nothing in flight, then the claim lands before its query runs, which finds no row
    free. Before the fix that read as idle, and a drain went on while the post was still
    being sent (a test saw no approval post; a shutdown counted the message as finished)."""
    with SlackStandIn(bot_token=TOKEN) as slack:
        slack.add_channel(ORIGIN, "platform")
        slack.slow("chat.postMessage", 1.0)  # the worker is mid-send while idle() looks
        store = Store(db_url)
        store.migrate()
        now = datetime.now(UTC)
        client = WebClient(token=TOKEN, base_url=slack.api_url)
        approval = Notifier(ORIGIN, None).approval
        delivery = Delivery(client, store, lambda: now, approval=approval)
        with store.transaction() as tx:
            tx.enqueue([Message(Method.CONFIRM, "hsr_1", channel=ORIGIN, text=TEXT)], now)

        found, go, claimed = threading.Event(), threading.Event(), threading.Event()
        pauses = 0

        def pause(_until: float) -> None:
            nonlocal pauses
            pauses += 1
            if pauses == 2:  # the first is before the look for due rows, this one before a claim
                found.set()
                assert go.wait(5)

        real_claim, real_ready = store.outbox_claim, store.outbox_ready

        def claim(*args: Any) -> Any:
            row = real_claim(*args)
            claimed.set()
            return row

        def ready_once_claimed(*args: Any) -> Any:
            go.set()  # idle() has checked what is in flight: let the worker claim now
            assert claimed.wait(5)
            return real_ready(*args)

        delivery.pause = pause
        monkeypatch.setattr(store, "outbox_claim", claim)
        worker = threading.Thread(target=delivery.deliver_due)
        worker.start()
        try:
            assert found.wait(5)
            monkeypatch.setattr(store, "outbox_ready", ready_once_claimed)
            assert not delivery.idle()
        finally:
            go.set()
            worker.join(10)
            monkeypatch.setattr(store, "outbox_ready", real_ready)
        assert delivery.idle()
        assert [m["text"] for m in slack.messages(ORIGIN)] == [TEXT]
        assert store.outbox_counts() == {OutboxState.SENT: 1}
        store.close()
