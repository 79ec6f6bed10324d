"""A post whose fate is unknown is looked for before it is sent again (message metadata read
back with conversations.history), and posted again only when the bot can't read the channel."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.db.models import OutboxState, SecretRequest
from bot.db.store import Store
from bot.outbox.messages import Message, Method
from bot.outbox.notify import Notifier
from bot.outbox.readback import EVENT_TYPE, Identity
from bot.outbox.worker import Delivery
from standins.slack import SlackStandIn
from tests.harness.inprocess import APPROVALS, ORIGIN, REQUESTER
from tests.unit.factories import secret_request

TOKEN = "xoxb-readback-test-token"
HISTORY = ("channels:history", "groups:history", "im:history")
CONFIRMATION = "Secret `API_KEY` was added to hook `h1` by <@U0RITA>, approved by <@U0ALEX>."


class Clock:
    """Time the test moves on: a worker's lease lapses when the test says so."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@dataclass
class World:
    slack: SlackStandIn
    store: Store
    delivery: Delivery
    clock: Clock

    def confirmations(self) -> list[str]:
        return [m["text"] for m in self.slack.messages(ORIGIN) if m["text"] == CONFIRMATION]

    def die_mid_post(self) -> None:
        """A worker claims the confirmation and dies after Slack took the post, before it
        recorded that: Slack has the copy (with its metadata); the row is held by a lease."""
        (row_id,) = self.store.outbox_ready(self.clock(), 10)
        claimed = self.store.outbox_claim(row_id, self.clock(), self.clock() + self.delivery.lease)
        assert claimed is not None
        client = WebClient(token=TOKEN, base_url=self.slack.api_url)
        client.chat_postMessage(
            channel=ORIGIN,
            text=CONFIRMATION,
            metadata={
                "event_type": EVENT_TYPE,
                "event_payload": {"request_id": "hsr_1", "outbox_id": row_id},
            },
        )
        self.clock.advance(self.delivery.lease.total_seconds() + 1)


@contextmanager
def world(db_url: str, *scopes: str, queued_ago: float = 0.0) -> Iterator[World]:
    """A confirmation queued ``queued_ago`` seconds ago (Slack's clock is the real one)."""
    with SlackStandIn(bot_token=TOKEN) as slack:
        slack.add_user(REQUESTER, "rita")
        slack.add_channel(ORIGIN, "platform")
        slack.add_channel(APPROVALS, "secret-approvals")
        slack.grant(*scopes)
        store = Store(db_url)
        store.migrate()
        clock = Clock()
        client = WebClient(token=TOKEN, base_url=slack.api_url)
        delivery = Delivery(client, store, clock, approval=Notifier(APPROVALS, None).approval)
        with store.transaction() as tx:
            message = Message(Method.CONFIRM, "hsr_1", channel=ORIGIN, text=CONFIRMATION)
            tx.enqueue([message], clock() - timedelta(seconds=queued_ago))
        try:
            yield World(slack, store, delivery, clock)
        finally:
            store.close()


def test_a_confirmation_cut_off_by_a_crash_is_found_not_posted_twice(db_url: str) -> None:
    """With the history scopes granted, the next worker finds the dead worker's copy by its
    metadata and marks the row sent: one confirmation in the channel."""
    with world(db_url, *HISTORY) as w:
        w.die_mid_post()
        assert w.delivery.deliver_due() == 1
        assert w.confirmations() == [CONFIRMATION]
        (history,) = w.slack.calls_to("conversations.history")
        assert history.ok and history.args["channel"] == ORIGIN
        assert len(w.slack.calls_to("chat.postMessage")) == 1  # the dead worker's only
        assert w.store.outbox_counts() == {OutboxState.SENT: 1}
        w.clock.advance(120)
        assert w.delivery.deliver_due() == 0 and w.confirmations() == [CONFIRMATION]


