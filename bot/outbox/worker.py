"""The outbox's delivery loop: claims due rows under a lease, sends each, settles the row."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from slack_sdk import WebClient
from sqlalchemy import Row

from bot.db.models import SecretRequest
from bot.db.store import Store
from bot.latency.yielding import YIELD_FOR
from bot.logs import get_logger
from bot.outbox.messages import Message
from bot.outbox.sending import (
    UNREACHABLE,
    WAITING_FOR_POST,
    Attempt,
    Refused,
    Retry,
    Sender,
    after_refusal,
    fallback,
    tell,
)

log = get_logger(__name__)


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
        self.sender = Sender(client, store, approval)
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
        # Called before each message with the moment a pass stops yielding (bot.latency.yielding).
        self.pause: Callable[[float], None] = lambda _until: None
        self._yield_until = 0.0  # when the current pass stops yielding (time.monotonic)
        store.on_enqueue = self._wake.set

    @property
    def client(self) -> WebClient:
        """The client messages are sent through."""
        return self.sender.client

    @client.setter
    def client(self, client: WebClient) -> None:
        self.sender.client = client

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
            done = self.sender.send(message, attempt)
        except Retry as retry:
            if retry.code == WAITING_FOR_POST:
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
            then = [tell(message, message.unreachable)]
        unsure = attempt.unsure_after(retry.code)
        self.store.outbox_retry(row.id, attempt.held, now, due, retry.code, then, unsure)
        return True

    def _refused(self, row: Row[Any], attempt: Attempt, message: Message, code: str) -> bool:
        """A permanent error: fall back to a DM where there is one, else give up visibly."""
        instead = fallback(message)
        if instead is not None:
            return self._rewrite(row, attempt, instead, code)
        log.error("slack message could not be delivered", method=row.method, error=code)
        if self.on_dead is not None:
            self.on_dead(row.method, code)
        self.store.outbox_dead(row.id, attempt.held, self.now(), code, after_refusal(message, code))
        return True

    def _rewrite(self, row: Row[Any], attempt: Attempt, message: Message, code: str) -> bool:
        log.info("slack message falls back to a DM", method=row.method, error=code)
        self.store.outbox_rewrite(row.id, attempt.held, message, self.now())
        return True
