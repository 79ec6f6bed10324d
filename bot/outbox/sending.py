"""How each outbox method is sent to Slack, and whether Slack's answer means retry or refused."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from sqlalchemy import Row

from bot.approvals.states import State
from bot.db.models import SecretRequest
from bot.db.store import Store
from bot.logs import get_logger
from bot.outbox.messages import APPROVAL_POSTS, Message, Method
from bot.outbox.notify import not_posted
from bot.outbox.origin import CannotCheck, OriginGuard
from bot.outbox.readback import (
    CannotRead,
    Identity,
    OwnIdentity,
    ReadTooSlow,
    earlier_copy,
    tag,
)
from bot.slack.web_client import short_lived

log = get_logger(__name__)
# Channels the bot can't use until someone invites it: the approval post waits for that.
UNREACHABLE = {"not_in_channel", "channel_not_found", "is_archived", "restricted_action"}
# Slack's own words for "try again later" when it answers 200 with ok=false.
TRANSIENT = {
    "ratelimited",
    "internal_error",
    "fatal_error",
    "service_unavailable",
    "request_timeout",
}
# Answers to a post that say Slack did not take it. Anything else (a timeout, a 5xx,
# ``fatal_error``), like a worker dying mid-call, may have posted it.
NOT_TAKEN = UNREACHABLE | {"ratelimited"}
# A read-back gets this long, well inside the lease, so no other worker takes the row over
# while this one is still looking.
READ_WITHIN = 10.0
READ_TIMEOUT = 5
# An approval request whose stored request no message can show (Refused, never retried).
RENDER_FAILED = "render_failed"
# An approval channel the bot is not in yet is tried again this often (as the old sweep did).
REPOST_EVERY = 60.0
# A message for the request's channel that went to the requester instead (bot.outbox.origin).
SENT_DIRECTLY = "sent_directly"
# A message that may be in Slack already, from a post of a crashed or timed-out attempt.
WAITING_FOR_POST = "waiting_for_post"


class Retry(Exception):
    """Slack could not take the message now (5xx, 429, timeout): send it again later."""

    def __init__(self, code: str, after: float | None = None) -> None:
        super().__init__(code)
        self.code, self.after = code, after


class Refused(Exception):
    """Slack answered that this message can never be delivered as it is."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


@dataclass
class Done:
    """A delivered message: where an approval post landed and what to send next."""

    approval: tuple[str, str] | None = None
    then: list[Message] = field(default_factory=list)
    note: str | None = None


@dataclass
class Attempt:
    """One attempt at an outbox row: the lease it holds, and since when the message may
    already be in Slack (then a post looks for that copy first)."""

    row_id: int
    began: datetime
    held: datetime
    unsure_since: datetime | None
    cleared: bool = False  # a read-back found no earlier copy
    posted: bool = False  # chat.postMessage was sent in this attempt

    @classmethod
    def of(cls, row: Row[Any], held: datetime) -> Attempt:
        """The attempt a freshly claimed row is making (its ``due_at`` is the claim time)."""
        return cls(row.id, row.due_at, held, row.unsure_since)

    def unsure_after(self, code: str) -> datetime | None:
        """What the row's ``unsure_since`` becomes when this attempt fails with ``code``: an
        earlier copy stays possible until a read-back found none, and a post of this attempt
        whose answer did not say "not taken" may be in Slack too."""
        earlier = None if self.cleared else self.unsure_since
        if self.posted and code not in NOT_TAKEN:
            return earlier or self.began
        return earlier


def fallback(message: Message) -> Message | None:
    """What a refused message is sent as instead: an ephemeral or a public confirmation
    becomes a DM; other methods have none."""
    if message.method is Method.TELL:
        return replace(message, method=Method.DM)
    if message.method is Method.CONFIRM:
        return Message(
            Method.DM, message.request_id, user=message.user, text=message.fallback or ""
        )
    return None


def after_refusal(message: Message, code: str) -> list[Message]:
    """What a message that can never be delivered leaves to send: the requester is told
    when it was their approval request."""
    if message.method in APPROVAL_POSTS and message.user:
        return [tell(message, not_posted(message.request_id, code, code == RENDER_FAILED))]
    return []


def tell(message: Message, text: str) -> Message:
    """An ephemeral note to whoever the message concerns, where they asked."""
    return Message(
        Method.TELL, message.request_id, channel=message.origin, user=message.user, text=text
    )