def test_another_app_s_post_with_matching_metadata_is_not_adopted(db_url: str) -> None:
    """A worker dies before its post reached Slack; another app in the workspace then posts
    a message carrying the same metadata. The read-back sees it, but only the bot's own posts
    (auth.test's bot_id and app_id) are copies: the bot posts its own confirmation."""
    with world(db_url, *HISTORY) as w:
        (row_id,) = w.store.outbox_ready(w.clock(), 10)
        assert w.store.outbox_claim(row_id, w.clock(), w.clock() + w.delivery.lease)
        metadata = {
            "event_type": EVENT_TYPE,
            "event_payload": {"request_id": "hsr_1", "outbox_id": row_id},
        }
        foreign = {"text": CONFIRMATION, "metadata": metadata}
        w.slack.post_as_other_app(ORIGIN, foreign, bot_id="B0OTHER", app_id="A0OTHER")
        w.clock.advance(w.delivery.lease.total_seconds() + 1)
        assert w.delivery.deliver_due() == 1
        assert len(w.slack.calls_to("conversations.history")) == 1  # it did look
        (own_post,) = w.slack.calls_to("chat.postMessage")
        assert own_post.ok and w.confirmations() == [CONFIRMATION, CONFIRMATION]
        mine = [m for m in w.slack.messages(ORIGIN) if m.get("bot_id") == w.slack.bot_id]
        assert [m["app_id"] for m in mine] == [w.slack.app_id]
        assert w.store.outbox_counts() == {OutboxState.SENT: 1}


def test_the_bot_s_identity_comes_from_auth_test_and_a_copy_needs_both_ids() -> None:
    """auth.test names the bot's bot_id and app_id (the stand-in as Slack); a message is the
    bot's own only with its bot_id, and with its app_id when the message carries one."""
    with SlackStandIn(bot_token=TOKEN) as slack:
        own = Identity.of(WebClient(token=TOKEN, base_url=slack.api_url).auth_test())
        assert own == Identity(slack.bot_id, slack.app_id)
    assert own.posted({"bot_id": slack.bot_id, "app_id": slack.app_id})
    assert own.posted({"bot_id": slack.bot_id})
    assert not own.posted({"bot_id": slack.bot_id, "app_id": "A0OTHER"})
    assert not own.posted({"bot_id": "B0OTHER", "app_id": slack.app_id})
    assert not own.posted({"user": "U0RITA"})
    assert Identity.of({"user_id": "U0RITA"}) is None  # a user token's answer names no bot


def test_without_the_history_scopes_it_is_posted_again_and_nothing_is_lost(
    db_url: str,
) -> None:
    """Without them Slack answers missing_scope naming the scope: the bot posts again (the
    documented at-least-once), it does not give up and it does not retry the read."""
    with world(db_url) as w:
        w.die_mid_post()
        w.delivery.deliver_due()
        (history,) = w.slack.calls_to("conversations.history")
        assert history.response["error"] == "missing_scope"
        assert history.response["needed"] == "channels:history"
        assert w.confirmations() == [CONFIRMATION, CONFIRMATION]
        assert w.store.outbox_counts() == {OutboxState.SENT: 1}


def test_a_post_whose_answer_timed_out_is_found_on_the_retry(db_url: str) -> None:
    """No crash: Slack took the post but answered after the client gave up. The retry reads
    the channel back and finds it, instead of posting a second copy."""
    with world(db_url, *HISTORY) as w:
        w.delivery.client = WebClient(token=TOKEN, base_url=w.slack.api_url, timeout=1)
        w.slack.slow("chat.postMessage", 1.5)
        w.delivery.deliver_due()  # times out; Slack posts it anyway
        w.slack.slow("chat.postMessage", 0.0)
        w.slack.wait_for_message(ORIGIN, lambda m: m["text"] == CONFIRMATION, timeout=5)
        w.clock.advance(120)
        w.delivery.deliver_due()
        assert w.confirmations() == [CONFIRMATION]
        assert [c.ok for c in w.slack.calls_to("conversations.history")] == [True]


def test_a_first_attempt_or_a_refused_one_never_reads_history(db_url: str) -> None:
    """A read-back only follows an attempt whose fate is unknown: a first attempt, and a retry
    after Slack said 429, just post."""
    with world(db_url, *HISTORY) as w:
        w.slack.ratelimit_next("chat.postMessage", 1)
        w.delivery.deliver_due()
        w.clock.advance(120)
        w.delivery.deliver_due()
        assert w.confirmations() == [CONFIRMATION]
        assert w.slack.calls_to("conversations.history") == []


