"""The outbox's delivery worker: sends queued Slack messages until Slack takes each one."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from sqlalchemy import Row

from bot.approvals.states import State
from bot.db.models import SecretRequest
from bot.db.store import Store
from bot.logs import get_logger
from bot.outbox.messages import APPROVAL_POSTS, Message, Method
from bot.outbox.readback import CannotRead, ReadTooSlow, earlier_copy, tag
from bot.serve.yielding import YIELD_FOR
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


@dataclass(frozen=True)
class Backoff:
    """Exponential backoff with jitter: base · 2^(attempt-1), at most ``cap`` seconds."""

    base: float = 1.0
    cap: float = 60.0

    def delay(self, attempts: int, retry_after: float | None = None) -> float:
        """Seconds before the next attempt; Slack's Retry-After wins when it says more."""
        wait = min(self.cap, self.base * 2.0 ** max(0, attempts - 1))
        wait *= random.uniform(0.5, 1.0)  # noqa: S311 - jitter, not cryptography
        return max(wait, retry_after or 0.0)


class Delivery:
    """Claims due outbox rows with a compare-and-set lease (any replica may) and sends them."""

    def __init__(
        self,
        client: WebClient,
        store: Store,
        now: Callable[[], datetime],
        *,
        approval: Callable[[SecretRequest], tuple[str, list[dict[str, Any]]]],
        on_dead: Callable[[str, str], None] | None = None,
    ) -> None:
        self.client = client
        self.approval = approval  # renders an approval post from its request (Notifier.approval)
        self.store = store
        self.now = now
        self.on_dead = on_dead
        self.backoff = Backoff()
        # Longer than a Slack call with the SDK's retries; a dead worker's rows wait this long.
        self.lease = timedelta(seconds=30)
        self.poll = 1.0
        self._wake = threading.Event()
        self._lock = threading.Lock()
        self._in_flight = 0
        self._taken = 0  # claims begun so far: idle() sees one that began during its look
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        # Called before each message with the moment a pass stops yielding (bot.serve.yielding).
        self.pause: Callable[[float], None] = lambda _until: None
        self._yield_until = 0.0  # when the current pass stops yielding (time.monotonic)
        store.on_enqueue = self._wake.set

    def start(self) -> None:
        """Deliver in a thread of this process, woken by every commit that queued a message."""
        self._thread = threading.Thread(target=self._loop, name="outbox", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the thread once it finished the message in hand."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def idle(self) -> bool:
        """Whether nothing is due now and nothing is in this process's hands (later retries,
        and rows a dead process still holds until its lease lapses, don't count).

        A row found but not claimed yet is due; one claimed while the look ran is not, so a
        claim begun meanwhile (between the in-flight check and the query) means not idle."""
        with self._lock:
            if self._in_flight:
                return False
            taken = self._taken
        if self.store.outbox_ready(self.now(), 1):
            return False
        with self._lock:
            return not self._in_flight and self._taken == taken

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.deliver_due()
            except Exception:
                log.exception("outbox delivery failed")
            self._wake.wait(self.poll)
            self._wake.clear()

    def deliver_due(self, batch: int = 50) -> int:
        """Send every message due now; how many were settled (sent, retried later or dead)."""
        settled = 0
        self._yield_until = time.monotonic() + YIELD_FOR
        while True:
            # Even the look for due rows waits: the commit that woke this pass is a request's.
            self.pause(self._yield_until)
            done = 0
            for row_id in self.store.outbox_ready(self.now(), batch):
                self.pause(self._yield_until)
                done += self._take(row_id, self.now())
            settled += done
            if not done:
                return settled

    def _take(self, row_id: int, now: datetime) -> int:
        """Claim and attempt one row; how many rows that settled (with what it sent next)."""
        with self._lock:
            self._in_flight += 1
            self._taken += 1
        try:
            held = now + self.lease
            row = self.store.outbox_claim(row_id, now, held)
            return 0 if row is None else self._attempt(row, Attempt.of(row, held))
        finally:
            with self._lock:
                self._in_flight -= 1

    def _attempt(self, row: Row[Any], attempt: Attempt) -> int:
        """One delivery attempt; how many rows it settled: none when it must wait for its
        approval post, more than one when what follows it was sent too."""
        message = Message.load(row.method, row.request_id, row.payload)
        try:
            done = self._send(message, attempt)
        except Retry as retry:
            if retry.code == "waiting_for_post":
                self.store.outbox_release(row.id, attempt.held)
                return False
            return self._retry(row, attempt, message, retry)
        except Refused as refused:
            return self._refused(row, attempt, message, refused.code)
        now = self.now()
        held = now + self.lease
        following = self.store.outbox_done(
            row.id, attempt.held, now, done.then, done.approval, done.note, hold_until=held
        )
        settled = 1
        for claimed in following:  # claimed in that transaction: sent now, no claim of its own
            self.pause(self._yield_until)
            settled += self._attempt(claimed, Attempt.of(claimed, held))
        return settled

    def _retry(self, row: Row[Any], attempt: Attempt, message: Message, retry: Retry) -> bool:
        now = self.now()
        due = now + timedelta(seconds=self.backoff.delay(row.attempts, retry.after))
        log.info("slack message will be retried", method=row.method, error=retry.code)
        then: list[Message] = []
        if retry.code in UNREACHABLE and row.attempts == 1 and message.unreachable:
            then = [_tell(message, message.unreachable)]
        unsure = attempt.unsure_after(retry.code)
        self.store.outbox_retry(row.id, attempt.held, now, due, retry.code, then, unsure)
        return True

    def _refused(self, row: Row[Any], attempt: Attempt, message: Message, code: str) -> bool:
        """A permanent error: fall back to a DM where there is one, else give up visibly."""
        if message.method is Method.TELL:
            return self._rewrite(row, attempt, replace(message, method=Method.DM), code)
        if message.method is Method.CONFIRM:
            dm = Message(
                Method.DM, message.request_id, user=message.user, text=message.fallback or ""
            )
            return self._rewrite(row, attempt, dm, code)
        then: list[Message] = []
        if message.method in APPROVAL_POSTS and message.user:
            then = [
                _tell(
                    message,
                    f"The approval request `{message.request_id}` could not be posted: "
                    + (
                        "the bot could not build the message."
                        if code == RENDER_FAILED
                        else f"Slack answered `{code}`."
                    )
                    + " Ask an administrator to check the bot.",
                )
            ]
        log.error("slack message could not be delivered", method=row.method, error=code)
        if self.on_dead is not None:
            self.on_dead(row.method, code)
        self.store.outbox_dead(row.id, attempt.held, self.now(), code, then)
        return True

    def _rewrite(self, row: Row[Any], attempt: Attempt, message: Message, code: str) -> bool:
        log.info("slack message falls back to a DM", method=row.method, error=code)
        self.store.outbox_rewrite(row.id, attempt.held, message, self.now())
        return True

    def _send(self, message: Message, attempt: Attempt) -> Done:
        if message.method in APPROVAL_POSTS:
            return self._post_approval(message, attempt)
        if message.method is Method.UPDATE_APPROVAL:
            return self._update_approval(message)
        if message.method is Method.TELL:
            self._call(
                "chat_postEphemeral", channel=message.channel, user=message.user, text=message.text
            )
        elif message.method is Method.DM:
            opened = self._call("conversations_open", users=message.user)
            self._post(message, attempt, str(opened["channel"]["id"]))
        else:
            self._post(message, attempt)
        return Done()

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
        then = [_tell(message, message.then)] if message.then else []
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
            raise Retry("waiting_for_post")  # an update enqueued before its post landed
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
        # Well inside the lease, also when tests shorten it.
        deadline = time.monotonic() + min(READ_WITHIN, self.lease.total_seconds() / 3)
        try:
            found = earlier_copy(
                history, channel, message.request_id, attempt.row_id, since, deadline
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
                return self._call_on(client, "conversations_history", **kwargs)
            except Refused as refused:
                raise CannotRead(refused.code) from None

        return history

    def _call(self, method: str, **kwargs: Any) -> Any:
        return self._call_on(self.client, method, **kwargs)

    @staticmethod
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


def _tell(message: Message, text: str) -> Message:
    return Message(
        Method.TELL, message.request_id, channel=message.origin, user=message.user, text=text
    )
