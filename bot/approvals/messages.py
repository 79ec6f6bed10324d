"""The Slack messages each transition implies, queued in the transaction that makes it."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, Protocol

from bot.approvals.results import Failure
from bot.db.models import SecretRequest
from bot.db.tx import Tx
from bot.outbox.messages import Message


class Messages(Protocol):
    """The messages of each transition (``bot.outbox.notify.Notifier``)."""

    def submitted(self, request: SecretRequest) -> list[Message]:
        """A request waits for approval."""

    def rejected(self, request: SecretRequest) -> list[Message]:
        """An approver rejected it."""

    def expired(self, request: SecretRequest) -> list[Message]:
        """Nobody decided in time."""

    def policy_changed(self, request: SecretRequest) -> list[Message]:
        """The rule that decided it is gone or changed: it expired."""

    def progress(self, request: SecretRequest, tally: Any) -> list[Message]:
        """One approval more; the quorum is not met yet."""

    def quorum_met(self, request: SecretRequest, tally: Any) -> list[Message]:
        """The last approval needed is in."""

    def applied(self, request: SecretRequest) -> list[Message]:
        """Auth0 has the change."""

    def failed(self, request: SecretRequest, error: Failure | None) -> list[Message]:
        """Applying failed."""

    def checking(self, request: SecretRequest) -> list[Message]:
        """Auth0 left the outcome unknown; it is being read back."""

    def still_applying(self, request: SecretRequest) -> list[Message]:
        """The apply has been running for a while."""

    def stale_copy(self, request: SecretRequest, channel: str, ts: str) -> list[Message]:
        """Someone clicked a duplicate approval message of a decided request."""


class Teller:
    """Queues a transition's messages in its transaction (nothing when no ``messages`` is set,
    as in tests of the state machine alone)."""

    def __init__(self, now: Callable[[], datetime], messages: Messages | None = None) -> None:
        self.now = now
        self.messages = messages

    def __call__(self, tx: Tx, transition: str, request: SecretRequest, *args: Any) -> None:
        """Queue the messages ``transition`` implies, in the transaction that makes it."""
        if self.messages is not None:
            tx.enqueue(getattr(self.messages, transition)(request, *args), self.now())