def test_the_approval_post_found_again_keeps_its_ts_for_the_update(db_url: str) -> None:
    """The approval request found by its metadata gives the request its ts, so the update once
    decided edits that one message."""
    with world(db_url, *HISTORY) as w:
        w.store.outbox_dead(1, None, w.clock(), "test_setup", ())  # only the approval post here
        with w.store.transaction() as tx:
            tx.session.add(_pending("hsr_2", w.clock()))
            tx.enqueue(
                [Message(Method.POST_APPROVAL, "hsr_2", channel=APPROVALS, text="hi")], w.clock()
            )
        (row_id,) = w.store.outbox_ready(w.clock(), 10)
        assert w.store.outbox_claim(row_id, w.clock(), w.clock() + w.delivery.lease) is not None
        posted = WebClient(token=TOKEN, base_url=w.slack.api_url).chat_postMessage(
            channel=APPROVALS,
            text="hi",
            metadata={
                "event_type": EVENT_TYPE,
                "event_payload": {"request_id": "hsr_2", "outbox_id": row_id},
            },
        )
        w.clock.advance(w.delivery.lease.total_seconds() + 1)
        w.delivery.deliver_due()
        assert len(w.slack.messages(APPROVALS)) == 1
        request = w.store.get("hsr_2")
        assert request is not None
        assert (request.approval_channel, request.approval_ts) == (APPROVALS, posted["ts"])


def _pending(request_id: str, now: datetime) -> SecretRequest:
    return secret_request(id=request_id, created_at=now, expires_at=now + timedelta(hours=1))


@pytest.mark.parametrize("scope", HISTORY)
def test_the_standin_asks_for_the_scope_of_each_kind_of_conversation(scope: str) -> None:
    """conversations.history needs channels:history for public channels, groups:history for
    private ones, im:history for direct messages; with it, the bot reads what it posted."""
    with SlackStandIn(bot_token=TOKEN) as slack:
        slack.add_user(REQUESTER, "rita")
        slack.add_channel("C0PUBLIC", "public")
        slack.add_channel("G0PRIVATE", "private")
        channel = {
            "channels:history": "C0PUBLIC",
            "groups:history": "G0PRIVATE",
            "im:history": slack.im_channel(REQUESTER),
        }[scope]
        client = WebClient(token=TOKEN, base_url=slack.api_url)
        client.chat_postMessage(channel=channel, text="one")
        with pytest.raises(SlackApiError) as error:
            client.conversations_history(channel=channel)
        assert error.value.response["needed"] == scope
        slack.grant(scope)
        assert [m["text"] for m in client.conversations_history(channel=channel)["messages"]] == [
            "one"
        ]


def test_the_standin_pages_newest_first_and_shows_metadata_only_when_asked() -> None:
    """The window is exclusive of oldest unless inclusive; pages follow next_cursor; a bot
    outside a public channel is told not_in_channel."""
    with SlackStandIn(bot_token=TOKEN) as slack:
        slack.add_channel("C0PUBLIC", "public")
        slack.add_channel("C0OUTSIDE", "outside", bot_is_member=False)
        slack.grant("channels:history")
        client = WebClient(token=TOKEN, base_url=slack.api_url)
        tag = {"event_type": EVENT_TYPE, "event_payload": {"n": 1}}
        sent = [
            client.chat_postMessage(channel="C0PUBLIC", text=str(n), metadata=tag)["ts"]
            for n in range(5)
        ]
        first = client.conversations_history(channel="C0PUBLIC", oldest=sent[0], limit=3)
        assert [m["text"] for m in first["messages"]] == ["4", "3", "2"]
        assert first["has_more"] and "metadata" not in first["messages"][0]
        cursor = first["response_metadata"]["next_cursor"]
        rest = client.conversations_history(
            channel="C0PUBLIC", oldest=sent[0], limit=3, cursor=cursor, include_all_metadata=True
        )
        assert [m["text"] for m in rest["messages"]] == ["1"] and not rest["has_more"]
        assert rest["messages"][0]["metadata"] == tag
        inclusive = client.conversations_history(channel="C0PUBLIC", oldest=sent[0], inclusive=True)
        assert len(inclusive["messages"]) == 5
        with pytest.raises(SlackApiError) as error:
            client.conversations_history(channel="C0OUTSIDE")
        assert error.value.response["error"] == "not_in_channel"


def test_a_read_back_slack_rate_limits_leaves_the_row_unsure_never_posted_blind(
    db_url: str,
) -> None:
    """A 429 on conversations.history (commercial non-Marketplace apps get one call a minute)
    is waited out, the row still unsure: the next attempt reads again and finds the copy. The
    read looks from the dead attempt's start, not from when the row was queued an hour before."""
    with world(db_url, *HISTORY, queued_ago=3600) as w:  # a database outage held it, say
        crashed_at = w.clock()
        w.die_mid_post()
        w.slack.ratelimit_next("conversations.history", 1, retry_after=30)
        w.delivery.deliver_due()
        assert w.confirmations() == [CONFIRMATION]
        w.clock.advance(31)
        w.delivery.deliver_due()
        assert w.confirmations() == [CONFIRMATION]
        limited, read = w.slack.calls_to("conversations.history")
        assert limited.status == 429 and read.ok
        assert float(read.args["oldest"]) >= (crashed_at - timedelta(minutes=2)).timestamp() - 1
        assert w.store.outbox_counts() == {OutboxState.SENT: 1}