class Sender:
    """Sends one outbox message by its method (raises ``Retry`` or ``Refused``)."""

    def __init__(
        self,
        client: WebClient,
        store: Store,
        approval: Callable[[SecretRequest], tuple[str, list[dict[str, Any]]]],
    ) -> None:
        self.client = client
        self.store = store
        self.approval = approval  # renders an approval post from its request (Notifier.approval)
        self.origin = OriginGuard(self._channel_info)
        # The read-back adopts only posts carrying the bot's own ids (issue 23.5).
        self.own = OwnIdentity(lambda: Identity.of(self.client.auth_test()))
        self.read_within = READ_WITHIN  # inside the worker's lease, also a shortened one

    def send(self, message: Message, attempt: Attempt) -> Done:
        """Send ``message`` within ``attempt``."""
        if message.method in APPROVAL_POSTS:
            return self._post_approval(message, attempt)
        if message.method is Method.UPDATE_APPROVAL:
            return self._update_approval(message)
        if message.method is Method.UPDATE_PENDING_APPROVAL:
            request = self.store.get(message.request_id)
            if request is None or request.state != State.PENDING:
                return Done(note="decided_before_updated")  # its outcome shows instead
            return self._update_approval(message)
        routed = self.origin.route(message)  # nothing in a channel shared outside
        if routed.method is Method.TELL:
            self._call(
                "chat_postEphemeral", channel=routed.channel, user=routed.user, text=routed.text
            )
        elif routed.method is Method.DM:
            opened = self._call("conversations_open", users=routed.user)
            self._post(routed, attempt, str(opened["channel"]["id"]))
        else:
            self._post(routed, attempt)
        return Done(note=None if routed is message else SENT_DIRECTLY)

    def _post_approval(self, message: Message, attempt: Attempt) -> Done:
        request = self.store.get(message.request_id)
        if request is None or request.state != State.PENDING:
            return Done(note="decided_before_posted")  # nobody needs buttons any more
        # Rendered now, from the request (an approval row without text can't be sent as is).
        if message.method is Method.POST_STORED_APPROVAL or not message.text:
            try:
                text, body = self.approval(request)
            except Exception:  # a stored request no message can show: nobody waits in silence
                log.exception("approval request could not be rendered")
                raise Refused(RENDER_FAILED) from None
            message = replace(message, text=text, blocks=body)
        try:
            posted = self._post(message, attempt)
        except Refused as refused:
            if refused.code not in UNREACHABLE:
                raise
            raise Retry(refused.code, REPOST_EVERY) from None
        then = [tell(message, message.then)] if message.then else []
        return Done(approval=(str(posted["channel"]), str(posted["ts"])), then=then)

    def _update_approval(self, message: Message) -> Done:
        where = self._approval_copy(message)
        if where is not None:
            channel, ts = where
            self._call(
                "chat_update", channel=channel, ts=ts, text=message.text, blocks=message.blocks
            )
            return Done()
        if self.store.outbox_posting(message.request_id):
            raise Retry(WAITING_FOR_POST)  # an update enqueued before its post landed
        return Done(note="never_posted")

    def _approval_copy(self, message: Message) -> tuple[str, str] | None:
        """Which approval message to update: the copy the message names (a stale duplicate,
        by its ts), else the one whose ts the request stored when its post landed."""
        if message.channel and message.ts:
            return message.channel, message.ts
        request = self.store.get(message.request_id)
        if request is not None and request.approval_channel and request.approval_ts:
            return request.approval_channel, request.approval_ts
        return None

    def _post(self, message: Message, attempt: Attempt, channel: str | None = None) -> Any:
        """``chat.postMessage`` tagged with the row's metadata; when an earlier attempt may
        have posted it, the copy found in the channel instead."""
        channel = channel or message.channel or ""
        if attempt.unsure_since is not None:
            ts = self._earlier_copy(channel, message, attempt)
            if ts is not None:
                log.info("found the copy an earlier attempt posted", method=message.method)
                return {"channel": channel, "ts": ts}
        attempt.posted = True
        return self._call(
            "chat_postMessage",
            channel=channel,
            text=message.text,
            blocks=message.blocks or None,
            unfurl_links=False,
            metadata=tag(message.request_id, attempt.row_id),
        )

    def _earlier_copy(self, channel: str, message: Message, attempt: Attempt) -> str | None:
        """The copy an earlier attempt posted, if this bot can read the channel back; a read
        Slack can't answer now (429, 5xx, too slow) is retried later, still unsure."""
        since = attempt.unsure_since
        if since is None:  # nothing may be in Slack yet: there is nothing to look for
            return None
        history = self._history()
        deadline = time.monotonic() + self.read_within
        try:
            found = earlier_copy(
                history,
                channel,
                message.request_id,
                attempt.row_id,
                since,
                deadline,
                own=self.own.get(),
            )
        except CannotRead as cannot:
            log.info(
                "cannot look for an earlier copy, posting again",
                method=message.method,
                error=cannot.code,
            )
            return None
        except ReadTooSlow:
            raise Retry("read_back_too_slow") from None
        attempt.cleared = found is None
        return found

    def _history(self) -> Callable[..., Any]:
        """``conversations.history`` through a client that never sleeps inside the lease: a
        429 comes back at once and the outbox waits out its Retry-After instead."""
        client = short_lived(self.client, READ_TIMEOUT, retry_handlers=[])

        def history(**kwargs: Any) -> Any:
            try:
                return _call_on(client, "conversations_history", **kwargs)
            except Refused as refused:
                raise CannotRead(refused.code) from None

        return history

    def _channel_info(self, channel: str) -> dict[str, Any]:
        """``conversations.info``'s channel; a refusal (no ``channels:read``/``groups:read``,
        ``channel_not_found``) is ``CannotCheck``, a 429 or 5xx a ``Retry``."""
        try:
            info = self._call("conversations_info", channel=channel).get("channel")
        except Refused as refused:
            raise CannotCheck(refused.code) from None
        if not isinstance(info, dict):  # an answer that describes nothing: assume the worst
            raise CannotCheck("no_channel_in_answer")
        return info

    def _call(self, method: str, **kwargs: Any) -> Any:
        return _call_on(self.client, method, **kwargs)


def _call_on(client: WebClient, method: str, **kwargs: Any) -> Any:
    try:
        return getattr(client, method)(**kwargs)
    except SlackApiError as error:
        raise _classified(error) from None
    except Exception as error:  # timeouts, refused connections: Slack may be back soon
        raise Retry(type(error).__name__) from None


def _classified(error: SlackApiError) -> Retry | Refused:
    status = error.response.status_code
    code = str(error.response.get("error") or f"http_{status}")
    if status == 429:
        headers = {k.lower(): v for k, v in (error.response.headers or {}).items()}
        after = headers.get("retry-after")
        return Retry(code, float(after) if after and str(after).isdigit() else None)
    if status >= 500 or code in TRANSIENT:
        return Retry(code)
    return Refused(code)