def test_a_worker_whose_lease_was_taken_over_settles_nothing(db_url: str) -> None:
    """Worker A's lease lapses and B takes the row over: A's late "sent" or "retry" changes
    nothing (B's attempt decides), and B's is recorded."""
    with world(db_url) as w:
        (row_id,) = w.store.outbox_ready(w.clock(), 10)
        held_a = w.clock() + w.delivery.lease
        assert w.store.outbox_claim(row_id, w.clock(), held_a) is not None
        w.clock.advance(w.delivery.lease.total_seconds() + 1)
        held_b = w.clock() + w.delivery.lease
        taken = w.store.outbox_claim(row_id, w.clock(), held_b)
        assert taken is not None and taken.unsure_since is not None  # A may have posted
        w.store.outbox_retry(row_id, held_a, w.clock(), w.clock(), "too_late")
        w.store.outbox_done(row_id, held_a, w.clock(), hold_until=held_a)
        assert w.store.outbox_counts() == {OutboxState.QUEUED: 1}
        assert w.store.outbox_ready(w.clock(), 10) == []  # still B's
        w.store.outbox_done(row_id, held_b, w.clock(), hold_until=held_b)
        assert w.store.outbox_counts() == {OutboxState.SENT: 1}


def _approval_with_note(w: World) -> None:
    """Only an approval post queued, whose landing is followed by a note to the requester."""
    w.store.outbox_dead(1, None, w.clock(), "test_setup", ())
    with w.store.transaction() as tx:
        tx.session.add(_pending("hsr_2", w.clock()))
        post = Message(
            Method.POST_APPROVAL,
            "hsr_2",
            channel=APPROVALS,
            user=REQUESTER,
            origin=ORIGIN,
            text="hi",
            then="Your request waits in #secret-approvals.",
        )
        tx.enqueue([post], w.clock())


def test_the_note_after_an_approval_post_is_claimed_with_the_post_s_sent_mark(
    db_url: str,
) -> None:
    """The note that follows a landed approval post is queued already held by the worker in
    the transaction that marks the post sent, and sent right after without a claim of its own."""
    with world(db_url) as w:
        _approval_with_note(w)
        claimed: list[int] = []
        claim = w.store.outbox_claim

        def counted(row_id: int, *args: datetime) -> object:
            claimed.append(row_id)
            return claim(row_id, *args)

        w.store.outbox_claim = counted  # type: ignore[assignment, method-assign]
        assert w.delivery.deliver_due() == 2  # the post and its note, both settled
        assert len(w.slack.messages(APPROVALS)) == 1
        notes = [e["text"] for e in w.slack.ephemerals(REQUESTER)]
        assert notes == ["Your request waits in #secret-approvals."]
        assert len(claimed) == 1  # the post's claim; the note needed none
        assert w.store.outbox_counts() == {"dead": 1, "sent": 2}


def test_a_note_held_by_a_worker_that_died_is_sent_once_its_lease_lapses(db_url: str) -> None:
    """A worker that marked the post sent (and took its note) dies before sending the note:
    nobody else takes it while the lease holds; after that the next pass sends it once."""
    with world(db_url) as w:
        _approval_with_note(w)
        (row_id,) = w.store.outbox_ready(w.clock(), 10)
        held = w.clock() + w.delivery.lease
        assert w.store.outbox_claim(row_id, w.clock(), held) is not None
        note = Message(
            Method.TELL, "hsr_2", channel=ORIGIN, user=REQUESTER, text="Your request waits."
        )
        taken = w.store.outbox_done(
            row_id, held, w.clock(), [note], (APPROVALS, "1.000001"), hold_until=held
        )
        assert [row.method for row in taken] == [Method.TELL]
        assert w.store.outbox_ready(w.clock(), 10) == []  # held by the dead worker
        w.delivery.deliver_due()
        assert w.slack.ephemerals(REQUESTER) == []
        w.clock.advance(w.delivery.lease.total_seconds() + 1)
        w.delivery.deliver_due()
        w.delivery.deliver_due()
        assert [e["text"] for e in w.slack.ephemerals(REQUESTER)] == ["Your request waits."]
        assert w.store.outbox_counts() == {"dead": 1, "sent": 2}
